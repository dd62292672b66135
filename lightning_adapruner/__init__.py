"""lightning_adapruner: AdaPruner (adaptive dataset pruning) for PyTorch Lightning."""

from lightning_adapruner.core.adaptive_pruning import AdaptiveDatasetPruning
from lightning_adapruner.core.controller import PruningPerformanceController
from lightning_adapruner.core.dataset import IndexedDataset, IndexedSample
from lightning_adapruner.core.sampler import PruningSampler
from lightning_adapruner.core.subset import load_pruned_subset

__version__ = "0.1.0"

__all__ = [
    "AdaptiveDatasetPruning",
    "IndexedDataset",
    "IndexedSample",
    "PruningPerformanceController",
    "PruningSampler",
    "load_pruned_subset",
]
