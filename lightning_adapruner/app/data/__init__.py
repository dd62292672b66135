"""The datamodule zoo: every split yields ``IndexedSample`` batches, so ``idx, (x, y) = batch``.

``FashionMNISTDataModule`` is the project's default; ``PlantedDataModule`` is the synthetic set
with planted duplicates and flipped labels used by the tests and demos.
"""

from lightning_adapruner.app.data._base import DatasetNotFoundError, IndexedDataModule
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
