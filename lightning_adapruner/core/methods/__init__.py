"""The pruning methods, all peers on :class:`~lightning_adapruner.PruningMethod`."""

from lightning_adapruner.core.methods.adapruner import AdaPruner
from lightning_adapruner.core.methods.el2n import EL2NPruning
from lightning_adapruner.core.methods.forgetting import ForgettingPruning
from lightning_adapruner.core.methods.infobatch import InfoBatchPruning
from lightning_adapruner.core.methods.random import RandomPruning, RS2Pruning
from lightning_adapruner.core.methods.seta import SeTaPruning

__all__ = [
    "AdaPruner",
    "EL2NPruning",
    "ForgettingPruning",
    "InfoBatchPruning",
    "RS2Pruning",
    "RandomPruning",
    "SeTaPruning",
]
