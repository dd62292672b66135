"""Every private Lightning name the package uses, in this one module, imported only when called.

What has no public API in Lightning (tested on 2.5 and 2.6):

- the fit loop's training-data source, so the callback can hand Lightning a loader drawing only the kept
  samples before Lightning sizes the epoch (``fit_loop._data_source``, ``_DataLoaderSource``);
- re-instantiating the user's ``DataLoader`` (any subclass, with its own arguments) around another sampler
  (``lightning.pytorch.utilities.data._update_dataloader``);
- the fit loop's progress counters: training batches fetched and epochs completed (``fit_loop.epoch_loop
  .batch_progress``, ``fit_loop.epoch_progress``).

``tests/core/test_private_api.py`` fails if any other module of the package touches a private name, or this one a
name outside its allow-list.
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
            f"({err}). It is tested with lightning 2.5 to 2.6: install a version in that range"
        ) from None


def install_train_data_hook(trainer: Any, provide: Callable[[Callable[[], Any]], Any]) -> Callable[[], None]:
    """Route the fit loop's every training-dataloader request through ``provide(request)``.

    ``request()`` returns the user's dataloader (from the module, the datamodule or ``fit``'s argument);
    ``provide`` returns the loader Lightning trains on. Returns a function that undoes the routing.
    """
    source_cls = _private("lightning.pytorch.trainer.connectors.data_connector", "_DataLoaderSource")
    fit_loop = trainer.fit_loop
    original = fit_loop._data_source

    class _PruningDataSource(source_cls):  # type: ignore[misc, valid-type]  # a class only known at run time
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


def batch_in_epoch(trainer: Any) -> int:
    """The epoch's training batch whose hooks are running (0-based, counted across a resume): Lightning counts a
    batch as fetched before its ``on_train_batch_start`` and completed after its ``on_train_batch_end``."""
    return int(trainer.fit_loop.epoch_loop.batch_progress.current.ready) - 1


def epochs_completed(trainer: Any) -> int:
    """Epochs the last fit completed (0 in the process that launched a spawned fit)."""
    return int(trainer.fit_loop.epoch_progress.current.completed)
