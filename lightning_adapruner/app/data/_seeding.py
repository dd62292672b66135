"""Seeded randomness of the datamodule zoo: one generator per (seed, stream), the train/val hold-out, label noise.

Every random draw of the zoo goes through :func:`seeded_generator`, so the same ``seed`` gives the same split,
the same flipped labels and the same synthetic data on every rank and in every run.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Independent random streams derived from the one user ``seed``: changing how the split is drawn
# never changes which labels are flipped for a given train set, and vice versa.
SPLIT_STREAM = 0
NOISE_STREAM = 1
DATA_STREAM = 2
SUBSET_STREAM = 3


def seeded_generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for random stream ``stream`` of ``seed``; identical on every rank and run.

    Args:
        seed: the user's seed, in ``[0, 2**48)``.
        stream: one of :data:`SPLIT_STREAM`, :data:`NOISE_STREAM`, :data:`DATA_STREAM`, :data:`SUBSET_STREAM`.

    Example::

        >>> a, b = seeded_generator(3, SPLIT_STREAM), seeded_generator(3, SPLIT_STREAM)
        >>> torch.equal(torch.randperm(5, generator=a), torch.randperm(5, generator=b))
        True
    """
    return torch.Generator().manual_seed((int(seed) << 8) + int(stream))


def split_indices(num_samples: int, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded hold-out split of ``range(num_samples)`` into sorted ``(train, val)`` index tensors.

    ``val`` gets ``round(val_fraction * num_samples)`` samples, at least one when ``val_fraction > 0``
    and at most ``num_samples - 1`` so the training split is never empty. The result depends only on
    ``(num_samples, val_fraction, seed)``, so every DDP rank and every run draws the same split.

    Args:
        num_samples: size of the pool to split (at least 1).
        val_fraction: share of the pool held out, in ``[0, 1)``.
        seed: seeds the draw (stream :data:`SPLIT_STREAM`).

    Raises:
        ValueError: if ``num_samples < 1``.

    Example::

        >>> train, val = split_indices(10, 0.2, seed=0)
        >>> len(train), len(val), sorted(train.tolist() + val.tolist()) == list(range(10))
        (8, 2, True)
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    num_val = round(val_fraction * num_samples)
    if val_fraction > 0:
        num_val = min(max(num_val, 1), num_samples - 1)
    perm = torch.randperm(num_samples, generator=seeded_generator(seed, SPLIT_STREAM))
    return perm[num_val:].sort().values, perm[:num_val].sort().values


def symmetric_label_noise(
    targets: Tensor,
    rate: float,
    num_classes: int,
    generator: torch.Generator,
    eligible: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Flip the labels of exactly ``round(rate * len(targets))`` samples to a uniformly drawn *other* class.

    Args:
        targets: clean labels, LongTensor ``[N]`` with values in ``[0, num_classes)``.
        rate: share of all ``N`` samples to flip, in ``[0, 1]``.
        num_classes: number of classes (at least 2 when ``rate > 0``).
        generator: source of randomness (see :func:`seeded_generator`).
        eligible: optional bool mask ``[N]``; only these samples may be flipped.

    Returns:
        ``(noisy_targets, flipped_mask)``; ``noisy_targets[i] != targets[i]`` exactly where ``flipped_mask[i]``.

    Raises:
        ValueError: if fewer samples are eligible than must be flipped, or ``num_classes < 2``.

    Example::

        >>> y = torch.zeros(10, dtype=torch.long)
        >>> noisy, mask = symmetric_label_noise(y, 0.3, 3, seeded_generator(0, NOISE_STREAM))
        >>> int(mask.sum()), bool((noisy[mask] != 0).all()), bool((noisy[~mask] == 0).all())
        (3, True, True)
    """
    targets = torch.as_tensor(targets, dtype=torch.long)
    n = len(targets)
    num_flip = round(rate * n)
    mask = torch.zeros(n, dtype=torch.bool)
    if num_flip == 0:
        return targets.clone(), mask
    if num_classes < 2:
        raise ValueError(f"label noise needs num_classes >= 2, got {num_classes}")
    candidates = torch.arange(n) if eligible is None else torch.nonzero(eligible, as_tuple=False).flatten()
    if num_flip > len(candidates):
        raise ValueError(f"cannot flip {num_flip} labels: only {len(candidates)} samples are eligible")
    chosen = candidates[torch.randperm(len(candidates), generator=generator)[:num_flip]]
    # y + U{1..C-1} mod C is uniform over the C-1 classes other than y.
    shift = torch.randint(1, num_classes, (num_flip,), generator=generator)
    noisy = targets.clone()
    noisy[chosen] = (targets[chosen] + shift) % num_classes
    mask[chosen] = True
    return noisy, mask
