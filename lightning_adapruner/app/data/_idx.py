"""MNIST-like datasets in the idx format: the reader and the shared datamodule logic."""

from __future__ import annotations

import gzip
import logging
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lightning_adapruner.app.data._base import DatasetNotFoundError, IndexedDataModule, Source, download_status
from lightning_adapruner.app.data._tensor import TensorAugment, TensorImageDataset

log = logging.getLogger(__name__)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an unsigned-byte idx file (``.gz`` or not) into a ``uint8`` array of its declared shape.

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
    """The four idx files in ``directory`` (each plain or ``.gz``, plain preferred), or ``None`` and what is missing."""
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
    """

    display_name = "MNIST-like"
    folder = "MNIST"
    torchvision_class = "MNIST"
    mean = (0.5,)
    std = (0.5,)
    hflip = False
    apt_package: str | None = None
    num_classes = 10
    input_shape = (1, 28, 28)

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        label_noise: float = 0.0,
        seed: int = 0,
        pin_memory: bool = False,
        augment: bool = False,
        download: bool = True,
        system_dir: str | None = None,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, val_fraction, label_noise, seed, pin_memory)
        self.augment = augment
        self.download = download
        self.system_dir = system_dir
        self._download_error: str | None = None
        self._download_tried = False
        self._files: dict[str, Path] | None = None

    @property
    def raw_dir(self) -> Path:
        """torchvision's layout: ``data_dir/<folder>/raw``."""
        return Path(self.data_dir) / self.folder / "raw"

    def _candidates(self) -> list[tuple[Path, str]]:
        places = [(self.raw_dir, "torchvision layout under data_dir")]
        if self.system_dir:
            label = f"Debian package {self.apt_package}" if self.apt_package else "system_dir"
            places.append((Path(self.system_dir), label))
        return places

    def _locate(self) -> tuple[dict[str, Path] | None, list[str]]:
        report = []
        for directory, label in self._candidates():
            if not directory.is_dir():
                report.append(f"{directory} ({label}): no such directory")
                continue
            files, missing = find_idx_files(directory)
            if files is not None:
                return files, report
            report.append(f"{directory} ({label}): missing {', '.join(missing)}")
        return None, report

    def prepare_data(self) -> None:
        """Download with torchvision into ``data_dir`` when the files are nowhere local and ``download=True``."""
        files, _ = self._locate()
        if files is not None or not self.download:
            return
        self._download_tried = True
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.torchvision_class)
        try:
            for train in (True, False):
                cls(self.data_dir, train=train, download=True)
        except Exception as err:  # network errors come in many types (URLError, RuntimeError, OSError, ...)
            self._download_error = f"{type(err).__name__}: {err}"
            log.warning("%s download into %s failed: %s", self.display_name, self.data_dir, self._download_error)

    def _files_or_raise(self) -> dict[str, Path]:
        if self._files is not None:
            return self._files
        files, report = self._locate()
        if files is None:
            raise DatasetNotFoundError(self._not_found_message(report))
        log.info("%s: reading idx files from %s", self.display_name, files["train_images"].parent)
        self._files = files
        return files

    def _not_found_message(self, report: list[str]) -> str:
        dl = download_status(self.download, self._download_tried, self._download_error, self.data_dir)
        looked = "\n".join(f"  - {line}" for line in [*report, dl])
        fixes = []
        if self.apt_package:
            fixes.append(f"install the Debian package: `apt-get install {self.apt_package}` (works offline)")
        names = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
        fixes.append(f"put {names} (or the decompressed files) in {self.raw_dir}")
        fixes.append("go online with download=True and call prepare_data() (the Trainer does)")
        how = "\n".join(f"  - {fix}" for fix in fixes)
        return f"{self.display_name} not found. Looked in:\n{looked}\nFix it in one of these ways:\n{how}"

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
        images, labels = self._read("train_images", "train_labels")
        clean = TensorImageDataset(images, labels, self.mean, self.std)
        train = clean.with_transforms(augment=TensorAugment(padding=2, hflip=self.hflip)) if self.augment else clean
        return Source(train=train, evaluation=clean, targets=labels)

    def _load_test(self) -> TensorImageDataset:
        images, labels = self._read("test_images", "test_labels")
        return TensorImageDataset(images, labels, self.mean, self.std)
