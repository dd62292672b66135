"""lightning_adapruner: AdaPruner (adaptive dataset pruning) for PyTorch Lightning."""

from lightning_adapruner.adaptive_pruning import AdaptiveDatasetPruning
from lightning_adapruner.controller import PruningPerformanceController
from lightning_adapruner.dataset import IndexedDataset, IndexedSample
from lightning_adapruner.sampler import PruningSampler
from lightning_adapruner.subset import load_pruned_subset

__version__ = "0.1.0"

__all__ = [
    "AdaptiveDatasetPruning",
    "IndexedDataset",
    "IndexedSample",
    "PruningPerformanceController",
    "PruningSampler",
    "load_pruned_subset",
]
