"""Memory and time of the pruning callback at scale: a 10M-sample fit beside a plain one, and the session alone
(simulated per-sample state, no model) at 1M, 10M and 100M samples.

Part 1, the fit (each arm in a fresh process, so peak RSS is its own): a linear model on N in-memory samples of
4 features, batch 4096, ``limit_train_batches=50``, 2 epochs, AdaPruner at p = 0.3, against the same fit without
the callback. Printed: peak RSS beyond the dataset per arm, their difference per sample (target <= 24 bytes),
the callback's persistent state per sample, and the per-epoch planning time (closing the epoch, choosing the
next kept set, laying out its batches; target <= 0.5 s) beside the time the epoch's shuffle takes, which any
sampler pays (the plain fit's RandomSampler shuffles the same N samples).

Part 2, the session alone: start, plan epoch 0, record a loss for every position, plan epoch 1 (a full close:
the mask update of every sample, then a top-K cut to 0.7 N), for N = 1M, 10M, 100M. Printed: planning time,
persistent state bytes per sample and peak RSS growth per sample; all should stay flat across N (linear).

    python benchmarks/scale.py                  # both parts, about 3 minutes and 6 GB at most
    python benchmarks/scale.py --part session --sizes 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import torch

TARGET_BYTES = 24.0
TARGET_PLAN_S = 0.5


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


# --------------------------------------------------------------------------------------------- part 1: the fit
def fit_arm(arm: str, n: int, threads: int) -> dict[str, Any]:
    import lightning.pytorch as pl
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_adapruner import AdaptiveDatasetPruning, PruningPerformanceController

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, 4, generator=gen), torch.randint(0, 10, (n,), generator=gen))
    data.targets = data.tensors[1]
    base = current_rss_mb()

    class Linear(PruningPerformanceController, pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 10)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = F.cross_entropy(self.net(x), y, reduction="none")
            return self.pruning_loss(loss) if arm == "callback" else loss.mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    callbacks, timings = [], {"plan": [], "close": []}
    state_bytes = None
    if arm == "callback":
        cb = AdaptiveDatasetPruning(0.3, warmup_epochs=1, prune_epochs=1, export_dir=False, verbose=False)
        callbacks.append(cb)
        _time(cb, "_session", timings)
    trainer = pl.Trainer(
        max_epochs=2, limit_train_batches=50, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
    )  # fmt: skip
    shuffle_s = _shuffle_time(int(0.7 * n))
    trainer.fit(Linear(), DataLoader(data, batch_size=4096, shuffle=True))
    if arm == "callback":
        state_bytes = _state_bytes(callbacks[0].session) / n
    return {
        "arm": arm,
        "peak_beyond_data_mb": rss_mb() - base,
        "plan_s": timings["plan"],
        "close_s": timings["close"],
        "shuffle_s": shuffle_s,
        "state_bytes_per_sample": state_bytes,
    }


def _time(cb: Any, attribute: str, timings: dict[str, list[float]]) -> None:
    """Time every session.plan (minus the shuffle inside it) and session.close of the callback's fits."""
    from lightning_adapruner.core import _session as session_module

    original_plan, original_close = session_module.PruningSession.plan, session_module.PruningSession.close

    def plan(self: Any, epoch: int) -> Any:
        open_epoch = self.record.epoch if self.record is not None else None
        t = time.perf_counter()
        out = original_plan(self, epoch)
        if out.epoch != open_epoch:  # a new epoch was planned (not the open one handed back)
            timings["plan"].append(time.perf_counter() - t)
        return out

    def close(self: Any) -> None:
        t = time.perf_counter()
        original_close(self)
        timings["close"].append(time.perf_counter() - t)

    session_module.PruningSession.plan, session_module.PruningSession.close = plan, close


def _shuffle_time(k: int) -> float:
    """One shuffle of k samples, as the epoch order draws it."""
    from lightning_adapruner.core import functional as F

    kept = torch.arange(k, dtype=torch.int32)
    t = time.perf_counter()
    F.epoch_order(kept, 1, seed=0, epoch=1)
    return time.perf_counter() - t


def _state_bytes(session: Any) -> int:
    """Bytes of the persistent per-sample state the callback holds between epochs."""
    tensors = [t for t in session.method.state_dict()["states"].values()]
    tensors += [session.seen, session.kept] + ([session.facts.labels] if session.facts.labels is not None else [])
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


