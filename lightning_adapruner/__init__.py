"""lightning_adapruner: AdaPruner (adaptive dataset pruning) for PyTorch Lightning."""

from lightning_adapruner.core.adaptive_pruning import AdaptiveDatasetPruning
from lightning_adapruner.core.controller import PruningPerformanceController
from lightning_adapruner.core.dataset import IndexedDataset, IndexedSample
from lightning_adapruner.core.export import (
    SUBSET_FILE,
    PrunedSubset,
    PrunedSubsetError,
    load_pruned_subset,
    read_pruned_subset,
)
from lightning_adapruner.core.metrics import METRIC_NAMES
from lightning_adapruner.core.sampler import PruningSampler

__version__ = "0.1.0"

__all__ = [
    "AdaptiveDatasetPruning",
    "IndexedDataset",
    "IndexedSample",
    "METRIC_NAMES",
    "PruningPerformanceController",
    "PruningSampler",
    "PrunedSubset",
    "PrunedSubsetError",
    "SUBSET_FILE",
    "load_pruned_subset",
    "read_pruned_subset",
]
