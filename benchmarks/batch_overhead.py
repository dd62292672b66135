"""The fixed cost of ``BatchSelection`` per step, beyond the extra forward it is built on.

One step of batch selection = a forward without gradients over the whole batch (the scores) + choosing the kept
share + cutting every tensor of the batch to it, then the training step on the kept part. The first part is the
method itself; the rest is the plugin's overhead (target: <= 150 us per step). Two measurements, one thread:

* **fixed cost**: ``BatchSelection.select`` with a score function that returns precomputed losses, so the time
  is the plugin's alone (the no-grad context, the checks, the choice, the cut of every tensor), for batches of
  128 shaped like Fashion-MNIST and like CIFAR, with each rule;
* **beside the forward**: ``select`` with a real scoring forward against that forward alone, interleaved, on a
  linear model and the app's SmallCNN (w=32, as in overhead.py); the difference is the same fixed cost, read
  through the forward's noise.

Each number is the median over ``--repeats`` rounds of ``--steps`` calls.

Usage::

    python benchmarks/batch_overhead.py                 # about 30 s
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lightning_adapruner import BatchSelection
from lightning_adapruner.app.models.networks import SmallCNN


def per_call_us(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps * 1e6


def measure(name: str, model: nn.Module, steps: int, repeats: int, rule: str) -> None:
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    batch = (x, y)

    def score(b):
        return nn.functional.cross_entropy(model(b[0]), b[1], reduction="none")

    def scored_only():
        with torch.no_grad():
            score(batch)

    selection = BatchSelection(keep=0.3, rule=rule, seed=0)
    rounds = {"select": [], "score": []}
    per_call_us(lambda: selection.select(batch, score), steps)  # warm-up
    for _ in range(repeats):
        rounds["select"].append(per_call_us(lambda: selection.select(batch, score), steps))
        rounds["score"].append(per_call_us(scored_only, steps))
    sel, sco = (statistics.median(rounds[k]) for k in ("select", "score"))
    diffs = [a - b for a, b in zip(rounds["select"], rounds["score"])]
    print(
        f"{name:<14} rule={rule:<6} select {sel:9.1f} us   score alone {sco:9.1f} us   "
        f"overhead {statistics.median(diffs):7.1f} us (median of {repeats} paired rounds)"
    )


def fixed_cost(shape: tuple[int, ...], steps: int, repeats: int, rule: str) -> None:
    batch = (torch.randn(*shape), torch.randint(0, 10, (shape[0],)))
    losses = torch.rand(shape[0])
    selection = BatchSelection(keep=0.3, rule=rule, seed=0)
    per_call_us(lambda: selection.select(batch, lambda b: losses), steps)  # warm-up
    rounds = [per_call_us(lambda: selection.select(batch, lambda b: losses), steps) for _ in range(repeats)]
    print(f"fixed cost, batch {tuple(shape)!s:<18} rule={rule:<6} {statistics.median(rounds):7.1f} us per step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for shape in ((128, 1, 28, 28), (128, 3, 32, 32)):
        for rule in ("loss", "random"):
            fixed_cost(shape, args.steps * 10, args.repeats, rule)
    for name, model in (
        ("linear 784-10", nn.Sequential(nn.Flatten(), nn.Linear(784, 10))),
        ("SmallCNN w=32", SmallCNN(in_channels=1, num_classes=10, width=32)),
    ):
        for rule in ("loss", "random"):
            measure(name, model, args.steps, args.repeats, rule)


if __name__ == "__main__":
    main()
