"""MNIST-like datasets in the idx format: the reader and the shared datamodule logic."""

from __future__ import annotations

import gzip
import logging
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lightning_adapruner.app.data._base import IndexedDataModule, Source
from lightning_adapruner.app.data._files import DatasetFiles
from lightning_adapruner.app.data._tensor import TensorAugment, TensorImageDataset, image_source

log = logging.getLogger(__name__)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an unsigned-byte idx file (``.gz`` or not) into a ``uint8`` array of its declared shape.

    Args:
        path: the file; a ``.gz`` suffix means gzip-compressed.

    Raises:
        ValueError: if the file is not a ubyte idx file or its size disagrees with its header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file (header {raw[:4].hex()})")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)):
        raise ValueError(f"{path}: header declares shape {shape} but holds {len(raw) - offset} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def find_idx_files(directory: str | os.PathLike) -> tuple[dict[str, Path] | None, list[str]]:
    """The four idx files in ``directory`` (each plain or ``.gz``, plain preferred), or ``None`` and what is missing.

    Args:
        directory: the folder to look in.

    Returns:
        ``({key of IDX_FILES: path}, [])`` when all four are there, else ``(None, [missing names])``.
    """
    directory = Path(directory)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, stem in IDX_FILES.items():
        for name in (stem, stem + ".gz"):
            if (directory / name).is_file():
                found[key] = directory / name
                break
        else:
            missing.append(stem + "[.gz]")
    return (found if not missing else None), missing


class IdxDataModule(IndexedDataModule):
    """Shared logic of MNIST-like datamodules (28x28 grey idx files, 10 classes).

    Subclasses set ``display_name``, ``folder`` (torchvision's folder under ``data_dir``),
    ``torchvision_class``, ``mean``/``std``, ``hflip`` and ``apt_package``.

    Args:
        augment: random crop (padding 2) of training images, and a horizontal flip where ``hflip``.
        download: let :meth:`prepare_data` download into ``data_dir`` when the files are nowhere local.
        system_dir: second directory to look in (``None`` to skip it).
        **common: the arguments of :class:`~lightning_adapruner.app.data.IndexedDataModule`.
    """

    display_name: str
    folder: str
    torchvision_class: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool = False
    apt_package: str | None = None
    num_classes = 10
    input_shape = (1, 28, 28)

    def __init__(
        self, *, augment: bool = False, download: bool = True, system_dir: str | None = None, **common: Any
    ) -> None:
        super().__init__(**common)
        self.augment = augment
        self.download = download
        self.system_dir = system_dir
        self._files = DatasetFiles(self.display_name, download, self.data_dir)
        self._found: dict[str, Path] | None = None

    @property
    def raw_dir(self) -> Path:
        """torchvision's layout: ``data_dir/<folder>/raw``."""
        return Path(self.data_dir) / self.folder / "raw"

    def _places(self) -> list[tuple[Path, str]]:
        places = [(self.raw_dir, "torchvision layout under data_dir")]
        if self.system_dir:
            label = f"Debian package {self.apt_package}" if self.apt_package else "system_dir"
            places.append((Path(self.system_dir), label))
        return places

    def prepare_data(self) -> None:
        """Download with torchvision into ``data_dir`` when the files are nowhere local and ``download=True``."""
        found, _ = self._files.locate(self._places(), find_idx_files)
        if found is None:
            self._files.try_download(self._download)

    def _download(self) -> None:
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.torchvision_class)
        for train in (True, False):
            cls(self.data_dir, train=train, download=True)

    def _files_or_raise(self) -> dict[str, Path]:
        if self._found is None:
            found, report = self._files.locate(self._places(), find_idx_files)
            if found is None:
                raise self._files.not_found(report, self._fixes())
            log.info("%s: reading idx files from %s", self.display_name, found["train_images"].parent)
            self._found = found
        return self._found

    def _fixes(self) -> list[str]:
        fixes = []
        if self.apt_package:
            fixes.append(f"install the Debian package: `apt-get install {self.apt_package}` (works offline)")
        names = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
        fixes.append(f"put {names} (or the decompressed files) in {self.raw_dir}")
        return fixes

    def _read(self, images_key: str, labels_key: str) -> tuple[Tensor, Tensor]:
        files = self._files_or_raise()
        images = torch.from_numpy(read_idx(files[images_key]).copy())
        labels = torch.from_numpy(read_idx(files[labels_key]).astype(np.int64))
        if images.dim() != 3 or len(images) != len(labels):
            raise ValueError(
                f"{self.display_name}: {files[images_key]} holds {tuple(images.shape)} images but "
                f"{files[labels_key]} holds {len(labels)} labels"
            )
        return images.unsqueeze(1), labels

    def _load_train(self) -> Source:
        augment = TensorAugment(padding=2, hflip=self.hflip) if self.augment else None
        clean = TensorImageDataset(*self._read("train_images", "train_labels"), self.mean, self.std)
        return image_source(clean, augment=augment)

    def _load_test(self) -> TensorImageDataset:
        return TensorImageDataset(*self._read("test_images", "test_labels"), self.mean, self.std)
