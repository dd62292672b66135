"""Why a pruning method's declared state is not a set of ``torch.nn.Module`` buffers: two measurements.

torchmetrics declares a metric's state once (``add_state``) and writes reset, device moves, ``state_dict`` and
sync once in its base class; ``PruningMethod.add_state`` does the same. torchmetrics' base is an ``nn.Module``
because a metric lives inside the model and must follow it. A pruning method's state does not belong to the
model, and making it module state would cost, where a user hangs the method on their LightningModule
(``self.pruner = AdaPruner()``, the natural thing to write):

1. **DDP re-sends it every step.** ``DistributedDataParallel(broadcast_buffers=True)``, the default, broadcasts
   every buffer of the wrapped module from rank 0 before each forward: an ``[N]`` float32 state is ``4 N`` bytes
   per step. Measured here: two gloo processes on CPU, a small MLP step, with and without an ``[N]`` buffer.
2. **Precision casts reach it.** ``Trainer(precision="bf16-true")`` casts the module's floating-point buffers
   with its parameters (``module.to(torch.bfloat16)``); bf16 keeps 8 significant bits, so per-sample logits that
   differ by less than 1/128 of their size become ties and the cut becomes a coin toss. Measured here: the share
   of 1M AdaPruner-like logits (``N(0, 0.05)`` around 0.5) that stay distinct after the cast.

``PruningMethod`` keeps the torchmetrics shape (declared once; ``to``, ``state_dict``, ``persistent``, ``version``
written once in the base) on plain tensors the callback owns, checkpointed in the callback's state.

Usage::

    python benchmarks/state_buffers.py                 # about 1 minute on 2 CPU cores
    python benchmarks/state_buffers.py --samples 1000000 4000000 --steps 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def _worker(rank: int, world: int, init: str, samples: list[int], steps: int, out: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.manual_seed(0)
    results = {}
    for n in [0, *samples]:
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
        if n:
            model.register_buffer("logits", torch.zeros(n))  # the state, as a module buffer
        ddp = nn.parallel.DistributedDataParallel(model)  # broadcast_buffers=True: the default
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        x, y = torch.randn(128, 64), torch.randint(0, 10, (128,))
        times = []
        for step in range(steps + 3):
            start = time.perf_counter()
            opt.zero_grad()
            nn.functional.cross_entropy(ddp(x), y).backward()
            opt.step()
            if step >= 3:
                times.append(time.perf_counter() - start)
        results[n] = statistics.median(times)
        dist.barrier()
    if rank == 0:
        out.update(results)
    dist.destroy_process_group()


def ddp_step_times(samples: list[int], steps: int) -> dict[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        init = f"file://{os.path.join(tmp, 'rendezvous')}"
        with mp.Manager() as manager:
            out = manager.dict()
            mp.spawn(_worker, args=(2, init, samples, steps, out), nprocs=2, join=True)
            return dict(out)


def distinct_after_cast(n: int) -> tuple[float, float]:
    logits = 0.5 + 0.05 * torch.randn(n, generator=torch.Generator().manual_seed(0))
    module = nn.Module()
    module.register_buffer("logits", logits.clone())
    module.to(torch.bfloat16)  # what a "bf16-true" precision plugin does to the module
    return logits.unique().numel() / n, module.logits.unique().numel() / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    times = ddp_step_times(args.samples, args.steps)
    print("DDP step (2 gloo processes, CPU, MLP 64-256-10, batch 128), median over", args.steps, "steps")
    print(f"  no buffer                      {1e3 * times[0]:8.2f} ms   1.00x")
    for n in args.samples:
        print(f"  [N] float32 buffer, N={n:>9,} {1e3 * times[n]:8.2f} ms   {times[n] / times[0]:.2f}x")
    before, after = distinct_after_cast(1_000_000)
    print(f"bf16-true cast of 1M logits N(0.5, 0.05): distinct values {before:.1%} before, {after:.2%} after")


if __name__ == "__main__":
    main()
