"""``MNISTDataModule``: handwritten digits from torchvision's ``MNIST/raw`` layout."""

from __future__ import annotations

from lightning_adapruner.app.data._idx import IdxDataModule


class MNISTDataModule(IdxDataModule):
    """MNIST (60 000 train / 10 000 test 28x28 grey digits, 10 classes) as indexed loaders.

    The idx files are read from torchvision's layout ``data_dir/MNIST/raw/`` (plain or ``.gz``), then
    from ``system_dir`` if given; :meth:`prepare_data` downloads them there with torchvision when
    ``download=True`` and they are nowhere local. If all fail, ``setup`` raises one
    :class:`DatasetNotFoundError` naming the places and the fixes. Normalised with ``(0.1307, 0.3081)``.

    Args:
        augment: random crop (padding 2) of training images; no flip, which would change digits.
        download: let :meth:`prepare_data` download into ``data_dir`` when the files are nowhere local.
        system_dir: optional second directory holding the four idx files.
        **common: the arguments of :class:`~lightning_adapruner.app.data.IndexedDataModule`.

    Raises:
        ValueError: on an out-of-range argument.
        DatasetNotFoundError: in ``setup`` when the files are in none of the places.

    Example::

        >>> from lightning_adapruner.app.data import DatasetNotFoundError
        >>> dm = MNISTDataModule(data_dir="no-data-here", batch_size=4, download=False)
        >>> dm.num_classes, dm.input_shape
        (10, (1, 28, 28))
        >>> try:
        ...     dm.setup("fit")  # with download=True, dm.prepare_data() would fetch the files first
        ... except DatasetNotFoundError as err:
        ...     lines = str(err).splitlines()
        >>> for line in lines[:3]:
        ...     print(line)
        MNIST not found. Looked in:
          - no-data-here/MNIST/raw (torchvision layout under data_dir): no such directory
          - download: disabled (download=False)
    """

    display_name = "MNIST"
    folder = "MNIST"
    torchvision_class = "MNIST"
    mean = (0.1307,)
    std = (0.3081,)
    hflip = False
