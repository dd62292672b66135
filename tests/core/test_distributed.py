"""Two CPU processes (gloo): every rank holds the same mask and the shards split the kept set."""

import math

import lightning as L
import pytest
import torch
from helpers import DumpPruningState, TinyModel, loader, random_dataset, trainer

from lightning_adapruner import AdaptiveDatasetPruning
from lightning_adapruner.core.baselines import ForgettingPruning


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "method"),
    [("ddp_spawn", AdaptiveDatasetPruning), ("ddp_fork", AdaptiveDatasetPruning), ("ddp_fork", ForgettingPruning)],
    ids=["adapruner-ddp_spawn", "adapruner-ddp_fork", "forgetting-ddp_fork"],
)
def test_two_ranks_hold_identical_masks_and_disjoint_shards(tmp_path, strategy, method):
    n, epochs = 401, 4
    L.seed_everything(0)
    adp = method(0.3, warmup_epochs=1, prune_epochs=2, export_dir=str(tmp_path))
    t = trainer(max_epochs=epochs, devices=2, strategy=strategy, callbacks=[adp, DumpPruningState(str(tmp_path))])
    t.fit(TinyModel(), loader(random_dataset(n), 16))

    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert torch.equal(r0["logits"], r1["logits"])  # the same per-sample state on both ranks, bit for bit
    assert r0["logits"].std() > 0  # and it learned something from the gathered batches
    assert torch.equal(r0["final"], r1["final"]) and r0["final"].numel() == round(0.7 * n)
    expected_k = [401, 341, 281, 281]
    for e in range(epochs):
        kept = r0["kept"][e]
        assert torch.equal(kept, r1["kept"][e]) and kept.numel() == expected_k[e]
        a, b = r0["seen"][e], r1["seen"][e]
        assert a.numel() == b.numel() == math.ceil(expected_k[e] / 2)  # equal counts, no padding to N
        union = torch.cat([a, b]).unique()
        assert torch.equal(union, kept)  # together the ranks forwarded exactly the kept set
        overlap = len(set(a.tolist()) & set(b.tolist()))
        assert overlap == a.numel() + b.numel() - expected_k[e]  # only the top-up sample repeats
    # the gathered counter is global: both ranks agree and count both shards
    assert r0["forwarded"] == r1["forwarded"] == sum(2 * math.ceil(k / 2) for k in expected_k)
    assert (tmp_path / "pruned_subset.json").is_file()