# --------------------------------------------------------------------------------------------- part 2: the session
def session_arm(n: int, threads: int) -> dict[str, Any]:
    from lightning_adapruner import AdaPruner
    from lightning_adapruner.core._distributed import SingleProcess
    from lightning_adapruner.core._loader import LoaderFacts
    from lightning_adapruner.core._session import PruningSession
    from lightning_adapruner.core.functional.schedule import PruningTarget

    torch.set_num_threads(threads)
    base = current_rss_mb()
    session = PruningSession(
        AdaPruner(), PruningTarget(prune_ratio=0.3), 1, 1, "linear", class_floor=0, shard_drop_last=False
    )
    facts = LoaderFacts(
        n, batch_size=4096, drop_last=False, shuffle=True, limit_batches=1.0, max_epochs=3, device=torch.device("cpu")
    )
    session.start(facts, SingleProcess(), seed=0)
    t = time.perf_counter()
    record = session.plan(0)
    first_plan = time.perf_counter() - t
    record.buffers["loss"].uniform_(0.01, 3.0, generator=torch.Generator().manual_seed(0))  # every position's loss
    record.steps, record.recorded = record.num_batches, [(True,)] * record.num_batches
    t = time.perf_counter()
    session.close()
    close_s = time.perf_counter() - t
    t = time.perf_counter()
    session.plan(1)
    plan_s = time.perf_counter() - t
    return {
        "n": n,
        "first_plan_s": first_plan,
        "close_s": close_s,
        "plan_s": plan_s,
        "state_bytes_per_sample": _state_bytes(session) / n,
        "peak_growth_bytes_per_sample": (rss_mb() - base) * 2**20 / n,
    }


# --------------------------------------------------------------------------------------------- driver
def run_child(kind: str, *args: Any) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["fit", "session", "both"], default="both")
    parser.add_argument("--n", type=int, default=10_000_000, help="part 1: samples")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = (
            fit_arm(rest[0], int(rest[1]), args.threads) if kind == "fit" else session_arm(int(rest[0]), args.threads)
        )
        print(json.dumps(result))
        return

    if args.part in ("fit", "both"):
        plain = run_child("fit", "plain", args.n)
        cb = run_child("fit", "callback", args.n)
        beyond = (cb["peak_beyond_data_mb"] - plain["peak_beyond_data_mb"]) * 2**20 / args.n
        plan = max(cb["plan_s"][1:] or cb["plan_s"])  # the pruned epoch's planning (epoch 0 keeps everything)
        print(
            f"\nPart 1: fit of a linear model on N={args.n:,} samples, batch 4096, limit_train_batches=50, "
            f"2 epochs, AdaPruner p=0.3 (torch threads={args.threads})"
        )
        print(
            f"  peak RSS beyond the dataset: plain {plain['peak_beyond_data_mb']:.0f} MB, "
            f"with the callback {cb['peak_beyond_data_mb']:.0f} MB"
        )
        print(
            f"  callback beyond the plain fit: {beyond:.1f} bytes/sample (target <= {TARGET_BYTES:.0f}) -> "
            f"{'PASS' if beyond <= TARGET_BYTES else 'FAIL'}"
        )
        print(f"  callback's persistent state: {cb['state_bytes_per_sample']:.1f} bytes/sample")
        print(
            f"  epoch planning (close + next cut + layout, the shuffle included): "
            f"{', '.join(f'{s:.3f}' for s in cb['plan_s'])} s per epoch; epoch closes "
            f"{', '.join(f'{s:.3f}' for s in cb['close_s'])} s; the shuffle of 0.7N samples itself "
            f"{cb['shuffle_s']:.3f} s"
        )
        print(
            f"  the pruned epoch's planning without the shuffle: {plan - cb['shuffle_s']:.3f} s "
            f"(target <= {TARGET_PLAN_S} s) -> {'PASS' if plan - cb['shuffle_s'] <= TARGET_PLAN_S else 'FAIL'}"
        )
    if args.part in ("session", "both"):
        print(
            f"\nPart 2: the session alone (AdaPruner state, every position observed, cut to 0.7 N), "
            f"torch threads={args.threads}"
        )
        print(
            f"  {'N':>12} {'plan e0 s':>10} {'close s':>8} {'plan e1 s':>10} {'s / 1M':>7} {'state B/N':>10} "
            f"{'peak B/N':>9}"
        )
        for n in args.sizes:
            r = run_child("session", n)
            per_m = (r["close_s"] + r["plan_s"]) / (n / 1e6)
            print(
                f"  {n:>12,} {r['first_plan_s']:>10.3f} {r['close_s']:>8.3f} {r['plan_s']:>10.3f} {per_m:>7.3f} "
                f"{r['state_bytes_per_sample']:>10.1f} {r['peak_growth_bytes_per_sample']:>9.1f}"
            )


if __name__ == "__main__":
    main()
