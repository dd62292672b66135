"""``select_top`` (the radix search it runs since this round) against the ``torch.kthvalue`` algorithm it replaced,
side by side in one process: the same kept set, and the time of each, interleaved, median of ``--repeats``.

Scores: ``spread`` (N(0, 1), learned logits) and ``bunched`` (ln 10 + 0.005 N(0, 1), losses at chance level, most of
them in the cut's top-16-bit bin); keep 0.7. The old algorithm is ``tests/helpers.py``'s ``reference_select_top``,
which the tests compare the new one with.

    python benchmarks/select_top.py                       # 1M, 10M, 25M; 1 and 2 threads: about 2 minutes
    python benchmarks/select_top.py --sizes 1000000 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import reference_select_top  # noqa: E402

from lightning_adapruner import functional as F  # noqa: E402

KEEP = 0.7


def scores_of(kind: str, n: int) -> torch.Tensor:
    s = torch.empty(n).normal_(generator=torch.Generator().manual_seed(0))
    return s.mul_(0.005).add_(2.3026) if kind == "bunched" else s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 25_000_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'scores':8s}{'N':>12s}{'threads':>8s}{'kthvalue ms':>13s}{'radix ms':>10s}{'ratio':>8s}  same set")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for kind in ("spread", "bunched"):
            for n in args.sizes:
                scores, k = scores_of(kind, n), round(KEEP * n)
                old, new, same = [], [], True
                for _ in range(args.repeats):  # interleaved: both arms see the same machine
                    t = time.perf_counter()
                    a = reference_select_top(scores, k, F.generator(0, 1, F.selection.STREAM_TIES))
                    old.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    b = F.select_top(scores, k, F.generator(0, 1, F.selection.STREAM_TIES))
                    new.append(time.perf_counter() - t)
                    same = same and torch.equal(a, b)
                o, r = statistics.median(old) * 1e3, statistics.median(new) * 1e3
                print(f"{kind:8s}{n:>12,d}{threads:>8d}{o:>13.1f}{r:>10.1f}{r / o:>8.2f}  {same}")


if __name__ == "__main__":
    main()
