"""The datamodule zoo: every split yields plain ``(x, y)`` batches, as any user's datamodule would.

``FashionMNISTDataModule`` is the project's default; ``PlantedDataModule`` is the synthetic set
with planted duplicates and flipped labels used by the tests and demos. Every datamodule takes the
arguments of ``IndexedDataModule`` (``data_dir``, ``batch_size``, ``num_workers``, ``val_fraction``,
``label_noise``, ``seed``, ``pin_memory``) by name, beside its own.
"""

from lightning_adapruner.app.data._base import IndexedDataModule
from lightning_adapruner.app.data._files import DatasetNotFoundError
from lightning_adapruner.app.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from lightning_adapruner.app.data.fashion_mnist import FashionMNISTDataModule
from lightning_adapruner.app.data.imagefolder import ImageFolderDataModule
from lightning_adapruner.app.data.mnist import MNISTDataModule
from lightning_adapruner.app.data.synthetic import PlantedData, PlantedDataModule, make_planted, planted_datamodule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DatasetNotFoundError",
    "FashionMNISTDataModule",
    "ImageFolderDataModule",
    "IndexedDataModule",
    "MNISTDataModule",
    "PlantedData",
    "PlantedDataModule",
    "make_planted",
    "planted_datamodule",
]
