"""The Hydra app around the core: ``adapruner-train``, ``adapruner-report``, the data and model zoo.

It uses the core only through :mod:`lightning_adapruner`'s public API, and needs the ``[app]`` extra
(torchvision, hydra-core, matplotlib): ``pip install 'lightning-adapruner[app]'``.
"""

from __future__ import annotations

APP_EXTRA = "pip install 'lightning-adapruner[app]'"


def missing_extra(error: ImportError, what: str) -> ImportError:
    """The error to raise when the app's extra is not installed: it names the missing module and the fix.

    Example::

        >>> message = str(missing_extra(ModuleNotFoundError("no hydra", name="hydra"), "adapruner-train"))
        >>> message.split(":")[0], APP_EXTRA in message
        ('adapruner-train needs hydra, which is not installed', True)
    """
    return ImportError(
        f"{what} needs {error.name or error}, which is not installed: it comes with the app's extra, {APP_EXTRA} "
        "(the plugin itself needs only torch, lightning and torchmetrics)"
    )
