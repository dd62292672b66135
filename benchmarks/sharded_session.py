"""The real ``DataPruning`` session with sharded state (``sharded=True``) against the replicated one: per-rank memory
and the time to plan a pruned epoch, at N = 100M over 4 gloo processes (no model: the warm-up epoch's statistics
are written straight into the record, as ``pruning_loss`` would have gathered them).

Each arm runs the session of ``EL2NPruning`` (8 bytes of method state per sample, as AdaPruner's logits and
momentum) or, ``--method adapruner``, of ``AdaPruner`` (whose epoch start also moves its logits to the block's
positions and runs its controllers' trajectory over them) through start, the warm-up epoch's plan, its close (the
method's update) and the first pruned epoch's plan (the cut at keep 0.85 and the epoch's order). The replicated
session holds all N on every rank and needs no collective, so one process measures a rank; the sharded one runs
in W processes, each with its own N / W samples. Printed per arm: the persistent state between epochs and the
peak RSS growth through the whole sequence, in bytes per sample the rank owns (issue 16's target: <= 16 for the
state), the close and the plan (the slowest rank; issue 16's target for the plan: <= 1 s at N / W = 25M), the plan's
time with and without its shuffle and its time in the kernel (the first touch of fresh pages, costly on this
project's VM), and the check that the W ranks' kept sets together are the replicated session's,
bit for bit. Beside them, what a plain fit without pruning spends at the same point: the epoch's first index from
the ``DistributedSampler`` Lightning puts in a shuffled loader (a permutation of all N, as a list, on every rank;
timed in one process, as every rank does the same).

    python benchmarks/sharded_session.py                                   # N = 100M, W = 4: ~6 min, ~9 GB
    python benchmarks/sharded_session.py --n 2000000 --world-size 2        # quick
    python benchmarks/sharded_session.py --n 50000000 --world-size 2 --repeats 5   # the sharded arm 5 times
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import current_rss_mb, rss_mb  # noqa: E402

from lightning_adapruner import AdaPruner, EL2NPruning  # noqa: E402
from lightning_adapruner import functional as F  # noqa: E402
from lightning_adapruner.core._distributed import SingleProcess  # noqa: E402
from lightning_adapruner.core._loader import LoaderFacts  # noqa: E402
from lightning_adapruner.core._session import PruningSession, ShardedSession  # noqa: E402
from lightning_adapruner.core.functional.schedule import PruningTarget  # noqa: E402

TARGET_BYTES = 16.0
METHODS = {"el2n": EL2NPruning, "adapruner": AdaPruner}
BATCH = 4096


class GlooCollectives:
    """The session's collectives over a plain gloo group (what ``StrategyCollectives`` does through Lightning)."""

    def __init__(self, world_size: int, rank: int) -> None:
        self.world_size, self.rank = world_size, rank

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(rows) for _ in range(self.world_size)]
        dist.all_gather(parts, rows.contiguous())
        return torch.stack(parts)

    def same_everywhere(self, value: torch.Tensor) -> bool:
        everyone = self.gather_rows(value)
        return bool((everyone == everyone[0]).all())

    def broadcast(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def arm(rank: int, world_size: int, n: int, out: str, sharded: bool, method: str, run: int = 0) -> None:
    torch.set_num_threads(1)
    if sharded:
        dist.init_process_group("gloo", init_method=f"file://{out}/store{run}", rank=rank, world_size=world_size)
    comm = GlooCollectives(world_size, rank) if sharded else SingleProcess()
    base = current_rss_mb()
    session = (ShardedSession if sharded else PruningSession)(
        METHODS[method](), PruningTarget(prune_ratio=0.15), 1, 1, "linear", class_floor=0, shard_drop_last=False
    )
    # batch_size per process: the replicated arm's one process runs the same global batch as the W ranks together
    facts = LoaderFacts(
        n, batch_size=BATCH if sharded else BATCH * world_size, drop_last=False, shuffle=True, limit_batches=1.0,
        max_epochs=3, device=torch.device("cpu"),
    )  # fmt: skip
    session.start(facts, comm, seed=0)
    record = session.plan(0)  # the warm-up: every sample
    gen = torch.Generator().manual_seed(1 + rank)
    for buffer in record.buffers.values():  # the statistics pruning_loss would have gathered (seeded per sample)
        buffer.copy_(sample_values(record, n, world_size, rank, sharded, gen))
    if sharded:
        record.batch_of.zero_()
    record.steps, record.recorded = record.num_batches, [(True,) * world_size] * record.num_batches
    if sharded:  # (each timing starts with every rank at its start: a rank's time holds no wait for another's close)
        dist.barrier()
    t = time.perf_counter()
    session.close()
    close_s = time.perf_counter() - t
    method = session.method
    state = [*method.state_dict()["states"].values(), session.seen, session.last_epoch]
    if sharded:
        dist.barrier()
    before, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    record = session.plan(1)
    plan_s, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    own = method.fit.num_samples
    kept = session.kept.long() + (session.shard.start if sharded else 0)
    state.append(session.kept)
    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()  # the plan's shuffle alone: the one its session draws (the replicated: of every order)
    if sharded:
        F.shuffled(session.kept, gen)
    else:
        F.epoch_order(session.kept, world_size, 0, 1, True, False)
    shuffle_s = time.perf_counter() - t
    t = time.perf_counter()  # what functional.shuffled replaces: one randperm and its gather
    session.kept.index_select(0, torch.randperm(session.kept.numel(), generator=gen, dtype=torch.int32))
    randperm_s = time.perf_counter() - t
    result = {
        "own": own,
        "state_bytes_per_sample": sum(s.numel() * s.element_size() for s in state) / own,
        "peak_growth_bytes_per_sample": (rss_mb() - base) * 2**20 / own,
        "close_s": close_s,
        "plan_s": plan_s,
        "plan_kernel_s": after.ru_stime - before.ru_stime,  # (mostly the first touch of fresh pages)
        "plan_cpu_s": after.ru_stime + after.ru_utime - before.ru_stime - before.ru_utime,  # (the rank's own work)
        "plan_page_faults": after.ru_minflt - before.ru_minflt,
        "shuffle_s": shuffle_s,
        "randperm_s": randperm_s,
        "plan_beyond_shuffle_s": plan_s - shuffle_s,
    }
    torch.save(kept.int() if n < 2**31 else kept, Path(out) / f"kept{int(sharded)}-{run}-{rank}.pt")  # (340 MB at 100M)
    (Path(out) / f"rank{int(sharded)}-{rank}.json").write_text(json.dumps(result))
    if sharded:
        dist.barrier()
        dist.destroy_process_group()


class Sized(torch.utils.data.Dataset):
    """A dataset of ``n`` samples that only tells its length (all ``DistributedSampler`` reads)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def plain_arm(rank: int, world_size: int, n: int, out: str) -> None:
    """The first index of an epoch from a plain fit's sampler (rank 0 of ``world_size``)."""
    torch.set_num_threads(1)
    sampler = DistributedSampler(Sized(n), num_replicas=world_size, rank=rank, shuffle=True, seed=0)
    sampler.set_epoch(1)
    t = time.perf_counter()
    next(iter(sampler))
    (Path(out) / "plain.json").write_text(json.dumps({"first_index_s": time.perf_counter() - t}))


def sample_values(record: Any, n: int, world_size: int, rank: int, sharded: bool, gen: Any) -> torch.Tensor:
    """Every sample's statistic as a function of its dataset index alone (so both arms hold the same scores), in the
    record's layout: by the rank's own samples (sharded) or by position of the epoch's order (replicated)."""
    if sharded:
        start, stop = record.span
        index = torch.arange(start, stop, dtype=torch.float64)
    else:
        index = record.order_cpu[: record.buffers["loss"].numel()].double()
    return (torch.sin(index * 12.9898) * 43758.5453).frac().abs().float() * 3  # in [0, 3): any fixed hash will do


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000_000)
    parser.add_argument("--world-size", type=int, default=4)
    parser.add_argument("--method", choices=sorted(METHODS), default="el2n")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the sharded arm (the table: the median run)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    n, w = args.n, args.world_size
    print(f"N = {n:,} over {w} processes (N/W = {n // w:,}); {args.method}, first pruned epoch keeps 0.85")
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(
            arm, args=(w, n, out, False, args.method), nprocs=1
        )  # (rank 0 of the replicated arm: one process is a rank)
        replicated = json.loads((Path(out) / "rank0-0.json").read_text())
        runs = []
        for run in range(args.repeats):  # (each run a fresh set of processes and store: the same plan, timed again)
            mp.spawn(arm, args=(w, n, out, True, args.method, run), nprocs=w)
            runs.append([json.loads((Path(out) / f"rank1-{r}.json").read_text()) for r in range(w)])
        mp.spawn(plain_arm, args=(w, n, out), nprocs=1)
        plain = json.loads((Path(out) / "plain.json").read_text())
        # the kept sets read only now: a spawned process's peak RSS (getrusage) starts at its parent's RSS
        expected, same_runs = torch.sort(torch.load(Path(out) / "kept0-0-0.pt")).values, []
        for run in range(args.repeats):
            joined = torch.sort(torch.cat([torch.load(Path(out) / f"kept1-{run}-{r}.pt") for r in range(w)])).values
            same_runs.append(torch.equal(joined, expected))
    slowest = [{key: max(r[key] for r in ranks) for key in ranks[0] if key != "own"} for ranks in runs]
    sharded = sorted(slowest, key=lambda run: run["plan_s"])[(len(slowest) - 1) // 2]  # the median run
    print(f"{'':48s}{'replicated':>12s}{'sharded':>12s}{'ratio':>8s}")
    rows = [
        ("persistent state, B per sample the rank owns", replicated["state_bytes_per_sample"] * w,
         sharded["state_bytes_per_sample"]),
        ("peak RSS growth, B per sample the rank owns", replicated["peak_growth_bytes_per_sample"] * w,
         sharded["peak_growth_bytes_per_sample"]),
        ("per-rank state (GB)", replicated["state_bytes_per_sample"] * n / 1e9,
         sharded["state_bytes_per_sample"] * n / w / 1e9),
        ("close of the warm-up epoch (s, slowest rank)", replicated["close_s"], sharded["close_s"]),
        ("plan of the first pruned epoch (s, slowest rank)", replicated["plan_s"], sharded["plan_s"]),
        ("  the plan's CPU time (s: ranks sharing a core)", replicated["plan_cpu_s"], sharded["plan_cpu_s"]),
        ("  of which in the kernel (s: fresh pages' faults)", replicated["plan_kernel_s"], sharded["plan_kernel_s"]),
        ("  of which its shuffle (s, timed alone)", replicated["shuffle_s"], sharded["shuffle_s"]),
        ("  the plan beyond the shuffle (s)", replicated["plan_beyond_shuffle_s"], sharded["plan_beyond_shuffle_s"]),
        ("  the rank's kept set by randperm + gather (s)", replicated["randperm_s"], sharded["randperm_s"]),
    ]  # fmt: skip
    for name, a, b in rows:
        print(f"{name:48s}{a:12.3f}{b:12.3f}" + (f"{b / a:8.2f}" if a else f"{'-':>8s}"))  # (a kernel time of 0)
    print(f"{'a plain fit: DistributedSampler, first index (s)':48s}{plain['first_index_s']:12.3f}")
    if len(runs) > 1:
        print(
            "every run's plan, slowest rank: "
            + ", ".join(f"{r['plan_s']:.3f} s (CPU {r['plan_cpu_s']:.3f})" for r in slowest)
        )
    same = all(same_runs)
    check = (
        f"the {w} ranks' kept sets are the replicated session's ({expected.numel():,} samples), bit for bit: {same}"
        if args.method == "el2n"  # AdaPruner's update depends on each sample's batch, placed otherwise when sharded
        else f"the {w} ranks keep {joined.numel():,} distinct samples: {torch.equal(joined.unique(), joined)} (the "
        f"replicated session keeps {expected.numel():,}; AdaPruner's logits depend on the batches, sharded otherwise)"
    )
    print(
        f"sharded: state {sharded['state_bytes_per_sample']:.2f} B/sample/W (target <= {TARGET_BYTES:.0f}), peak "
        f"growth {sharded['peak_growth_bytes_per_sample']:.2f}; {check}"
    )
    print(
        json.dumps(
            {
                "n": n,
                "world_size": w,
                "method": args.method,
                "replicated": replicated,
                "sharded_runs": runs,
                "plain": plain,
                "same": same,
            }
        )
    )


if __name__ == "__main__":
    main()
