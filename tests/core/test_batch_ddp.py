"""``BatchSelection`` under 2-process DDP on every kind of training loader: a map-style ``DataLoader`` (Lightning's
distributed sampler), a plain ``IterableDataset`` sharded by rank, LitData's ``StreamingDataset`` from a real
``litdata.optimize`` run on local files, and a Hugging Face ``IterableDataset`` split by node."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import random_dataset

from lightning_adapruner import functional as F

WORKER = Path(__file__).resolve().parents[1] / "batch_ddp_worker.py"
N, KEEP, WARMUP = 240, 0.25, 2


def _item(i: int) -> dict:
    data = random_dataset(N)
    return {"x": data.x[i], "y": int(data.targets[i])}


def optimized(tmp_path: Path) -> Path:
    """The worker's 240 items written by ``litdata.optimize`` into local chunks."""
    litdata = pytest.importorskip("litdata")
    out = tmp_path / "optimized"
    litdata.optimize(fn=_item, inputs=list(range(N)), output_dir=str(out), chunk_bytes="64KB", num_workers=1)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["map", "iterable", "litdata", "hf"])
def test_every_loader_kind_trains_on_each_batchs_highest_losses_on_both_ranks(tmp_path, kind):
    extra = ["--data", str(optimized(tmp_path))] if kind == "litdata" else []
    if kind == "hf":
        pytest.importorskip("datasets")
    done = subprocess.run(
        [sys.executable, str(WORKER), kind, str(tmp_path), *extra], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) > 2 * WARMUP  # in step: equal batches, nothing skipped
    for steps in ranks:
        for number, step in enumerate(steps):
            scored, losses, trained = step["scored"], step["loss"], step["trained"]
            k = scored.numel() if number < WARMUP else F.batch_kept_count(scored.numel(), KEEP)
            assert torch.equal(trained.sort().values, scored[torch.topk(losses, k).indices].sort().values), number
    for a, b in zip(*ranks):  # equal batches keep equal counts on both ranks
        assert a["scored"].numel() != b["scored"].numel() or a["trained"].numel() == b["trained"].numel()
    for epoch in (0, 1):  # the ranks scored disjoint shards of the data, as the loader split it
        scored = torch.cat([s["scored"] for steps in ranks for s in steps if s["epoch"] == epoch])
        assert scored.unique().numel() == scored.numel() >= N - 2 * 16  # (LitData drops a short last batch per rank)
