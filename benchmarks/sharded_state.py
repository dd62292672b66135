"""Per-rank memory and epoch-cut time at N = 100M over 4 processes: replicated per-sample state against sharded.

Replicated (what ``DataPruning`` holds today): every rank holds all ``N`` samples' state and cuts the epoch alone
with ``select_top``; every rank does the same work, so one process measures a rank (the real ``PruningSession``
of ``benchmarks/scale.py``: AdaPruner's logits and momentum, the evidence, the last epoch kept, the kept set).

Sharded (simulated state, no model): 4 gloo processes each hold the same per-sample state for their own
``N / 4`` samples (the kept set as a mask) and cut the epoch together with
``functional.sharded_select_top``. Printed per arm: persistent state and peak RSS growth in bytes per sample the
rank owns (target <= 16 for sharded), the cut's time (target <= 1 s at N/W = 25M, the slowest rank), and for
reference the time a rank takes to turn its kept samples into a shuffled epoch order. Then the check that the 4
ranks' masks together are the set ``select_top`` cuts from all ``N`` scores in one process, bit for bit (timed:
the replicated cut), and the ratios side by side.

The 4 ranks share this machine's cores (2 here): their wall times include waiting for each other, so the time a
rank spends outside the gathers (its own work) is printed too.

    python benchmarks/sharded_state.py                   # N = 100M, 4 processes: about 4 minutes, 7 GB at most
    python benchmarks/sharded_state.py --n 50000000 --world-size 2 --no-replicated   # a core per rank
    python benchmarks/sharded_state.py --no-replicated --clustered   # scores bunched in the cut's bin
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import current_rss_mb, rss_mb, run_child  # noqa: E402

from lightning_adapruner import AdaPruner, FitInfo  # noqa: E402
from lightning_adapruner import functional as F  # noqa: E402
from lightning_adapruner.core.functional.schedule import KeepSchedule  # noqa: E402

TARGET_BYTES = 16.0
TARGET_CUT_S = 1.0
KEEP = 0.7
SEED, EPOCH = 0, 1


def fill_scores(scores: torch.Tensor, rank: int, clustered: bool) -> torch.Tensor:
    """Rank ``rank``'s scores, in place: learned logits N(0, 1), or ``clustered`` losses at chance level
    (ln 10 + 0.005 N(0, 1), most of them in the cut's top-16-bit bin)."""
    scores.normal_(generator=torch.Generator().manual_seed(1000 + rank))
    return scores.mul_(0.005).add_(2.3026) if clustered else scores


def rank_logits(n: int, world_size: int, rank: int, clustered: bool = False) -> torch.Tensor:
    """The learned logits of rank ``rank``'s samples (seeded per rank, so the whole vector can be rebuilt)."""
    start, stop = F.shard_span(n, world_size, rank)
    return fill_scores(torch.empty(stop - start), rank, clustered)


def sharded_rank(rank: int, world_size: int, n: int, out: str, clustered: bool) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=world_size)

    waited = [0.0]  # seconds inside the gathers: waiting for the other ranks, most of it on a shared core

    def gather(tensor: torch.Tensor) -> torch.Tensor:
        t = time.perf_counter()
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        waited[0] += time.perf_counter() - t
        return torch.stack(parts)

    base = current_rss_mb()
    start, stop = F.shard_span(n, world_size, rank)
    own = stop - start
    method = AdaPruner()  # its declared state, allocated for the rank's own samples
    method.reset(FitInfo(own, KeepSchedule(1 - KEEP, 1, 1, "linear", 3), (1, 1, 1), SEED, torch.device("cpu")))
    fill_scores(method.logits, rank, clustered)  # in place: as rank_logits
    seen = torch.ones(own, dtype=torch.bool)
    last_epoch = torch.zeros(own, dtype=torch.int16)
    kept = torch.ones(own, dtype=torch.bool)  # the kept set as a mask over the rank's samples
    state = [method.logits, method.momentum, seen, last_epoch, kept]  # (state_dict() would copy them)
    state_bytes = sum(t.numel() * t.element_size() for t in state if t.ndim)
    dist.barrier()
    t, cpu = time.perf_counter(), time.process_time()
    kept = F.sharded_select_top(method.logits, round(KEEP * n), F.generator(SEED, EPOCH, F.selection.STREAM_TIES),
                                rank, gather)  # fmt: skip
    cut_s, cut_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    peak = (rss_mb() - base) * 2**20 / own  # through the cut (the order below is any sampler's cost)
    dist.barrier()
    t = time.perf_counter()
    local = kept.nonzero().flatten().int() + start
    local = local[torch.randperm(local.numel(), generator=F.generator(SEED, EPOCH, rank))]
    order_s = time.perf_counter() - t
    del local
    result = {
        "rank": rank,
        "own": own,
        "state_bytes_per_sample": state_bytes / own,
        "peak_growth_bytes_per_sample": peak,
        "cut_s": cut_s,
        "cut_cpu_s": cut_cpu_s,
        "cut_own_work_s": cut_s - waited[0],
        "order_s": order_s,
    }
    torch.save(kept, Path(out) / f"mask{rank}.pt")
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000_000)
    parser.add_argument("--world-size", type=int, default=4)
    parser.add_argument("--no-replicated", action="store_true", help="skip the replicated session (it needs 5 GB)")
    parser.add_argument("--clustered", action="store_true", help="scores bunched at one value (losses at chance)")
    args = parser.parse_args()
    n, w = args.n, args.world_size
    print(f"N = {n:,} over {w} processes (N/W = {n // w:,}), keep {KEEP}; {torch.get_num_threads()} threads here")

    replicated: dict[str, Any] | None = None
    if not args.no_replicated:
        replicated = run_child("session", n)  # benchmarks/scale.py's session alone, in a fresh process, 2 threads
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(sharded_rank, args=(w, n, out, args.clustered), nprocs=w)
        ranks = [json.loads((Path(out) / f"rank{r}.json").read_text()) for r in range(w)]
        masks = torch.cat([torch.load(Path(out) / f"mask{r}.pt") for r in range(w)])
    sharded = {key: max(r[key] for r in ranks) for key in ranks[0] if key not in ("rank", "own")}

    torch.set_num_threads(1)
    scores = torch.cat([rank_logits(n, w, r, args.clustered) for r in range(w)])
    t = time.perf_counter()
    expected = F.select_top(scores, round(KEEP * n), F.generator(SEED, EPOCH, F.selection.STREAM_TIES))
    replicated_cut_s = time.perf_counter() - t
    same = torch.equal(masks.nonzero().flatten(), expected)

    print(f"{'':44s}{'replicated':>14s}{'sharded':>14s}")
    if replicated is not None:
        rows = [
            ("persistent state, B per sample the rank owns", replicated["state_bytes_per_sample"] * w,
             sharded["state_bytes_per_sample"]),
            ("peak RSS growth, B per sample the rank owns", replicated["peak_growth_bytes_per_sample"] * w,
             sharded["peak_growth_bytes_per_sample"]),
            ("per-rank bytes (GB)", replicated["state_bytes_per_sample"] * n / 1e9,
             sharded["state_bytes_per_sample"] * n / w / 1e9),
        ]  # fmt: skip
        for name, a, b in rows:
            print(f"{name:44s}{a:14.2f}{b:14.2f}")
        print(f"{'planning of the epoch (replicated: plan)':44s}{replicated['plan_s']:14.3f}{'':>14s}")
    print(f"{'the cut (slowest rank)':44s}{replicated_cut_s:14.3f}{sharded['cut_s']:14.3f}")
    print(f"{'  of which outside the gathers (own work)':44s}{'':>14s}{sharded['cut_own_work_s']:14.3f}")
    print(f"{'  its shuffled epoch order (reference)':44s}{'':>14s}{sharded['order_s']:14.3f}")
    print(
        f"sharded: state {sharded['state_bytes_per_sample']:.2f} B/sample/W, peak growth "
        f"{sharded['peak_growth_bytes_per_sample']:.2f} (target <= {TARGET_BYTES:.0f}); cut {sharded['cut_s']:.3f} s "
        f"(target <= {TARGET_CUT_S:.1f} s); replicated/sharded cut time {replicated_cut_s / sharded['cut_s']:.2f}x"
    )
    print(f"the {w} ranks' kept set is select_top's over all {n:,} scores, bit for bit: {same}")
    print(json.dumps({"n": n, "world_size": w, "replicated": replicated, "replicated_cut_s": replicated_cut_s,
                      "sharded_ranks": ranks, "same_kept_set": same}))  # fmt: skip


if __name__ == "__main__":
    main()
