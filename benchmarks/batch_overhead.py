"""The fixed cost of ``BatchSelection`` per step, beyond the extra forward it is built on.

One step of batch selection = a forward without gradients over the whole batch (the scores) + choosing the kept
share + cutting every tensor of the batch to it, then the training step on the kept part. The first part is the
method itself; the rest is the plugin's overhead. Measured side by side, interleaved, in one process::

    select    BatchSelection.select(batch, score): the scoring forward, the choice, the cut
    score     the same scoring forward alone (torch.no_grad, the same loss)
    overhead  select - score: the choice (topk, or a seeded draw) and the cut, the target being <= 150 us

on a linear model and on the small CNN of the app, batch 128, Fashion-MNIST-shaped random data, one thread. Each
number is the median over ``--repeats`` interleaved rounds of ``--steps`` calls.

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


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for name, model in (("linear 784-10", nn.Sequential(nn.Flatten(), nn.Linear(784, 10))), ("small CNN", small_cnn())):
        for rule in ("loss", "random"):
            measure(name, model, args.steps, args.repeats, rule)


if __name__ == "__main__":
    main()
