"""Tests of the datamodule zoo, on the planted set, the real Fashion-MNIST files and small files in real formats."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from fixtures_data import write_cifar, write_image_folder, write_mnist_like

import lightning_adapruner.app.data as data
from lightning_adapruner import IndexedSample
from lightning_adapruner.app.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    DatasetNotFoundError,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    IndexedDataModule,
    MNISTDataModule,
    PlantedDataModule,
    make_planted,
    planted_datamodule,
)
from lightning_adapruner.app.data._idx import read_idx
from lightning_adapruner.app.data._seeding import split_indices, symmetric_label_noise
from lightning_adapruner.app.data._tensor import Cutout, TensorAugment

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _indexed_batches(monkeypatch):
    """These tests compare batches with the raw data by index, so the zoo serves IndexedDataset splits here
    (the switch the zoo offers; its default is plain (x, y) batches, see test_default_batches_are_plain)."""
    monkeypatch.setattr(IndexedDataModule, "yield_indices", True)


def first_batch(loader):
    batch = next(iter(loader))
    assert isinstance(batch, IndexedSample)
    idx, (x, y) = batch
    assert idx.dtype == torch.long and y.dtype == torch.long and x.dtype == torch.float32
    assert len(idx) == len(x) == len(y)
    return idx, x, y


# ------------------------------------------------------------------------------------ API surface
def test_public_names_are_pinned():
    assert sorted(data.__all__) == [
        "CIFAR100DataModule",
        "CIFAR10DataModule",
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
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [
        ({"batch_size": 0}, "batch_size", "0"),
        ({"num_workers": -1}, "num_workers", "-1"),
        ({"val_fraction": 1.0}, "val_fraction", "1.0"),
        ({"val_fraction": -0.1}, "val_fraction", "-0.1"),
        ({"label_noise": 1.5}, "label_noise", "1.5"),
        ({"seed": -3}, "seed", "-3"),
    ],
)
def test_bad_arguments_are_named(kwargs, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be .*, got {value}$"):
        MNISTDataModule(**kwargs)


def test_bad_planted_and_other_arguments():
    with pytest.raises(ValueError, match=r"duplicate_fraction \+ flip_fraction must be <= 1.*got 1.2"):
        PlantedDataModule(duplicate_fraction=0.7, flip_fraction=0.5)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2, got 1"):
        PlantedDataModule(num_classes=1)
    with pytest.raises(ValueError, match="cutout must be an int in \\[0, 32\\], got 40"):
        CIFAR10DataModule(cutout=40)
    with pytest.raises(ValueError, match="root must be the path .* got '\\?\\?\\?'"):
        ImageFolderDataModule()
    with pytest.raises(TypeError, match="takes root=<dataset folder>, not data_dir"):
        ImageFolderDataModule(root="images", data_dir="data")
    with pytest.raises(TypeError, match="no label_noise argument: use flip_fraction"):
        PlantedDataModule(label_noise=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_sample'"):
        PlantedDataModule(num_sample=10)  # a typo is not silently ignored


# ------------------------------------------------------------------------------------ pure helpers
def test_split_indices_is_a_seeded_partition():
    train, val = split_indices(100, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    assert torch.equal(train, train.sort().values)
    again, _ = split_indices(100, 0.2, seed=3)
    other, _ = split_indices(100, 0.2, seed=4)
    assert torch.equal(train, again) and not torch.equal(train, other)
    assert len(split_indices(100, 0.0, 0)[1]) == 0
    assert len(split_indices(5, 0.01, 0)[1]) == 1  # a positive fraction never yields an empty val split


def test_symmetric_label_noise_flips_exactly_and_uniformly():
    targets = torch.arange(30000) % 3
    noisy, mask = symmetric_label_noise(targets, 0.4, 3, torch.Generator().manual_seed(0))
    assert int(mask.sum()) == 12000
    assert torch.equal(mask, noisy != targets)
    # the new label is uniform over the two other classes
    shift = (noisy[mask] - targets[mask]) % 3
    assert abs(float((shift == 1).float().mean()) - 0.5) < 0.02
    eligible = torch.arange(30000) < 100
    _, only = symmetric_label_noise(targets, 0.001, 3, torch.Generator().manual_seed(0), eligible=eligible)
    assert int(only.sum()) == 30 and not only[~eligible].any()


def test_tensor_augment_and_cutout():
    torch.manual_seed(0)
    x = torch.arange(1 * 6 * 6, dtype=torch.uint8).view(1, 6, 6) + 1  # no zero pixel
    flips = [TensorAugment(padding=0, hflip=True)(x) for _ in range(20)]
    assert all(torch.equal(o, x) or torch.equal(o, x.flip(-1)) for o in flips)
    assert any(torch.equal(o, x) for o in flips) and any(torch.equal(o, x.flip(-1)) for o in flips)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    crops = {(i, j): padded[..., i : i + 6, j : j + 6] for i in range(5) for j in range(5)}
    offsets = set()
    for _ in range(200):
        out = TensorAugment(padding=2)(x)
        assert out.shape == x.shape and out.dtype == torch.uint8
        offsets |= {k for k, c in crops.items() if torch.equal(out, c)}
    assert len(offsets) == 25  # every shift in [-2, 2]^2 occurs, nothing else does
    assert torch.equal(TensorAugment(padding=0, hflip=False)(x), x)
    img = torch.ones(3, 8, 8)
    cut = Cutout(4)(img)
    zeros = (cut == 0).all(0)
    assert 4 <= int(zeros.sum()) <= 16 and bool((img == 1).all())  # input untouched


# ------------------------------------------------------------------------------------ planted set
def test_planted_batches_indices_and_masks():
    dm = PlantedDataModule(num_samples=500, num_test_samples=60, batch_size=16, seed=5)
    dm.setup()
    d = dm.data
    n = len(dm.train_dataset)
    assert (n, len(dm.val_dataset), len(dm.test_dataset)) == (450, 50, 60)
    assert dm.input_shape == (32,) and dm.num_classes == 4
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        idx, x, y = first_batch(loader)
        assert x.shape == (16, 32)
    idx, x, y = first_batch(dm.train_dataloader())
    assert torch.equal(x, d.train_x[idx]) and torch.equal(y, d.train_y[idx])  # batch idx is the dataset index
    for i in (0, 7, n - 1):
        sample = dm.train_dataset[i]
        assert sample.index == i and torch.equal(sample.data[0], d.train_x[i])
    # planted groups: requested sizes, exact copies, disjoint, flips really change the label
    assert dm.duplicate_mask.shape == dm.flipped_mask.shape == (n,)
    assert int(dm.duplicate_mask.sum()) == round(0.2 * n) and int(dm.flipped_mask.sum()) == round(0.1 * n)
    assert not (dm.duplicate_mask & dm.flipped_mask).any()
    dup_x = d.train_x[dm.duplicate_mask]
    assert len(torch.unique(dup_x, dim=0)) == 10  # every duplicate equals one of the 10 prototypes
    assert torch.equal(dup_x, d.prototypes[d.prototype_id[dm.duplicate_mask]])
    assert torch.equal(d.train_y[dm.duplicate_mask], d.prototype_y[d.prototype_id[dm.duplicate_mask]])
    assert torch.equal(dm.flipped_mask, d.train_y != d.train_clean_y)
    assert torch.equal(dm.noisy_mask, dm.flipped_mask) and torch.equal(dm.train_targets, d.train_y)
    assert torch.equal(dm.val_dataset.targets, d.val_y) and torch.equal(dm.test_dataset.targets, d.test_y)
    # non-duplicates are all distinct; val and test are clean (no prototype copies)
    assert len(torch.unique(d.train_x[~dm.duplicate_mask], dim=0)) == n - int(dm.duplicate_mask.sum())
    for x_clean in (d.val_x, d.test_x):
        assert not (x_clean[:, None, :] == d.prototypes[None]).all(-1).any()


def test_planted_is_deterministic_in_seed():
    a, b, c = make_planted(num_samples=300, seed=1), make_planted(num_samples=300, seed=1), make_planted(300, seed=2)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.flipped_mask, b.flipped_mask)
    assert torch.equal(a.train_indices, b.train_indices)
    assert not torch.equal(a.train_indices, c.train_indices) and not torch.equal(a.flipped_mask, c.flipped_mask)
    dm = planted_datamodule(num_samples=300, num_test_samples=0)
    assert dm.test_dataset is None
    with pytest.raises(DatasetNotFoundError, match="num_test_samples=0"):
        dm.setup("test")


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and avoid thread contention on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_planted_is_moderately_hard(one_thread):
    """Normal samples keep a real loss under a trained MLP; flips stand out; duplicates are easy."""
    torch.manual_seed(0)
    d = make_planted()
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(10):
        for b in torch.randperm(len(d.train_x)).split(128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(d.train_x[b]), d.train_y[b]).backward()
            opt.step()
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(d.train_x), d.train_y, reduction="none")
    normal = ~d.duplicate_mask & ~d.flipped_mask
    assert 0.2 < float(loss[normal].mean()) < 1.0
    assert float(loss[d.flipped_mask].mean()) > 1.5 > float(loss[d.duplicate_mask].mean())


def test_datamodule_drives_a_trainer():
    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(32, 4)
            self.seen: list[torch.Tensor] = []
            self.val_batches = 0

        def training_step(self, batch, batch_idx):
            idx, (x, y) = batch
            self.seen.append(idx)
            return torch.nn.functional.cross_entropy(self.layer(x), y)

        def validation_step(self, batch, batch_idx):
            self.val_batches += 1

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    for val_fraction, expect_val in ((0.1, True), (0.0, False)):
        dm = PlantedDataModule(num_samples=200, batch_size=32, val_fraction=val_fraction)
        model = Tiny()
        trainer = pl.Trainer(
            max_epochs=1,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(model, datamodule=dm)
        seen = torch.cat(model.seen)
        assert sorted(seen.tolist()) == list(range(len(dm.train_dataset)))  # one full shuffled pass
        assert (model.val_batches > 0) == expect_val


def test_default_batches_are_plain(monkeypatch):
    """The class attribute is the one switch of the batch format; labels, masks and splits stay the same."""
    monkeypatch.undo()
    assert IndexedDataModule.yield_indices is False

    class Plain(PlantedDataModule):
        yield_indices = False

    indexed = planted_datamodule(num_samples=100, num_test_samples=10)
    plain = Plain(num_samples=100, num_test_samples=10)
    plain.setup()
    for loader in (plain.train_dataloader(), plain.val_dataloader(), plain.test_dataloader()):
        x, y = next(iter(loader))
        assert x.dtype == torch.float32 and y.dtype == torch.long and x.shape[1:] == (32,)
    assert torch.equal(plain.train_targets, indexed.train_targets)
    assert torch.equal(plain.noisy_mask, indexed.noisy_mask) and torch.equal(plain.val_indices, indexed.val_indices)


def test_worker_processes_return_the_same_samples():
    dm = planted_datamodule(num_samples=120, batch_size=40, num_workers=2)
    idx, x, y = first_batch(dm.val_dataloader())
    assert torch.equal(x, dm.data.val_x[idx])


# ------------------------------------------------------------------------------------ Fashion-MNIST
@pytest.fixture(scope="module")
def fashion():
    # scripts/setup.sh installs the Debian package; without it this is a set-up error, not a skip
    assert (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(), (
        "run `make test` (apt-get install dataset-fashion-mnist)"
    )

    class Indexed(FashionMNISTDataModule):  # module-scoped: built before the autouse switch applies
        yield_indices = True

    dm = Indexed(data_dir="/nonexistent-data-dir", batch_size=64, download=False)
    dm.setup()
    return dm


def test_fashion_mnist_from_the_debian_files(fashion):
    dm = fashion
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (54000, 6000, 10000)
    assert dm.num_classes == 10 and dm.input_shape == (1, 28, 28)
    idx, x, y = first_batch(dm.train_dataloader())
    assert x.shape == (64, 1, 28, 28)
    base = dm.train_dataset.dataset.dataset.dataset  # IndexedDataset -> Relabeled -> Subset -> tensor images
    pixels = base.images.float() / 255
    assert abs(float(pixels.mean()) - 0.2860) < 1e-3 and abs(float(pixels.std()) - 0.3530) < 1e-3
    i = int(idx[0])
    assert torch.equal(x[0], dm.train_dataset[i].data[0])
    src = int(dm.train_indices[i])
    assert torch.allclose(x[0], (base.images[src].float() / 255 - 0.2860) / 0.3530)
    assert torch.bincount(dm.train_targets, minlength=10).min() > 5000  # 6000 per class, 10% held out
    assert torch.bincount(dm.test_dataset.targets).tolist() == [1000] * 10
    assert not dm.noisy_mask.any()


def test_fashion_mnist_not_found_is_one_clear_error(tmp_path):
    empty_data, empty_sys = tmp_path / "data", tmp_path / "sys"
    empty_data.mkdir()
    empty_sys.mkdir()
    dm = FashionMNISTDataModule(data_dir=str(empty_data), system_dir=str(empty_sys), download=False)
    dm.prepare_data()  # download=False: nothing to do, no network
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup("fit")
    msg = str(info.value)
    assert str(empty_data / "FashionMNIST" / "raw") in msg and str(empty_sys) in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "download=False" in msg
    assert "train-images-idx3-ubyte" in msg


def test_fashion_mnist_prefers_data_dir_and_reports_a_failed_download(tmp_path, monkeypatch):
    arrays = write_mnist_like(tmp_path / "FashionMNIST" / "raw", n_train=30, n_test=7, gz=True)
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), val_fraction=0.2)  # system_dir (Debian) comes second
    dm.setup()
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (24, 6, 7)
    assert torch.equal(dm.test_dataset.targets, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())

    class Offline:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(tvd, "FashionMNIST", Offline)
    nowhere = FashionMNISTDataModule(data_dir=str(tmp_path / "none"), system_dir=None)
    nowhere.prepare_data()  # logs the failure instead of raising
    with pytest.raises(DatasetNotFoundError, match="failed \\(RuntimeError: Error downloading"):
        nowhere.setup("fit")


# ------------------------------------------------------------------------------------ MNIST
def test_mnist_reads_torchvision_layout_with_noise_on_train_only(tmp_path):
    arrays = write_mnist_like(tmp_path / "MNIST" / "raw", n_train=200, n_test=20)
    assert np.array_equal(
        read_idx(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"), arrays["train-images-idx3-ubyte"]
    )
    clean = torch.from_numpy(arrays["train-labels-idx1-ubyte"]).long()
    dm = MNISTDataModule(data_dir=str(tmp_path), val_fraction=0.25, label_noise=0.3, seed=7, batch_size=8)
    dm.setup()
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (150, 50, 20)
    # disjoint train/val covering the source training split
    train_idx, val_idx = dm.train_indices, dm.val_indices
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(200))
    # label noise: exactly 30% of train labels, only there, and the loader serves the noisy label
    assert int(dm.noisy_mask.sum()) == 45
    assert torch.equal(dm.noisy_mask, dm.train_targets != clean[train_idx])
    assert torch.equal(dm.val_dataset.targets, clean[val_idx])
    assert torch.equal(dm.test_dataset.targets, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())
    flipped = int(torch.nonzero(dm.noisy_mask)[0])
    assert dm.train_dataset[flipped].data[1] == int(dm.train_targets[flipped]) != int(clean[train_idx[flipped]])
    # items are the right images: val item j is source image val_idx[j]
    j = 3
    expected = (torch.from_numpy(arrays["train-images-idx3-ubyte"][int(val_idx[j])]).float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(dm.val_dataset[j].data[0][0], expected)
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        _, x, _ = first_batch(loader)
        assert x.shape == (8, 1, 28, 28)


def test_split_and_noise_are_deterministic_in_seed(tmp_path):
    write_mnist_like(tmp_path / "MNIST" / "raw", n_train=300, n_test=10)

    def build(seed):
        dm = MNISTDataModule(data_dir=str(tmp_path), label_noise=0.2, seed=seed)
        dm.setup("fit")
        return dm

    a, b, c = build(0), build(0), build(1)
    assert torch.equal(a.train_indices, b.train_indices) and torch.equal(a.noisy_mask, b.noisy_mask)
    assert torch.equal(a.train_targets, b.train_targets)
    assert not torch.equal(a.train_indices, c.train_indices)
    assert a.test_dataset is None  # setup("fit") does not read the test split


def test_mnist_not_found(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError, match=r"MNIST not found(.|\n)*MNIST/raw(.|\n)*download=False"):
        dm.setup()
    with pytest.raises(RuntimeError, match="after setup"):
        _ = dm.train_targets


# ------------------------------------------------------------------------------------ CIFAR
@pytest.mark.parametrize("hundred", [False, True], ids=["cifar10", "cifar100"])
def test_cifar_reads_the_pickle_batches(tmp_path, monkeypatch, hundred):
    images, labels = write_cifar(monkeypatch, tmp_path, hundred)
    cls = CIFAR100DataModule if hundred else CIFAR10DataModule
    dm = cls(data_dir=str(tmp_path), val_fraction=0.25, batch_size=4, augment=False, download=False)
    dm.setup()
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (30, 10, 8)
    assert dm.num_classes == (100 if hundred else 10) and dm.input_shape == (3, 32, 32)
    assert torch.equal(dm.train_targets, torch.from_numpy(labels)[dm.train_indices])
    mean, std = torch.tensor(cls.mean).view(3, 1, 1), torch.tensor(cls.std).view(3, 1, 1)
    i = 5
    expected = (torch.from_numpy(images[int(dm.train_indices[i])]).float() / 255 - mean) / std  # CHW order kept
    assert torch.allclose(dm.train_dataset[i].data[0], expected, atol=1e-6)
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        _, x, _ = first_batch(loader)
        assert x.shape == (4, 3, 32, 32)


def test_cifar_cutout_and_augmentation_only_touch_training(tmp_path, monkeypatch):
    write_cifar(monkeypatch, tmp_path, hundred=False)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), val_fraction=0.25, augment=False, cutout=8, download=False)
    dm.setup("fit")
    torch.manual_seed(0)
    x = dm.train_dataset[0].data[0]
    assert int((x == 0).all(0).sum()) >= 16  # a (possibly clipped) 8x8 square set to the mean
    assert not (dm.val_dataset[0].data[0] == 0).all(0).any()
    aug = CIFAR10DataModule(data_dir=str(tmp_path), val_fraction=0.25, download=False)
    aug.setup("fit")
    draws = torch.stack([aug.train_dataset[0].data[0] for _ in range(10)])
    assert any(not torch.equal(draws[0], d) for d in draws[1:])  # random crop/flip differ between draws
    assert torch.equal(aug.val_dataset[0].data[0], aug.val_dataset[0].data[0])


def test_cifar_not_found(tmp_path):
    dm = CIFAR100DataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup("fit")
    msg = str(info.value)
    assert "CIFAR-100 not found" in msg and str(tmp_path / "cifar-100-python") in msg and "download=False" in msg


# ------------------------------------------------------------------------------------ ImageFolder
def test_image_folder_train_test_layout(tmp_path):
    write_image_folder(tmp_path / "train", ["cat", "dog", "frog"], per_class=5)
    write_image_folder(tmp_path / "test", ["dog", "frog"], per_class=2, seed=1)  # no "cat": labels must not shift
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, batch_size=4, val_fraction=0.2)
    assert dm.num_classes == 3 and dm.classes == ["cat", "dog", "frog"] and dm.input_shape == (3, 8, 8)
    dm.setup()
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (12, 3, 4)
    assert sorted(dm.test_dataset.targets.tolist()) == [1, 1, 2, 2]
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        _, x, _ = first_batch(loader)
        assert x.shape[1:] == (3, 8, 8)
    # the val item j is source image val_indices[j], resized and normalised
    j = 0
    path, label = dm.val_dataset.dataset.dataset.dataset.samples[int(dm.val_indices[j])]
    assert dm.val_dataset[j].data[1] == label == int(dm.val_dataset.targets[j])
    assert Path(path).parent.name == dm.classes[label]


def test_image_folder_without_test_split(tmp_path):
    write_image_folder(tmp_path, ["a", "b"], per_class=4)
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=6, val_fraction=0.25)
    dm.setup("fit")
    assert (len(dm.train_dataset), len(dm.val_dataset)) == (6, 2)
    with pytest.raises(DatasetNotFoundError, match="no test split"):
        dm.setup("test")
    missing = ImageFolderDataModule(root=str(tmp_path / "nope"))
    with pytest.raises(DatasetNotFoundError, match="is not a directory"):
        missing.setup("fit")
