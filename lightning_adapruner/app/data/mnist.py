"""``MNISTDataModule``: handwritten digits from torchvision's ``MNIST/raw`` layout."""

from __future__ import annotations

import logging

from lightning_adapruner.app.data._idx import IdxDataModule

log = logging.getLogger(__name__)


class MNISTDataModule(IdxDataModule):
    """MNIST (60 000 train / 10 000 test 28x28 grey digits, 10 classes) as indexed loaders.

    The idx files are read from torchvision's layout ``data_dir/MNIST/raw/`` (plain or ``.gz``), then
    from ``system_dir`` if given; :meth:`prepare_data` downloads them there with torchvision when
    ``download=True`` and they are nowhere local. If all fail, ``setup`` raises one
    :class:`DatasetNotFoundError` naming the places and the fixes. Normalised with ``(0.1307, 0.3081)``.

    Args:
        data_dir: root of torchvision's layout and download target.
        batch_size: samples per batch.
        num_workers: ``DataLoader`` workers.
        val_fraction: share of the training images held out for validation, in ``[0, 1)``.
        label_noise: share of training labels flipped to another class, in ``[0, 1]``.
        seed: seeds the hold-out and the label noise.
        pin_memory: ``DataLoader(pin_memory=...)``.
        augment: random crop (padding 2) of training images; no flip, which would change digits.
        download: let :meth:`prepare_data` download into ``data_dir`` when the files are nowhere local.
        system_dir: optional second directory holding the four idx files.

    Raises:
        DatasetNotFoundError: in ``setup`` when the files are in none of the places.

    Example::

        >>> dm = MNISTDataModule(data_dir="data", batch_size=4)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("fit")  # doctest: +SKIP
        >>> idx, (x, y) = next(iter(dm.train_dataloader()))  # doctest: +SKIP
    """

    display_name = "MNIST"
    folder = "MNIST"
    torchvision_class = "MNIST"
    mean = (0.1307,)
    std = (0.3081,)
    hflip = False
