"""lightning_adapruner: AdaPruner (adaptive dataset pruning) and its baselines for PyTorch Lightning.

Add :class:`DataPruning` (or its AdaPruner preset :class:`AdaptiveDatasetPruning`) to the Trainer, mix
:class:`PruningPerformanceController` into the LightningModule and return ``self.pruning_loss(per_sample_loss)``
from ``training_step``. Write a method of your own on :class:`PruningMethod`. For loaders whose sampler cannot be
replaced (streaming datasets), :class:`BatchSelection` selects within each batch instead.
"""

from lightning_adapruner.core import functional
from lightning_adapruner.core.adaptive_pruning import AdaptiveDatasetPruning
from lightning_adapruner.core.batch import BatchSelection
from lightning_adapruner.core.callback import DataPruning
from lightning_adapruner.core.controller import PruningPerformanceController
from lightning_adapruner.core.dataset import IndexedDataset, IndexedSample
from lightning_adapruner.core.export import (
    SUBSET_FILE,
    PrunedSubset,
    PrunedSubsetError,
    load_pruned_subset,
    read_pruned_subset,
)
from lightning_adapruner.core.method import EpochLayout, FitInfo, Observations, PruningMethod
from lightning_adapruner.core.methods import (
    AdaPruner,
    EL2NPruning,
    ForgettingPruning,
    InfoBatchPruning,
    RandomPruning,
    RS2Pruning,
    SeTaPruning,
)
from lightning_adapruner.core.metrics import METRIC_NAMES
from lightning_adapruner.core.sampler import PruningSampler

__version__ = "0.2.0"

__all__ = [
    "METRIC_NAMES",
    "SUBSET_FILE",
    "AdaPruner",
    "AdaptiveDatasetPruning",
    "BatchSelection",
    "DataPruning",
    "EL2NPruning",
    "EpochLayout",
    "FitInfo",
    "ForgettingPruning",
    "IndexedDataset",
    "IndexedSample",
    "InfoBatchPruning",
    "Observations",
    "PrunedSubset",
    "PrunedSubsetError",
    "PruningMethod",
    "PruningPerformanceController",
    "PruningSampler",
    "RS2Pruning",
    "RandomPruning",
    "SeTaPruning",
    "functional",
    "load_pruned_subset",
    "read_pruned_subset",
]
