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
