"""W processes (gloo) of the distributed threshold search, each holding only its shard of the scores.

    python tests/sharded_worker.py OUT WORLD_SIZE N K

Rank r computes the scores of its own span only and writes OUT/rank<r>.pt: its mask and its span.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_adapruner import functional as F


def shard_scores(n: int, start: int, stop: int) -> torch.Tensor:
    """Scores of samples ``[start, stop)`` of a fixed population with many ties (a value per sample from its index)."""
    index = torch.arange(start, stop, dtype=torch.long)
    return ((index * 2_654_435_761) % 4099).float() / 7.0  # 4 099 distinct values over any N: ties at every cut


def rank_main(rank: int, world_size: int, out: str, n: int, k: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=world_size)

    def gather(tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts)

    start, stop = F.shard_span(n, world_size, rank)
    gen = F.generator(5, 2, F.selection.STREAM_TIES)
    mask = F.sharded_select_top(shard_scores(n, start, stop), k, gen, rank, gather)
    torch.save({"span": (start, stop), "mask": mask}, Path(out) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    out, world, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    mp.spawn(rank_main, args=(world, out, n, k), nprocs=world)
