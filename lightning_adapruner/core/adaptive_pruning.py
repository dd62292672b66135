"""``AdaptiveDatasetPruning`` (ADP): :class:`DataPruning` with the :class:`AdaPruner` method, in one object."""

from __future__ import annotations

import inspect
from typing import Any

from lightning_adapruner.core.callback import DataPruning
from lightning_adapruner.core.methods.adapruner import AdaPruner, Mode

_HARNESS = set(inspect.signature(DataPruning.__init__).parameters) - {"self", "method", "prune_ratio"}


class AdaptiveDatasetPruning(DataPruning):
    """Adaptive dataset pruning: ``DataPruning(AdaPruner(...), prune_ratio, ...)`` in one object.

    Args:
        prune_ratio: ``p`` in ``[0, 1)``, the share of training samples removed (or give ``budget=``, the share of
            full data's samples the fit forwards).
        mode: ``"sampler"`` (prune during training, saves compute) or ``"soft"`` (the reference procedure).
        **kwargs: :class:`DataPruning`'s arguments (``warmup_epochs``, ``prune_epochs``, ``schedule``,
            ``class_floor``, ``targets``, ``seed``, ``drop_last``, ``export_dir``, ``verbose``) and
            :class:`~lightning_adapruner.AdaPruner`'s (``k_start``, ``mask_lr``, ``network_weights``, ...).

    Raises:
        TypeError: for an argument neither of them takes.

    Example::

        >>> adp = AdaptiveDatasetPruning(prune_ratio=0.3, mask_lr=0.2, warmup_epochs=2)
        >>> adp.method.mask_lr, adp.warmup_epochs
        (0.2, 2)
    """

    def __init__(self, prune_ratio: float | None = None, mode: Mode = "sampler", **kwargs: Any) -> None:
        harness = {k: kwargs.pop(k) for k in list(kwargs) if k in _HARNESS}
        super().__init__(AdaPruner(mode=mode, **kwargs), prune_ratio, **harness)

    @property
    def mode(self) -> Mode:
        method = self.method
        assert isinstance(method, AdaPruner)
        return method.mode
