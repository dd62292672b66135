import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, Subset, TensorDataset

from lightning_adapruner import IndexedDataset, IndexedSample


class WithTargets(TensorDataset):
    def __init__(self, x, y):
        super().__init__(x, y)
        self.targets = y.tolist()


def test_items_carry_their_dataset_index_and_collate_into_a_batch():
    x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10) % 3
    ds = IndexedDataset(TensorDataset(x, y))
    assert ds[7] == IndexedSample(7, (x[7], y[7]))
    idx, (xb, yb) = next(iter(DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))))
    assert torch.equal(xb.squeeze(1), idx.float()) and torch.equal(yb, idx % 3)


def test_targets_inferred_through_subsets():
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    base = WithTargets(torch.zeros(6, 1), y)
    assert IndexedDataset(base).targets.tolist() == y.tolist()
    assert IndexedDataset(Subset(base, [5, 0, 4])).targets.tolist() == [2, 0, 1]
    assert IndexedDataset(TensorDataset(torch.zeros(3))).targets is None
    assert IndexedDataset(TensorDataset(torch.zeros(3)), targets=[1, 0, 1]).targets.tolist() == [1, 0, 1]


def test_bad_inputs():
    class Stream(IterableDataset):
        def __iter__(self):
            yield 1

    with pytest.raises(TypeError, match="map-style"):
        IndexedDataset(Stream())
    with pytest.raises(ValueError, match="targets has 2 entries"):
        IndexedDataset(TensorDataset(torch.zeros(3)), targets=[0, 1])


class Relabeled(torch.utils.data.Dataset):
    """A wrapper in the style of many projects: keeps the wrapped set in `.dataset`, no labels of its own."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]


class WithLabels(TensorDataset):
    def __init__(self, x, y):
        super().__init__(x, y)
        self.labels = y.numpy()  # `labels` instead of `targets`, as an array


def test_labels_are_found_through_random_split_concat_and_nested_wrappers():
    from torch.utils.data import ConcatDataset, random_split

    from lightning_adapruner.core.dataset import infer_targets

    a = WithTargets(torch.zeros(4, 1), torch.tensor([0, 1, 0, 1]))
    b = WithLabels(torch.zeros(3, 1), torch.tensor([2, 2, 1]))
    both = ConcatDataset([a, Relabeled(b)])
    assert infer_targets(both).tolist() == [0, 1, 0, 1, 2, 2, 1]
    train, val = random_split(Relabeled(both), [5, 2], generator=torch.Generator().manual_seed(0))
    assert infer_targets(train).tolist() == [[0, 1, 0, 1, 2, 2, 1][i] for i in train.indices]
    assert infer_targets(Subset(train, [0, 1])).tolist() == infer_targets(train)[[0, 1]].tolist()
    assert infer_targets(ConcatDataset([a, TensorDataset(torch.zeros(2))])) is None  # one part without labels
    float_labels = TensorDataset(torch.zeros(2))
    float_labels.targets = torch.tensor([0.5, 1.5])  # not class labels
    assert infer_targets(float_labels) is None


def test_a_sized_iterable_dataset_is_refused():
    class SizedStream(IterableDataset):
        def __len__(self):
            return 3

        def __iter__(self):
            yield from range(3)

    with pytest.raises(TypeError, match="even a sized one"):
        IndexedDataset(SizedStream())
