"""Two "nodes" of two processes on this machine: torchrun's environment as on a real cluster (``--nnodes=2``,
static rendezvous on localhost), and SLURM's as ``srun`` sets it, with the app's ``trainer=multinode`` config."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_all(commands: list[tuple[list[str], dict[str, str]]], timeout: int = 300) -> list[str]:
    """Start every process, wait for all; a failure shows each one's last output."""
    procs = [
        subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd, env in commands
    ]
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    failed = [(i, out[-2500:]) for i, (p, out) in enumerate(zip(procs, outputs)) if p.returncode != 0]
    assert not failed, failed
    return outputs


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PL_", "LOCAL_RANK", "NODE_RANK"))}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)  # (keeps the floor's overlay)
    return {**env, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_torchrun_nodes_of_two_processes_train_with_one_kept_set(tmp_path):
    port, torchrun = free_port(), str(Path(sys.executable).parent / "torchrun")
    worker = str(ROOT / "tests" / "multinode_worker.py")
    common = ["--nnodes=2", "--nproc-per-node=2", "--master-addr=127.0.0.1", f"--master-port={port}"]
    run_all([([torchrun, *common, f"--node-rank={k}", worker, str(tmp_path)], base_env()) for k in (0, 1)])
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(4)]
    assert [r["ranks"] for r in ranks] == [(0, 0, 0, 4), (1, 0, 1, 4), (2, 1, 0, 4), (3, 1, 1, 4)]
    first = ranks[0]
    assert [p.numel() for p in first["planned"].values()] == [400, 256, 256, 188]  # warm-up, then pruned epochs
    for other in ranks[1:]:  # one plan, one kept set, one method state on every rank of both nodes
        assert all(torch.equal(first["planned"][e], other["planned"][e]) for e in first["planned"])
        assert torch.equal(first["kept"], other["kept"]) and first["kept"].numel() == 200
        for name, value in first["state"]["states"].items():
            assert torch.equal(value, other["state"]["states"][name]), name
    for epoch, planned in first["planned"].items():  # the four shards split each epoch's samples exactly
        forwarded = torch.cat([r["forwarded"][epoch] for r in ranks])
        assert sorted(forwarded.tolist()) == sorted(planned.tolist()), epoch


def slurm_env(rank: int, port: int) -> dict[str, str]:
    """What ``srun`` sets for task ``rank`` of ``sbatch --nodes=2 --ntasks-per-node=2`` (Lightning's
    ``SLURMEnvironment`` reads these; the node list names this machine twice)."""
    return {
        **base_env(),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "adapruner",
        "SLURM_NTASKS": "4",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NNODES": "2",
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(rank % 2),
        "SLURM_NODEID": str(rank // 2),
        "SLURM_NODELIST": "localhost",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


@pytest.mark.slow
def test_the_multinode_config_trains_under_slurms_environment(tmp_path):
    """``trainer=multinode`` as the README runs it under SLURM (one task per device, Lightning launching nothing),
    on CPU: four tasks, two per "node"; rank 0 exports the subset every rank agreed on."""
    pytest.importorskip("hydra")
    port = free_port()
    args = [
        "trainer=multinode",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",
        "trainer.max_epochs=3",
        "data=synthetic",
        "data.num_samples=600",
        "data.num_test_samples=100",
        "data.batch_size=32",
        "model=mlp",
        "model.net.hidden=[16]",
        f"hydra.run.dir={tmp_path}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
    ]
    # the app as `python -m`, after an exit handler that runs last and says whether the app destroyed the group
    probe = (
        "import atexit, runpy, torch.distributed as d; "
        "atexit.register(lambda: print('process group left at exit:', d.is_initialized())); "
        "runpy.run_module('lightning_adapruner.app.train', run_name='__main__', alter_sys=True)"
    )
    outputs = run_all([([sys.executable, "-c", probe, *args], slurm_env(r, port)) for r in range(4)])
    for rank, output in enumerate(outputs):  # Lightning took the ranks from SLURM: four members of one group
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/4" in output, output[-2000:]
        # gloo can abort a process that exits with its group alive (status 134 after training to the end)
        assert "process group left at exit: False" in output, output[-2000:]
    from lightning_adapruner import read_pruned_subset

    subset = read_pruned_subset(next(tmp_path.rglob("pruned_subset.json")))
    meta = subset.metadata
    assert (
        subset.kept_indices.numel() == meta["num_kept"] == round((1 - meta["prune_ratio_target"]) * meta["num_samples"])
    )
