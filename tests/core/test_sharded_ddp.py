"""Sharded per-sample state across real processes: 1, 2 and 4 gloo processes, each holding only its own shard of
the scores, cut exactly the set a single process holding every score cuts (``select_top``, here an independent
``kthvalue`` reference of it), bit for bit."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_adapruner import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import reference_select_top  # noqa: E402
from sharded_worker import shard_scores  # noqa: E402

WORKER = Path(__file__).resolve().parents[1] / "sharded_worker.py"
N, K = 100_003, 60_001


@pytest.mark.slow
@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_processes_holding_a_shard_each_cut_what_one_process_holding_all_cuts(tmp_path, world_size):
    done = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path), str(world_size), str(N), str(K)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world_size)]
    assert [r["span"] for r in ranks] == [F.shard_span(N, world_size, r) for r in range(world_size)]
    scores = shard_scores(N, 0, N)
    threshold = torch.sort(scores, descending=True).values[K - 1]
    assert int((scores == threshold).sum()) > 1  # the cut falls inside a tie: the draw is what is compared
    expected = reference_select_top(scores, K, F.generator(5, 2, F.selection.STREAM_TIES))
    assert torch.equal(torch.cat([r["mask"] for r in ranks]).nonzero().flatten(), expected)
