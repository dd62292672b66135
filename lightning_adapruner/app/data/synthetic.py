"""``PlantedDataModule``: a seeded synthetic set with planted duplicates and flipped labels, all in memory."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from lightning_adapruner.app.data._base import (
    DATA_STREAM,
    NOISE_STREAM,
    IndexedDataModule,
    check_arg,
    seeded_generator,
    split_indices,
    symmetric_label_noise,
)
from lightning_adapruner.core.dataset import IndexedDataset

log = logging.getLogger(__name__)


@dataclass
class PlantedData:
    """The tensors of a planted dataset (see :func:`make_planted`).

    Attributes:
        train_x, train_y: training inputs ``[N, F]`` and labels ``[N]`` (flips applied).
        train_clean_y: training labels before the flips.
        duplicate_mask: bool ``[N]``, training samples that are exact copies of a prototype.
        flipped_mask: bool ``[N]``, training samples whose label was flipped (never a duplicate).
        prototype_id: ``[N]``, which prototype a duplicate copies, ``-1`` elsewhere.
        prototypes, prototype_y: the ``[P, F]`` prototypes and their (correct) labels.
        val_x, val_y, test_x, test_y: clean validation and test sets.
        train_indices, val_indices: positions of the train/val samples in the generated pool.
    """

    train_x: Tensor
    train_y: Tensor
    train_clean_y: Tensor
    duplicate_mask: Tensor
    flipped_mask: Tensor
    prototype_id: Tensor
    prototypes: Tensor
    prototype_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    train_indices: Tensor
    val_indices: Tensor


def _gaussian_clusters(centers: Tensor, labels: Tensor, generator: torch.Generator, scale: float = 1.0) -> Tensor:
    return centers[labels] + scale * torch.randn(len(labels), centers.shape[1], generator=generator)


def make_planted(
    num_samples: int = 3000,
    num_features: int = 32,
    num_classes: int = 4,
    duplicate_fraction: float = 0.2,
    flip_fraction: float = 0.1,
    num_prototypes: int = 10,
    separation: float = 3.0,
    val_fraction: float = 0.1,
    num_test_samples: int = 1000,
    seed: int = 0,
) -> PlantedData:
    """Build the planted dataset as tensors, deterministically from ``seed`` (no Trainer needed).

    ``num_samples`` points are drawn from ``num_classes`` isotropic unit-variance Gaussian clusters
    in ``num_features`` dimensions whose centres lie about ``separation`` apart, so the clusters
    overlap: with the defaults a small MLP trained for 20 epochs reaches about 80% test accuracy and
    a mean loss near 0.5 (median near 0.3) on normal training samples, not ~0. A seeded
    ``val_fraction`` of them is held out, clean, for validation; a further ``num_test_samples`` clean
    points form the test set. In the training part:

    - ``round(duplicate_fraction * N)`` samples are replaced by exact copies of ``num_prototypes``
      prototypes (points near their class centre, correctly labelled, each copied about equally often);
    - ``round(flip_fraction * N)`` of the other samples get a label drawn uniformly from the other classes.

    Example::

        >>> d = make_planted(num_samples=200, num_test_samples=50, seed=1)
        >>> len(d.train_x), int(d.duplicate_mask.sum()), int(d.flipped_mask.sum()), len(d.test_x)
        (180, 36, 18, 50)
        >>> bool((d.train_x[d.duplicate_mask] == d.prototypes[d.prototype_id[d.duplicate_mask]]).all())
        True
    """
    _check_planted_args(
        num_samples,
        num_features,
        num_classes,
        duplicate_fraction,
        flip_fraction,
        num_prototypes,
        separation,
        num_test_samples,
    )
    check_arg("val_fraction", val_fraction, 0.0 <= val_fraction < 1.0, "a float in [0, 1)")
    gen = seeded_generator(seed, DATA_STREAM)
    # Centres ~ N(0, s^2 I) with s = separation / sqrt(2F): pairwise distances concentrate near ``separation``.
    centers = torch.randn(num_classes, num_features, generator=gen) * (separation / math.sqrt(2 * num_features))
    pool_y = torch.randint(0, num_classes, (num_samples,), generator=gen)
    pool_x = _gaussian_clusters(centers, pool_y, gen)
    test_y = torch.randint(0, num_classes, (num_test_samples,), generator=gen)
    test_x = _gaussian_clusters(centers, test_y, gen)
    prototype_y = torch.arange(num_prototypes) % num_classes
    prototypes = _gaussian_clusters(centers, prototype_y, gen, scale=0.5)

    train_idx, val_idx = split_indices(num_samples, val_fraction, seed)
    train_x, clean_y = pool_x[train_idx].clone(), pool_y[train_idx].clone()
    n = len(train_idx)
    num_dup = round(duplicate_fraction * n)
    dup_pos = torch.randperm(n, generator=gen)[:num_dup]
    proto_of = torch.arange(num_dup) % num_prototypes  # as even as possible over the prototypes
    prototype_id = torch.full((n,), -1, dtype=torch.long)
    prototype_id[dup_pos] = proto_of
    duplicate_mask = prototype_id >= 0
    train_x[dup_pos] = prototypes[proto_of]
    clean_y[dup_pos] = prototype_y[proto_of]
    train_y, flipped_mask = symmetric_label_noise(
        clean_y, flip_fraction, num_classes, seeded_generator(seed, NOISE_STREAM), eligible=~duplicate_mask
    )
    return PlantedData(
        train_x=train_x,
        train_y=train_y,
        train_clean_y=clean_y,
        duplicate_mask=duplicate_mask,
        flipped_mask=flipped_mask,
        prototype_id=prototype_id,
        prototypes=prototypes,
        prototype_y=prototype_y,
        val_x=pool_x[val_idx],
        val_y=pool_y[val_idx],
        test_x=test_x,
        test_y=test_y,
        train_indices=train_idx,
        val_indices=val_idx,
    )


def _check_planted_args(
    num_samples: Any,
    num_features: Any,
    num_classes: Any,
    duplicate_fraction: Any,
    flip_fraction: Any,
    num_prototypes: Any,
    separation: Any,
    num_test_samples: Any,
) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    check_arg("num_samples", num_samples, is_int(num_samples) and num_samples >= 2, "an int >= 2")
    check_arg("num_features", num_features, is_int(num_features) and num_features >= 1, "an int >= 1")
    check_arg("num_classes", num_classes, is_int(num_classes) and num_classes >= 2, "an int >= 2")
    check_arg("num_prototypes", num_prototypes, is_int(num_prototypes) and num_prototypes >= 1, "an int >= 1")
    check_arg("num_test_samples", num_test_samples, is_int(num_test_samples) and num_test_samples >= 0, "an int >= 0")
    check_arg("duplicate_fraction", duplicate_fraction, 0.0 <= duplicate_fraction <= 1.0, "a float in [0, 1]")
    check_arg("flip_fraction", flip_fraction, 0.0 <= flip_fraction <= 1.0, "a float in [0, 1]")
    check_arg(
        "duplicate_fraction + flip_fraction",
        duplicate_fraction + flip_fraction,
        duplicate_fraction + flip_fraction <= 1.0,
        "<= 1 (flips are planted on non-duplicates only)",
    )
    check_arg("separation", separation, separation > 0 and math.isfinite(separation), "a finite float > 0")


def _labelled(x: Tensor, y: Tensor) -> TensorDataset:
    """``TensorDataset(x, y)`` with a ``targets`` attribute, which ``IndexedDataset`` reads."""
    dataset = TensorDataset(x, y)
    dataset.targets = y  # type: ignore[attr-defined]
    return dataset


class PlantedDataModule(IndexedDataModule):
    """The planted dataset of the tests and demos: Gaussian clusters with duplicates and flipped labels.

    See :func:`make_planted` for how it is drawn. ``duplicate_mask`` and ``flipped_mask`` are bool
    tensors over the training split, aligned with the indices of ``train_dataset`` (the ``idx`` of
    every training batch), so a study can count how many planted samples a pruner dropped.
    ``noisy_mask`` is ``flipped_mask``. Validation and test sets are clean. Everything is in memory
    (3000 x 32 floats by default): ``setup`` takes milliseconds.

    Args:
        num_samples: size of the generated pool, split into train and validation.
        num_features: input dimension; ``input_shape == (num_features,)``.
        num_classes: number of clusters/classes.
        duplicate_fraction: share of the training split made of exact prototype copies, in ``[0, 1]``.
        flip_fraction: share of the training split whose label is flipped (never a duplicate), in ``[0, 1]``.
        num_prototypes: how many distinct prototypes the duplicates copy.
        separation: typical distance between cluster centres, in units of the within-cluster noise std.
        num_test_samples: size of the clean test set (``0``: no test split).
        batch_size: samples per batch.
        num_workers: ``DataLoader`` workers (0 is fastest for in-memory tensors).
        val_fraction: share of the pool held out for validation, in ``[0, 1)``.
        seed: seeds everything: data, split, duplicates and flips.
        pin_memory: ``DataLoader(pin_memory=...)``.

    Raises:
        ValueError: on an out-of-range argument, naming it, the allowed range and the value received.

    Example::

        >>> dm = PlantedDataModule(num_samples=200, num_test_samples=20, batch_size=8)
        >>> dm.setup()
        >>> idx, (x, y) = next(iter(dm.train_dataloader()))
        >>> tuple(x.shape), int(dm.duplicate_mask.sum()), int(dm.flipped_mask.sum())
        ((8, 32), 36, 18)
    """

    def __init__(
        self,
        num_samples: int = 3000,
        num_features: int = 32,
        num_classes: int = 4,
        duplicate_fraction: float = 0.2,
        flip_fraction: float = 0.1,
        num_prototypes: int = 10,
        separation: float = 3.0,
        num_test_samples: int = 1000,
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        pin_memory: bool = False,
    ) -> None:
        _check_planted_args(
            num_samples,
            num_features,
            num_classes,
            duplicate_fraction,
            flip_fraction,
            num_prototypes,
            separation,
            num_test_samples,
        )
        super().__init__("data", batch_size, num_workers, val_fraction, 0.0, seed, pin_memory)
        self.num_samples = num_samples
        self.num_features = num_features
        self.num_classes = num_classes
        self.duplicate_fraction = float(duplicate_fraction)
        self.flip_fraction = float(flip_fraction)
        self.num_prototypes = num_prototypes
        self.separation = float(separation)
        self.num_test_samples = num_test_samples
        self.input_shape = (num_features,)
        self.data: PlantedData | None = None
        self.duplicate_mask: Tensor | None = None
        self.flipped_mask: Tensor | None = None

    def _generate(self) -> PlantedData:
        if self.data is None:
            self.data = make_planted(
                num_samples=self.num_samples,
                num_features=self.num_features,
                num_classes=self.num_classes,
                duplicate_fraction=self.duplicate_fraction,
                flip_fraction=self.flip_fraction,
                num_prototypes=self.num_prototypes,
                separation=self.separation,
                val_fraction=self.val_fraction,
                num_test_samples=self.num_test_samples,
                seed=self.seed,
            )
        return self.data

    def _setup_train_val(self) -> None:
        d = self._generate()
        self.train_indices, self.val_indices = d.train_indices, d.val_indices
        self.duplicate_mask, self.flipped_mask, self.noisy_mask = d.duplicate_mask, d.flipped_mask, d.flipped_mask
        self.train_dataset = IndexedDataset(_labelled(d.train_x, d.train_y))
        self.val_dataset = IndexedDataset(_labelled(d.val_x, d.val_y))
        log.info(
            "PlantedDataModule: %d train (%d duplicates, %d flipped) / %d val / %d test samples (seed=%d)",
            len(d.train_x),
            int(d.duplicate_mask.sum()),
            int(d.flipped_mask.sum()),
            len(d.val_x),
            len(d.test_x),
            self.seed,
        )

    def _load_test(self) -> TensorDataset | None:
        d = self._generate()
        return _labelled(d.test_x, d.test_y) if len(d.test_x) else None

    def _no_test_reason(self) -> str:
        return "num_test_samples=0"


def planted_datamodule(**kwargs: Any) -> PlantedDataModule:
    """A :class:`PlantedDataModule` built and set up for every stage, ready to use without a Trainer.

    Example::

        >>> dm = planted_datamodule(num_samples=100, num_test_samples=10)
        >>> len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)
        (90, 10, 10)
    """
    dm = PlantedDataModule(**kwargs)
    dm.setup()
    return dm
