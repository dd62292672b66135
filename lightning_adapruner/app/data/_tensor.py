"""In-memory image datasets with cheap per-sample tensor transforms (no PIL on the hot path)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from lightning_adapruner.app.data._base import Source


class TensorAugment:
    """Random crop with zero padding, then an optional random horizontal flip, of one ``[C, H, W]`` image.

    The tensor counterpart of ``RandomCrop(size, padding)`` + ``RandomHorizontalFlip()``; it draws from
    torch's global generator, which Lightning's ``seed_everything(workers=True)`` and the ``DataLoader``
    seed per worker.

    Args:
        padding: zero padding on each side before cropping back to the input size (``0``: no crop).
        hflip: flip left-right with probability 0.5.
    """

    def __init__(self, padding: int = 0, hflip: bool = False) -> None:
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding = padding
        self.hflip = hflip

    def __call__(self, x: Tensor) -> Tensor:
        p = self.padding
        side = 2 * p + 1
        # One draw encodes the crop offset (i, j) and the flip: torch ops cost microseconds each.
        r = int(torch.randint(0, side * side * (2 if self.hflip else 1), ()))
        flip, r = divmod(r, side * side)
        i, j = divmod(r, side)
        if p and (i, j) != (p, p):
            h, w = x.shape[-2:]
            x = F.pad(x, (p, p, p, p))[..., i : i + h, j : j + w]
        if flip:
            x = x.flip(-1)
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(padding={self.padding}, hflip={self.hflip})"


class Cutout:
    """Cutout (DeVries & Taylor, 2017): zero a ``size`` x ``size`` square of a normalised ``[C, H, W]`` image.

    The square's centre is uniform over the image and the square is clipped at the borders, as in the
    paper's reference code. Applied after normalisation, so the patch is set to the dataset mean.

    Args:
        size: side length of the square in pixels (``>= 1``).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size

    def __call__(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        cy = int(torch.randint(0, h, ()))
        cx = int(torch.randint(0, w, ()))
        half = self.size // 2
        y0, y1 = max(cy - half, 0), min(cy - half + self.size, h)
        x0, x1 = max(cx - half, 0), min(cx - half + self.size, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = 0.0
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


def normalisation(mean: Sequence[float], std: Sequence[float]) -> tuple[Tensor, Tensor]:
    """``(mean, std)`` as ``[C, 1, 1]`` float tensors for per-channel normalisation of ``[C, H, W]`` images.

    Args:
        mean, std: one entry per channel; ``std > 0``.
    """
    if len(mean) != len(std) or any(not math.isfinite(s) or s <= 0 for s in std):
        raise ValueError(f"mean and std need one entry per channel and std > 0, got mean={mean}, std={std}")
    return torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)


class TensorImageDataset(Dataset):
    """Images held as one ``uint8`` tensor; item ``i`` is ``(normalised float image [C, H, W], label)``.

    Per item: optional :class:`TensorAugment` on the ``uint8`` image, scaling to ``[0, 1]``,
    per-channel normalisation, optional :class:`Cutout`. A few tensor ops, a few microseconds.

    Args:
        images: ``uint8`` ``[N, C, H, W]`` (or ``[N, H, W]`` for grey images).
        targets: labels, ``[N]``.
        mean, std: per-channel normalisation constants (one entry per channel).
        augment: optional geometric augmentation applied before normalisation.
        cutout: optional :class:`Cutout` applied after normalisation.

    Example::

        >>> ds = TensorImageDataset(torch.zeros(2, 4, 4, dtype=torch.uint8), torch.tensor([3, 1]), (0.5,), (0.5,))
        >>> x, y = ds[1]; tuple(x.shape), float(x[0, 0, 0]), y
        ((1, 4, 4), -1.0, 1)
    """

    def __init__(
        self,
        images: Tensor,
        targets: Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        augment: TensorAugment | None = None,
        cutout: Cutout | None = None,
    ) -> None:
        if images.dtype != torch.uint8:
            raise TypeError(f"images must be a uint8 tensor, got {images.dtype}")
        if images.dim() == 3:
            images = images.unsqueeze(1)
        if images.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W] or [N, H, W], got shape {tuple(images.shape)}")
        targets = torch.as_tensor(targets, dtype=torch.long)
        if len(targets) != len(images):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = targets
        self.mean, self.std = normalisation(mean, std)
        if len(self.mean) != images.shape[1]:
            raise ValueError(f"mean/std have {len(self.mean)} channels but the images have {images.shape[1]}")
        self.augment = augment
        self.cutout = cutout

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        x = self.images[index]
        if self.augment is not None:
            x = self.augment(x)
        x = (x.float().div_(255.0) - self.mean).div_(self.std)
        if self.cutout is not None:
            x = self.cutout(x)
        return x, int(self.targets[index])

    def with_transforms(self, augment: TensorAugment | None = None, cutout: Cutout | None = None) -> TensorImageDataset:
        """The same images and labels (shared memory) with other transforms, e.g. the evaluation view.

        Args:
            augment, cutout: the transforms of the new view (``None``: off).
        """
        out = TensorImageDataset.__new__(TensorImageDataset)
        out.images, out.targets, out.mean, out.std = self.images, self.targets, self.mean, self.std
        out.augment, out.cutout = augment, cutout
        return out


def image_source(
    clean: TensorImageDataset, augment: TensorAugment | None = None, cutout: Cutout | None = None
) -> Source:
    """The training pool of in-memory images: ``clean`` for evaluation, a view with ``augment``/``cutout`` for training.

    Args:
        clean: the images with no random transform.
        augment, cutout: the training transforms (``None``: off; with both off the two views are ``clean``).

    Example::

        >>> images, labels = torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 0])
        >>> clean = TensorImageDataset(images, labels, mean=(0.5,), std=(0.5,))
        >>> source = image_source(clean, augment=TensorAugment(padding=1))
        >>> source.train is source.evaluation, source.train.images is clean.images, source.targets.tolist()
        (False, True, [0, 1, 0])
    """
    train = clean if augment is None and cutout is None else clean.with_transforms(augment=augment, cutout=cutout)
    return Source(train=train, evaluation=clean, targets=clean.targets)
