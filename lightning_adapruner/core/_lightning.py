"""Every private Lightning name the package uses, in this one module, imported only when called.

Two needs have no public API in Lightning (tested on 2.4 and 2.6):

- the fit loop's training-data source, so the callback can hand Lightning a loader drawing only the kept
  samples before Lightning sizes the epoch (``fit_loop._data_source``, ``_DataLoaderSource``);
- re-instantiating the user's ``DataLoader`` (any subclass, with its own arguments) around another sampler
  (``lightning.pytorch.utilities.data._update_dataloader``).

``tests/core/test_private_api.py`` fails if any other module of the package imports a private name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def _private(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        import lightning

        raise RuntimeError(
            f"lightning_adapruner needs {module}.{name}, which lightning {lightning.__version__} does not have "
            f"({err}). It is tested with lightning 2.4 to 2.6: install a version in that range"
        ) from None


def install_train_data_hook(trainer: Any, provide: Callable[[Callable[[], Any]], Any]) -> Callable[[], None]:
    """Route the fit loop's every training-dataloader request through ``provide(request)``.

    ``request()`` returns the user's dataloader (from the module, the datamodule or ``fit``'s argument);
    ``provide`` returns the loader Lightning trains on. Returns a function that undoes the routing.
    """
    source_cls = _private("lightning.pytorch.trainer.connectors.data_connector", "_DataLoaderSource")
    fit_loop = trainer.fit_loop
    original = fit_loop._data_source

    class _PruningDataSource(source_cls):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(original.instance, original.name)

        def dataloader(self) -> Any:
            try:
                return provide(super().dataloader)
            except BaseException:
                _undo_dunder_patches()  # Lightning's patching context has no `finally`: an error would leave it on
                raise

    fit_loop._data_source = _PruningDataSource()

    def uninstall() -> None:
        fit_loop._data_source = original

    return uninstall


def _undo_dunder_patches() -> None:
    """Undo what ``lightning.fabric.utilities.data._replace_dunder_methods`` patched on ``DataLoader`` and
    ``BatchSampler`` (and their subclasses) around a data request: it restores them only when the request returns,
    so an error raised inside left every later ``DataLoader`` subclass failing ("missing attributes")."""
    from torch.utils.data import BatchSampler, DataLoader

    subclasses = _private("lightning.fabric.utilities.data", "get_all_subclasses")
    for base in (DataLoader, BatchSampler):
        for cls in subclasses(base) | {base}:
            for name in ("__setattr__", "__delattr__", "__init__"):
                saved = f"__old{name}"
                if saved in cls.__dict__:
                    setattr(cls, name, cls.__dict__[saved])
                    delattr(cls, saved)


def replace_sampler(dataloader: Any, sampler: Any) -> Any:
    """A copy of ``dataloader`` (same class and arguments) drawing from ``sampler``."""
    from lightning.pytorch.trainer.states import RunningStage

    update = _private("lightning.pytorch.utilities.data", "_update_dataloader")
    return update(dataloader, sampler, mode=RunningStage.TRAINING)


def replays_checkpoint_batch(trainer: Any) -> bool:
    """Whether the fit resumes from a checkpoint saved inside a training batch (``on_train_batch_end``, where
    ``ModelCheckpoint(every_n_train_steps=...)`` saves) on a Lightning that restarts such a checkpoint one batch
    early: 2.4 does; 2.5 resumes it exactly (its epoch loop's ``restarted_on_train_batch_end``).

    Read before the epoch loop resets its progress (``on_train_start``), from the loaded counters: a batch
    ``ready`` but not yet ``completed`` is one Lightning 2.4 would run again."""
    epoch_loop = trainer.fit_loop.epoch_loop
    if hasattr(type(epoch_loop), "restarted_on_train_batch_end"):
        return False
    current = epoch_loop.batch_progress.current
    return current.ready > current.completed


def complete_checkpoint_batch(trainer: Any) -> None:
    """Count the checkpoint's last batch as completed, as Lightning 2.5 does on restart: the epoch loop then
    resumes after it, so ``is_last_batch``, mid- and end-of-epoch validation, step- and epoch-interval LR
    schedulers and gradient accumulation line up with an uninterrupted run. Only where
    :func:`replays_checkpoint_batch` holds, called from ``on_train_start`` (before the loop resets)."""
    epoch_loop = trainer.fit_loop.epoch_loop
    if not epoch_loop._should_accumulate():  # 2.5 also counts the step the checkpoint's batch took, for loggers
        epoch_loop._batches_that_stepped += 1
    epoch_loop.batch_progress.increment_completed()
