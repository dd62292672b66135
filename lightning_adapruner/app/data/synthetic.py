"""``PlantedDataModule``: a seeded synthetic set with planted duplicates and flipped labels, all in memory."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from lightning_adapruner.app.data._base import IndexedDataModule, TrainVal
from lightning_adapruner.app.data._checks import check_arg, check_fraction, check_int, is_number
from lightning_adapruner.app.data._seeding import (
    DATA_STREAM,
    NOISE_STREAM,
    seeded_generator,
    split_indices,
    symmetric_label_noise,
)

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


@dataclass(frozen=True)
class PlantedSpec:
    """How a planted set is drawn (all but the train/val split and the seed), checked on construction.

    The one definition of the planted set's parameters and their defaults: :func:`make_planted` and
    :class:`PlantedDataModule` take these fields as keyword arguments.

    Attributes:
        num_samples: size of the generated pool, split into train and validation (``>= 2``).
        num_features: input dimension.
        num_classes: number of clusters/classes (``>= 2``).
        duplicate_fraction: share of the training split made of exact prototype copies, in ``[0, 1]``.
        flip_fraction: share of the training split whose label is flipped (never a duplicate), in ``[0, 1]``;
            ``duplicate_fraction + flip_fraction <= 1``.
        num_prototypes: how many distinct prototypes the duplicates copy.
        separation: typical distance between cluster centres, in units of the within-cluster noise std.
        num_test_samples: size of the clean test set (``0``: no test split).

    Raises:
        ValueError: on an out-of-range field, naming it, the allowed range and the value received.

    Example::

        >>> PlantedSpec(num_samples=200).num_features
        32
        >>> PlantedSpec(num_classes=1)
        Traceback (most recent call last):
        ...
        ValueError: num_classes must be an int >= 2, got 1
    """

    num_samples: int = 3000
    num_features: int = 32
    num_classes: int = 4
    duplicate_fraction: float = 0.2
    flip_fraction: float = 0.1
    num_prototypes: int = 10
    separation: float = 3.0
    num_test_samples: int = 1000

    def __post_init__(self) -> None:
        check_int("num_samples", self.num_samples, 2)
        check_int("num_features", self.num_features, 1)
        check_int("num_classes", self.num_classes, 2)
        check_int("num_prototypes", self.num_prototypes, 1)
        check_int("num_test_samples", self.num_test_samples, 0)
        check_fraction("duplicate_fraction", self.duplicate_fraction)
        check_fraction("flip_fraction", self.flip_fraction)
        both = self.duplicate_fraction + self.flip_fraction
        check_arg(
            "duplicate_fraction + flip_fraction", both, both <= 1.0, "<= 1 (flips are planted on non-duplicates only)"
        )
        check_arg(
            "separation",
            self.separation,
            is_number(self.separation) and self.separation > 0 and math.isfinite(self.separation),
            "a finite float > 0",
        )


PLANTED_FIELDS = tuple(f.name for f in fields(PlantedSpec))


def _gaussian_clusters(centers: Tensor, labels: Tensor, generator: torch.Generator, scale: float = 1.0) -> Tensor:
    return centers[labels] + scale * torch.randn(len(labels), centers.shape[1], generator=generator)


def make_planted(*args: Any, val_fraction: float = 0.1, seed: int = 0, **kwargs: Any) -> PlantedData:
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

    Args:
        *args: the fields of :class:`PlantedSpec` in order (``num_samples`` first); usually given by name.
        val_fraction: share of the pool held out, clean, for validation, in ``[0, 1)``.
        seed: seeds everything: data, split, duplicates and flips.
        **kwargs: the fields of :class:`PlantedSpec` by name, e.g. ``num_samples=200``.

    Raises:
        ValueError: on an out-of-range argument, naming it, the allowed range and the value received.

    Example::

        >>> d = make_planted(num_samples=200, num_test_samples=50, seed=1)
        >>> len(d.train_x), int(d.duplicate_mask.sum()), int(d.flipped_mask.sum()), len(d.test_x)
        (180, 36, 18, 50)
        >>> bool((d.train_x[d.duplicate_mask] == d.prototypes[d.prototype_id[d.duplicate_mask]]).all())
        True
    """
    spec = PlantedSpec(*args, **kwargs)
    check_fraction("val_fraction", val_fraction, below_one=True)
    gen = seeded_generator(seed, DATA_STREAM)
    # Centres ~ N(0, s^2 I) with s = separation / sqrt(2F): pairwise distances concentrate near ``separation``.
    scale = spec.separation / math.sqrt(2 * spec.num_features)
    centers = torch.randn(spec.num_classes, spec.num_features, generator=gen) * scale
    pool_y = torch.randint(0, spec.num_classes, (spec.num_samples,), generator=gen)
    pool_x = _gaussian_clusters(centers, pool_y, gen)
    test_y = torch.randint(0, spec.num_classes, (spec.num_test_samples,), generator=gen)
    test_x = _gaussian_clusters(centers, test_y, gen)
    prototype_y = torch.arange(spec.num_prototypes) % spec.num_classes
    prototypes = _gaussian_clusters(centers, prototype_y, gen, scale=0.5)

    train_idx, val_idx = split_indices(spec.num_samples, val_fraction, seed)
    train_x, clean_y = pool_x[train_idx].clone(), pool_y[train_idx].clone()
    n = len(train_idx)
    num_dup = round(spec.duplicate_fraction * n)
    dup_pos = torch.randperm(n, generator=gen)[:num_dup]
    proto_of = torch.arange(num_dup) % spec.num_prototypes  # as even as possible over the prototypes
    prototype_id = torch.full((n,), -1, dtype=torch.long)
    prototype_id[dup_pos] = proto_of
    duplicate_mask = prototype_id >= 0
    train_x[dup_pos] = prototypes[proto_of]
    clean_y[dup_pos] = prototype_y[proto_of]
    train_y, flipped_mask = symmetric_label_noise(
        clean_y, spec.flip_fraction, spec.num_classes, seeded_generator(seed, NOISE_STREAM), eligible=~duplicate_mask
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
        **kwargs: the fields of :class:`PlantedSpec` (``num_samples``, ``num_features``, ``num_classes``,
            ``duplicate_fraction``, ``flip_fraction``, ``num_prototypes``, ``separation``, ``num_test_samples``;
            ``input_shape == (num_features,)``), and the arguments of
            :class:`~lightning_adapruner.app.data.IndexedDataModule` but ``data_dir`` (the data is generated) and
            ``label_noise`` (``flip_fraction`` plants it); ``seed`` seeds the data, split, duplicates and flips.

    Attributes:
        spec: the :class:`PlantedSpec` drawn from.
        data: the :class:`PlantedData`, after ``setup``.

    Raises:
        ValueError: on an out-of-range argument, naming it, the allowed range and the value received.
        TypeError: on ``data_dir``, ``label_noise`` or an unknown argument.

    Example::

        >>> dm = PlantedDataModule(num_samples=200, num_test_samples=20, batch_size=8)
        >>> dm.setup()
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> tuple(x.shape), int(dm.duplicate_mask.sum()), int(dm.flipped_mask.sum())
        ((8, 32), 36, 18)
    """

    def __init__(self, **kwargs: Any) -> None:
        self.spec = PlantedSpec(**{name: value for name, value in kwargs.items() if name in PLANTED_FIELDS})
        for name, instead in (("data_dir", "the data is generated in memory"), ("label_noise", "use flip_fraction")):
            if name in kwargs:
                raise TypeError(f"PlantedDataModule takes no {name} argument: {instead}")
        super().__init__(**{name: value for name, value in kwargs.items() if name not in PLANTED_FIELDS})
        self.hparams.update(asdict(self.spec))  # every field, given or default, as the other datamodules record
        self.num_classes = self.spec.num_classes
        self.input_shape = (self.spec.num_features,)
        self.data: PlantedData | None = None
        self.duplicate_mask: Tensor | None = None
        self.flipped_mask: Tensor | None = None

    def _generate(self) -> PlantedData:
        if self.data is None:
            self.data = make_planted(**asdict(self.spec), val_fraction=self.val_fraction, seed=self.seed)
        return self.data

    def _train_val(self) -> TrainVal:
        d = self._generate()
        self.duplicate_mask, self.flipped_mask = d.duplicate_mask, d.flipped_mask
        log.info(
            "PlantedDataModule: %d train (%d duplicates, %d flipped) / %d val / %d test samples (seed=%d)",
            len(d.train_x),
            int(d.duplicate_mask.sum()),
            int(d.flipped_mask.sum()),
            len(d.val_x),
            len(d.test_x),
            self.seed,
        )
        return TrainVal(
            train=_labelled(d.train_x, d.train_y),
            val=_labelled(d.val_x, d.val_y),
            train_targets=d.train_y,
            val_targets=d.val_y,
            train_indices=d.train_indices,
            val_indices=d.val_indices,
            noisy_mask=d.flipped_mask,
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
