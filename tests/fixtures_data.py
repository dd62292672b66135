"""Small dataset files in their real formats (idx, CIFAR pickles, class folders), shared by the tests."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd
from PIL import Image


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte idx file (``.gz`` when the name says so), the format of (Fashion-)MNIST."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def write_mnist_like(
    raw_dir: Path, n_train: int, n_test: int, seed: int = 0, gz: bool = False
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(raw_dir / (name + (".gz" if gz else "")), array)
    return arrays


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(
    monkeypatch: pytest.MonkeyPatch, root: Path, hundred: bool, n_per_file: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Small CIFAR files in torchvision's python-pickle layout; returns the train images (NCHW) and labels.

    torchvision checks every file against the md5 of the real release. Instead of switching that check
    off, the test points the class's expected checksums (``train_list``, ``test_list``, ``meta``) at the
    files it wrote, so the real loading path, integrity check included, runs unchanged.
    """
    cls = tvd.CIFAR100 if hundred else tvd.CIFAR10
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    num_classes = 100 if hundred else 10
    label_key = "fine_labels" if hundred else "labels"
    train_names = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    images, labels = [], []
    for name in [*train_names, "test_batch" if not hundred else "test"]:
        n = n_per_file * (5 if hundred and name == "train" else 1)
        x = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        y = rng.integers(0, num_classes, n).tolist()
        entry = {"data": x, label_key: y}
        if hundred:
            entry["coarse_labels"] = [v // 5 for v in y]
        (folder / name).write_bytes(pickle.dumps(entry))
        if name in train_names:
            images.append(x.reshape(-1, 3, 32, 32))
            labels.extend(y)
    meta_name, meta_key = ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    (folder / meta_name).write_bytes(pickle.dumps({meta_key: [f"class{i}" for i in range(num_classes)]}))
    test_name = "test" if hundred else "test_batch"
    monkeypatch.setattr(cls, "train_list", [[n, _md5(folder / n)] for n in train_names])
    monkeypatch.setattr(cls, "test_list", [[test_name, _md5(folder / test_name)]])
    monkeypatch.setattr(cls, "meta", {"filename": meta_name, "key": meta_key, "md5": _md5(folder / meta_name)})
    return np.concatenate(images), np.asarray(labels)


def write_image_folder(root: Path, classes: list[str], per_class: int, size: int = 12, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / c / f"{k}.png")
