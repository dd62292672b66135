"""``AdaptiveDatasetPruning`` (ADP): :class:`DataPruning` with the :class:`AdaPruner` method, in one object."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.callback import DataPruning
from lightning_adapruner.core.methods.adapruner import AdaPruner, Mode

log = logging.getLogger(__name__)


class AdaptiveDatasetPruning(DataPruning):
    """Adaptive dataset pruning: ``DataPruning(AdaPruner(**method_kwargs), prune_ratio, ...)``.

    Args:
        prune_ratio: ``p`` in ``[0, 1)``, the share of training samples removed.
        mode: ``"sampler"`` (prune during training, saves compute) or ``"soft"`` (the reference procedure).
        warmup_epochs, prune_epochs, schedule, class_floor, targets, seed, drop_last, export_dir, verbose:
            the harness's arguments (:class:`DataPruning`).
        **method_kwargs: :class:`~lightning_adapruner.AdaPruner`'s other arguments (``k_start``, ``mask_lr``,
            ``network_weights``, ``selection``, ...).

    Example::

        >>> adp = AdaptiveDatasetPruning(prune_ratio=0.3, mask_lr=0.2)
        >>> adp.method.mask_lr, adp.method.name
        (0.2, 'adapruner')
    """

    def __init__(
        self,
        prune_ratio: float,
        mode: Mode = "sampler",
        warmup_epochs: int = 1,
        prune_epochs: int | None = None,
        schedule: F.ScheduleShape = "linear",
        class_floor: int = 0,
        targets: Tensor | None = None,
        seed: int | None = None,
        drop_last: bool = False,
        export_dir: str | Path | bool | None = None,
        verbose: bool = True,
        **method_kwargs: Any,
    ) -> None:
        super().__init__(
            AdaPruner(mode=mode, **method_kwargs),
            prune_ratio,
            warmup_epochs=warmup_epochs,
            prune_epochs=prune_epochs,
            schedule=schedule,
            class_floor=class_floor,
            targets=targets,
            seed=seed,
            drop_last=drop_last,
            export_dir=export_dir,
            verbose=verbose,
        )

    @property
    def mode(self) -> Mode:
        return self.method.mode  # type: ignore[attr-defined,no-any-return]
