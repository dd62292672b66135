"""Two CPU processes (gloo): every rank holds the same state, the shards split each epoch's samples."""

import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from custom_method_example import KeepHardest
from helpers import DumpPruningState, TinyModel, loader, random_dataset, trainer

from lightning_adapruner import AdaPruner, DataPruning, ForgettingPruning, InfoBatchPruning, SeTaPruning

pytestmark = pytest.mark.bits  # exact results: also run under other CPU kernels

METHODS = {
    "adapruner": AdaPruner,
    "forgetting": ForgettingPruning,
    "infobatch": InfoBatchPruning,
    "seta": SeTaPruning,
    "keep_hardest": KeepHardest,  # examples/custom_method.py: a method written on the public API alone
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "method"),
    [
        ("ddp_spawn", "adapruner"),
        ("ddp_fork", "adapruner"),
        ("ddp_fork", "forgetting"),
        ("ddp_fork", "infobatch"),
        ("ddp_fork", "seta"),
        ("ddp_fork", "keep_hardest"),
    ],
)
def test_two_ranks_hold_identical_state_and_disjoint_shards(tmp_path, strategy, method):
    n, epochs = 401, 4
    L.seed_everything(0)
    cb = DataPruning(METHODS[method](), 0.3, warmup_epochs=1, prune_epochs=2, export_dir=str(tmp_path))
    t = trainer(max_epochs=epochs, devices=2, strategy=strategy, callbacks=[cb, DumpPruningState(tmp_path)])
    t.fit(TinyModel(scheduler="pruned"), loader(random_dataset(n), 16))

    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    for name, value in r0["state"]["states"].items():  # the same per-sample state on both ranks, bit for bit
        assert torch.equal(value, r1["state"]["states"][name]), name
    assert torch.equal(r0["final"], r1["final"]) and r0["final"].numel() == round(0.7 * n)
    assert r0["mismatches"] == r1["mismatches"] == 0  # every batch's tracked indices were its own, on both ranks
    forwarded = 0
    for e in range(epochs):
        kept = r0["kept"][e]
        assert torch.equal(kept, r1["kept"][e])
        a, b = r0["seen"][e], r1["seen"][e]
        assert a.numel() == b.numel() == math.ceil(kept.numel() / 2)  # equal counts, no padding to N
        assert torch.equal(torch.cat([a, b]).unique(), kept)  # together the ranks forwarded exactly the kept set
        assert len(set(a.tolist()) & set(b.tolist())) == a.numel() + b.numel() - kept.numel()  # only top-ups repeat
        forwarded += a.numel() + b.numel()
    assert r0["forwarded"] == r1["forwarded"] == forwarded  # the counter is global on every rank
    if method == "adapruner":
        assert r0["scores"].std() > 0  # it learned from the gathered batches
    assert (tmp_path / "pruned_subset.json").is_file()


@pytest.mark.slow
def test_the_step_plan_holds_under_two_processes_with_drop_last_and_accumulation(tmp_path):
    L.seed_everything(0)
    cb = DataPruning(AdaPruner(), 0.45, warmup_epochs=1, export_dir=False)
    t = trainer(
        max_epochs=4,
        devices=2,
        strategy="ddp_fork",
        callbacks=[cb, DumpPruningState(tmp_path)],
        accumulate_grad_batches=2,
    )
    t.fit(TinyModel(scheduler="pruned"), loader(random_dataset(333), 10, drop_last=True))
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    assert r0["mismatches"] == 0  # (a OneCycle sized wrongly would have raised "Tried to step")


class ShortOnRankOne(TinyModel):
    """Rank 1 hands over one loss too few on its third step: a check only that rank can see."""

    def training_step(self, batch, batch_idx):
        loss = self.per_sample_loss(batch)
        if self.global_rank == 1 and batch_idx == 2:
            loss = loss[:-1]
        return self.pruning_loss(loss)


@pytest.mark.slow
def test_a_check_failing_on_one_rank_stops_every_rank_instead_of_hanging(tmp_path):
    cb = DataPruning(AdaPruner(), 0.3, export_dir=False)
    t = trainer(max_epochs=2, devices=2, strategy="ddp_fork", callbacks=[cb])
    with pytest.raises(Exception, match="one loss per sample|failed its checks on rank 1"):
        t.fit(ShortOnRankOne(), loader(random_dataset(200), 16))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bar", "template_defaults"), [("tqdm", False), ("rich", False), ("rich", True)], ids=["tqdm", "rich", "template"]
)
def test_progress_bars_and_synced_metrics_before_the_callback_do_not_hang(tmp_path, bar, template_defaults):
    """The bars sync metrics on rank 0 only; the callback's collectives must not pair with theirs (they ran in its
    epoch-end hook and deadlocked). In a subprocess: a gloo timeout of 60 s turns a hang into a failure."""
    worker = Path(__file__).resolve().parents[1] / "ddp_callbacks_worker.py"
    command = [sys.executable, str(worker), str(tmp_path), "--bar", bar]
    done = subprocess.run(
        command + (["--template-defaults"] if template_defaults else []),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert torch.equal(r0["kept"], r1["kept"]) and r0["kept"].numel() == 350  # 500 samples, prune_ratio 0.3
    for name, value in r0["state"]["states"].items():
        assert torch.equal(value, r1["state"]["states"][name]), name
    # the forking launcher's callback reports what its rank 0 exported
    launcher = torch.load(tmp_path / "launcher.pt", weights_only=False)
    assert torch.equal(launcher["kept"], r0["kept"]) and launcher["export_path"] == tmp_path / "pruned_subset.json"
    assert launcher["forwarded"] == 500 + 2 * 350  # warm-up epoch on all 500, then two epochs on 350
    assert "kept 350 of 500 samples" in done.stderr + done.stdout  # the final line, beside a progress bar
