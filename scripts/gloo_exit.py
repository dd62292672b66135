"""How often a gloo process that exits with its process group alive aborts, against one that destroys it first.

Each run starts ``--world-size`` processes on this machine (``init_process_group("gloo")`` from the environment,
50 all-reduces and broadcasts of 1 000 floats, then exit) and counts the runs in which any process ended with a
non-zero status (an abort at the interpreter's shutdown: "terminate called without an active exception", status
134 / -6). Why the app destroys the group at exit in every process (``DestroyProcessGroupAtExit``)::

    python scripts/gloo_exit.py                # 30 runs of 4 processes each way: ~4.5 min on 2 cores
    python scripts/gloo_exit.py --runs 10 --world-size 2
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

WORKER = """
import sys, torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.ones(1000)
for _ in range(50):
    dist.all_reduce(t)
    dist.broadcast(t, 0)
if sys.argv[1] == "destroy":
    dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(world_size: int, mode: str) -> list[int]:
    """The exit status of every process of one run."""
    port = free_port()
    procs = []
    for rank in range(world_size):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "OMP_NUM_THREADS": "1",
        }
        cmd = [sys.executable, "-c", WORKER, mode]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return [p.wait(timeout=120) for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--world-size", type=int, default=4)
    args = parser.parse_args()
    for mode in ("keep", "destroy"):
        failed = [codes for codes in (one_run(args.world_size, mode) for _ in range(args.runs)) if any(codes)]
        statuses = sorted({c for codes in failed for c in codes if c})
        print(
            f"group {'destroyed' if mode == 'destroy' else 'left alive'} at exit: {len(failed)} of {args.runs} runs "
            f"of {args.world_size} processes had a process fail (statuses {statuses or '-'})"
        )


if __name__ == "__main__":
    main()
