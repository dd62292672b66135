"""Cost of one AdaPruner mask update at N = 10,000,000 samples on CPU, through the real code path.

Per step it times ``AdaptiveDatasetPruning._controller_loss(loss, idx)`` (what ``pruning_loss``
calls inside ``training_step``) and the per-step update that the callback's ``on_train_batch_end``
runs: ``_update(trainer)``, the ``SamplePruning`` harness's worker that calls AdaPruner's ``_step``.
Batches hold distinct dataset indices: consecutive slices of a ``torch.randperm`` shuffle of the
samples the sampler keeps that epoch (one epoch's draw). The callback runs with ``prune_ratio=0.3``;
epoch 0 is warm-up (all N kept). Targets: ``< 1 ms`` per step (median) and ``<= 16`` bytes of per-
sample state (logits + momentum + kept indices + labels, measured from the tensors the callback
holds).

For contrast it times a *dense* ``torch.optim.SGD`` step over all N logits (momentum and weight
decay as the callback's defaults, the batch's gradient scattered into a dense N-vector): what a
naive ``nn.Parameter`` mask would cost per step.

Usage::

    python benchmarks/mask_update.py                             # N=10M, batches 128 256 1024
    python benchmarks/mask_update.py --batch-sizes 256 --steps 5000 --json /tmp/mask.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from lightning_adapruner import AdaptiveDatasetPruning, IndexedDataset

TARGET_US = 1000.0
TARGET_BYTES = 16.0


class _LabelsOnly(Dataset):
    """N samples that are never loaded: only ``len`` and ``targets`` are read while setting up the state."""

    def __init__(self, targets: torch.Tensor) -> None:
        self.targets = targets

    def __len__(self) -> int:
        return self.targets.numel()

    def __getitem__(self, i: int) -> Any:  # pragma: no cover - never called
        raise RuntimeError("not loaded in this benchmark")


def _trainer_standin(epoch: int) -> SimpleNamespace:
    # A minimal stand-in for pl.Trainer with just the attributes the callback's code path reads:
    # _ensure_state (strategy.root_device, limit_train_batches via planned_batches), _on_train_dataloader
    # (world_size, global_rank, current_epoch), _sync_plan/_check_consistency (world_size) and
    # the per-step update (world_size, current_epoch).
    return SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
        world_size=1,
        global_rank=0,
        limit_train_batches=1.0,
        current_epoch=epoch,
    )


def build_callback(n: int, batch_size: int, max_epochs: int, epoch: int) -> tuple[AdaptiveDatasetPruning, Any]:
    """An ``AdaptiveDatasetPruning`` whose per-sample state is initialised for ``n`` samples.

    The state is set up by the callback's own dataloader hook (``_on_train_dataloader``, which runs
    ``_ensure_state`` and ``_sync_plan``: logits, momentum, int16 labels, the sampler's kept indices),
    driven with the trainer stand-in above; ``_max_epochs`` / ``_world_size`` are set as ``setup`` would.
    """
    adp = AdaptiveDatasetPruning(prune_ratio=0.3, export_dir=False, verbose=False)
    adp._max_epochs = max_epochs  # what setup() reads from trainer.max_epochs
    adp._world_size = 1
    labels = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(1))
    loader = DataLoader(IndexedDataset(_LabelsOnly(labels)), batch_size=batch_size, shuffle=True)
    trainer = _trainer_standin(epoch)
    adp._on_train_dataloader(trainer, loader)
    return adp, trainer


def state_bytes(adp: AdaptiveDatasetPruning) -> dict[str, int]:
    parts = {
        "logits": adp._logits,
        "momentum": adp._momentum,
        "kept_indices": adp._sampler.indices if adp._sampler is not None else None,
        "labels": adp._labels,
    }
    return {k: (0 if t is None else t.numel() * t.element_size()) for k, t in parts.items()}


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def bench_sparse(n: int, batch_size: int, steps: int, warmup: int, max_epochs: int, epoch: int) -> dict[str, Any]:
    adp, trainer = build_callback(n, batch_size, max_epochs, epoch)
    # one epoch's draw: a shuffle of the samples the sampler keeps this epoch (all N in epoch 0)
    assert adp._sampler is not None
    kept = adp._sampler.indices
    perm = kept[torch.randperm(kept.numel(), generator=torch.Generator().manual_seed(2))]
    update = adp._update  # the per-step worker of on_train_batch_end
    total = steps + warmup
    if total * batch_size > perm.numel():
        raise SystemExit(
            f"(--steps + --warmup) * batch {batch_size} exceeds the {perm.numel()} kept samples: batches would repeat"
        )
    gen = torch.Generator().manual_seed(3)
    losses = [torch.rand(batch_size, generator=gen).mul_(3.0).requires_grad_() for _ in range(16)]
    ctrl, upd = [], []
    for s in range(total):
        idx = perm[s * batch_size : (s + 1) * batch_size].clone()  # a fresh tensor, as collate makes one
        loss = losses[s % len(losses)]
        t0 = time.perf_counter()
        out = adp._controller_loss(loss, idx)
        t1 = time.perf_counter()
        update(trainer)
        t2 = time.perf_counter()
        del out
        if s >= warmup:  # the first call of an epoch validates the indices against the sampler (O(N))
            ctrl.append((t1 - t0) * 1e6)
            upd.append((t2 - t1) * 1e6)
    both = [a + b for a, b in zip(ctrl, upd)]
    sizes = state_bytes(adp)
    return {
        "batch_size": batch_size,
        "median_us": statistics.median(both),
        "p95_us": percentile(both, 0.95),
        "mean_us": statistics.fmean(both),
        "controller_loss_median_us": statistics.median(ctrl),
        "update_median_us": statistics.median(upd),
        "state_bytes": sizes,
        "bytes_per_sample": sum(sizes.values()) / n,
    }


def bench_dense(n: int, batch_size: int, repeats: int) -> dict[str, float]:
    """A naive mask: one ``nn.Parameter`` of N logits, stepped by ``torch.optim.SGD`` every batch."""
    param = torch.nn.Parameter(torch.ones(n))
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9, weight_decay=5e-4)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(4))
    grad_b = torch.randn(batch_size, generator=torch.Generator().manual_seed(5))
    times = []
    for s in range(repeats + 2):
        idx = perm[s * batch_size : (s + 1) * batch_size]
        t0 = time.perf_counter()
        grad = torch.zeros(n)  # what autograd through logits[idx] hands the optimiser
        grad[idx] = grad_b
        param.grad = grad
        opt.step()
        opt.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        if s >= 2:
            times.append((t1 - t0) * 1e6)
    return {"median_us": statistics.median(times), "p95_us": percentile(times, 0.95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=10_000_000, help="N, the training-set size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 1024])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per batch size")
    parser.add_argument("--warmup", type=int, default=100, help="untimed steps first")
    parser.add_argument("--dense-repeats", type=int, default=30, help="timed dense SGD steps per batch size")
    parser.add_argument("--max-epochs", type=int, default=10, help="the fit's max_epochs (sizes k's step)")
    parser.add_argument(
        "--last-epoch", action="store_true", help="time the last epoch, where k also runs its binarising step"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    n = args.num_samples
    epoch = args.max_epochs - 1 if args.last_epoch else 0
    t_start = time.perf_counter()
    rows = []
    for b in args.batch_sizes:
        row = bench_sparse(n, b, args.steps, args.warmup, args.max_epochs, epoch)
        row["dense"] = bench_dense(n, b, args.dense_repeats)
        row["dense_over_sparse"] = row["dense"]["median_us"] / row["median_us"]
        rows.append(row)
    elapsed = time.perf_counter() - t_start

    print(
        f"\nAdaPruner mask update per step, N={n:,}, CPU, torch threads={args.threads}, {args.steps} timed steps "
        f"after {args.warmup} warm-up, prune_ratio 0.3, epoch {epoch} of {args.max_epochs}"
        + (" (binarising)" if args.last_epoch else "")
    )
    header = (
        f"{'batch':>6} {'median us':>10} {'p95 us':>9} {'mean us':>9} {'ctrl_loss us':>13} {'update us':>10} "
        f"{'dense SGD us':>13} {'dense/ours':>11} {'verdict':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = "PASS" if r["median_us"] < TARGET_US else "FAIL"
        r["verdict"] = verdict
        print(
            f"{r['batch_size']:>6} {r['median_us']:>10.1f} {r['p95_us']:>9.1f} {r['mean_us']:>9.1f} "
            f"{r['controller_loss_median_us']:>13.1f} "
            f"{r['update_median_us']:>10.1f} {r['dense']['median_us']:>13.0f} {r['dense_over_sparse']:>10.0f}x "
            f"{verdict:>8}"
        )
    sizes = rows[0]["state_bytes"]
    per = {k: v / n for k, v in sizes.items()}
    bps = rows[0]["bytes_per_sample"]
    state_verdict = "PASS" if bps <= TARGET_BYTES else "FAIL"
    detail = " + ".join(f"{k} {v:g}" for k, v in per.items())
    print(f"per-sample state: {detail} = {bps:g} bytes/sample ({sum(sizes.values()) / 2**20:.0f} MiB at N={n:,})")
    step_verdict = "PASS" if all(r["verdict"] == "PASS" for r in rows) else "FAIL"
    print(f"target: median step < {TARGET_US:.0f} us at every batch size -> {step_verdict}")
    print(f"target: state <= {TARGET_BYTES:g} bytes/sample -> {state_verdict}")
    print(f"total benchmark time {elapsed:.0f}s")
    if args.json is not None:
        payload = {
            "num_samples": n,
            "target_us": TARGET_US,
            "target_bytes_per_sample": TARGET_BYTES,
            "step_verdict": step_verdict,
            "state_verdict": state_verdict,
            "args": {k: str(v) for k, v in vars(args).items()},
            "rows": rows,
        }
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
