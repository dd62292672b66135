"""Stop anywhere, resume from the checkpoint: the same samples, the same state, bit for bit.

End-of-epoch checkpoints (at train-epoch end and at validation end) and a SIGKILL in the middle of a pruned
epoch while the kept set is still shrinking, in one process and in two."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch
from custom_method_example import KeepHardest
from helpers import EpochRecorder, TinyModel, loader, random_dataset, trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_adapruner import AdaPruner, DataPruning, ForgettingPruning, InfoBatchPruning, RS2Pruning, SeTaPruning

pytestmark = pytest.mark.bits  # exact results: also run under other CPU kernels

WORKER = Path(__file__).resolve().parents[1] / "resume_worker.py"
METHODS = {
    "adapruner": AdaPruner,
    "forgetting": ForgettingPruning,
    "infobatch": InfoBatchPruning,
    "seta": SeTaPruning,
    "rs2": RS2Pruning,
    "keep_hardest": KeepHardest,
}


class StopAfter(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def run(tmp_path, with_val, method, callbacks=(), ckpt_path=None, epochs=6):
    L.seed_everything(0)
    rec = EpochRecorder()
    cb = DataPruning(METHODS[method](), 0.4, warmup_epochs=1, prune_epochs=3, export_dir=False, seed=7)
    t = trainer(
        max_epochs=epochs, callbacks=[cb, rec, *callbacks], enable_checkpointing=True, default_root_dir=tmp_path
    )
    val = loader(random_dataset(64, seed=1), 32, shuffle=False) if with_val else None
    t.fit(TinyModel(scheduler="pruned"), loader(random_dataset(300), 16), val_dataloaders=val, ckpt_path=ckpt_path)
    return cb, rec


@pytest.mark.parametrize("with_val", [False, True], ids=["ckpt-on-train-epoch-end", "ckpt-on-validation-end"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_after_an_epoch_matches_the_uninterrupted_run(tmp_path, with_val, method):
    full, full_rec = run(tmp_path / "full", with_val, method)
    ckpt = ModelCheckpoint(  # with validation: saved at validation end, before the epoch closes
        dirpath=tmp_path / "ckpt",
        filename="{epoch}",
        save_top_k=-1,
        every_n_epochs=1,
        save_on_train_epoch_end=not with_val,
    )
    run(tmp_path / "part", with_val, method, callbacks=[StopAfter(2), ckpt])
    resumed, resumed_rec = run(tmp_path / "resumed", with_val, method, ckpt_path=tmp_path / "ckpt" / "epoch=2.ckpt")
    assert sorted(resumed_rec.kept) == [3, 4, 5]
    for e in (3, 4, 5):
        assert torch.equal(resumed_rec.kept[e], full_rec.kept[e]), f"kept set of epoch {e} differs"
    for name, value in full.method.state_dict()["states"].items():
        assert torch.equal(resumed.method.state_dict()["states"][name], value), name
    assert resumed.forwarded_samples == full.forwarded_samples
    assert torch.equal(resumed.kept_indices, full.kept_indices)


def _worker(out, *args):
    return subprocess.run(
        [sys.executable, str(WORKER), str(out), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def _seen(out, tag, rank, epoch):
    """{global step: indices forwarded} of ``epoch`` in a worker's log."""
    steps = {}
    for line in (out / f"seen-{tag}-rank{rank}.txt").read_text().splitlines():
        e, step, *idx = line.split()
        if int(e) == epoch:
            steps[int(step)] = list(map(int, idx))
    return steps


@pytest.mark.slow
@pytest.mark.parametrize(("devices", "method"), [(1, "adapruner"), (1, "infobatch"), (2, "adapruner")])
def test_a_sigkill_mid_epoch_resumes_to_the_same_samples_and_the_same_bits(tmp_path, devices, method):
    # N=2000, batch 50, p=0.3 over prune_epochs=4: epochs of 40, 37, 34, ... batches; step 90 is inside
    # epoch 2 (steps 77..110) while the kept set is still shrinking; the last checkpoint before it is step 85
    batches_per_epoch = [40, 37, 34, 31, 28, 28] if devices == 1 else [20, 19, 17, 16, 14, 14]
    start_of_2 = sum(batches_per_epoch[:2])
    kill, ckpt_step = start_of_2 + 13, start_of_2 + 10 - (start_of_2 + 10) % 5
    full = _worker(tmp_path / "full", "--devices", devices, "--method", method)
    assert full.returncode == 0, full.stderr[-3000:]
    killed = _worker(tmp_path / "run", "--devices", devices, "--method", method, "--kill-step", kill, "--tag", "killed")
    assert killed.returncode != 0 and not (tmp_path / "run" / "rank0.pt").exists()  # it really died mid-fit
    ckpt = tmp_path / "run" / "ckpt" / f"step={ckpt_step}.ckpt"
    assert ckpt.is_file()
    resumed = _worker(tmp_path / "run", "--devices", devices, "--method", method, "--ckpt", ckpt, "--tag", "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank in range(devices):
        ref = torch.load(tmp_path / "full" / f"rank{rank}.pt", weights_only=False)
        got = torch.load(tmp_path / "run" / f"rank{rank}.pt", weights_only=False)
        for name, value in ref["state"]["states"].items():
            assert torch.equal(got["state"]["states"][name], value), name
        assert torch.equal(got["final"], ref["final"]) and got["forwarded"] == ref["forwarded"]
        for epoch in (3, 4, 5):
            assert torch.equal(got["kept"][epoch], ref["kept"][epoch])
        # the interrupted epoch: what the killed run forwarded up to the checkpoint, then what the resumed run
        # forwarded, is exactly the uninterrupted epoch: none twice, none skipped
        reference = Counter(i for idx in _seen(tmp_path / "full", "run", rank, 2).values() for i in idx)
        before = [
            i for step, idx in _seen(tmp_path / "run", "killed", rank, 2).items() if step <= ckpt_step for i in idx
        ]
        after = [i for idx in _seen(tmp_path / "run", "resumed", rank, 2).values() for i in idx]
        assert Counter(before) + Counter(after) == reference
        assert sum(reference.values()) == len(before) + len(after)


def _checkpoints(tmp_path, every_n_train_steps=None, cb=None, epochs=3, batch=16, seed=None):
    L.seed_everything(0 if seed is None else seed)
    ckpt = ModelCheckpoint(
        dirpath=tmp_path, filename="{epoch}-{step}", save_top_k=-1, every_n_train_steps=every_n_train_steps
    )
    cb = cb or DataPruning(AdaPruner(anneal=0.0), 0.4, warmup_epochs=1, prune_epochs=1, export_dir=False)
    t = trainer(max_epochs=epochs, callbacks=[cb, ckpt], enable_checkpointing=True, default_root_dir=tmp_path)
    t.fit(TinyModel(), loader(random_dataset(300), batch))
    return cb


def _epoch_end_checkpoint(folder, epoch):
    """The checkpoint ModelCheckpoint saved at the end of ``epoch`` (the step count follows the plan's batches)."""
    (path,) = folder.glob(f"epoch={epoch}-step=*.ckpt")
    return path


def _resume(ckpt, cb, epochs=4, batch=16):
    t = trainer(max_epochs=epochs, callbacks=[cb], enable_checkpointing=False)
    t.fit(TinyModel(), loader(random_dataset(300), batch), ckpt_path=ckpt)
    return t


def test_a_resume_with_other_settings_is_refused_not_silently_restarted(tmp_path):
    _checkpoints(tmp_path)
    ckpt = _epoch_end_checkpoint(tmp_path, 1)
    with pytest.raises(ValueError, match="prune_ratio=0.4, this fit has prune_ratio=0.3"):
        _resume(ckpt, DataPruning(AdaPruner(anneal=0.0), 0.3, warmup_epochs=1, prune_epochs=1, export_dir=False))
    with pytest.raises(ValueError, match="pruning method 'adapruner', not 'rs2'"):
        _resume(ckpt, DataPruning(RS2Pruning(), 0.4, warmup_epochs=1, prune_epochs=1, export_dir=False))
    # the same method and ratio through the AdaPruner preset: the state is found under the one state key
    from lightning_adapruner import AdaptiveDatasetPruning

    preset = AdaptiveDatasetPruning(0.4, warmup_epochs=1, prune_epochs=1, export_dir=False)
    _resume(ckpt, preset)
    assert preset.session.restored


def test_a_checkpoint_without_pruning_state_warns(tmp_path):
    t = trainer(max_epochs=1, enable_checkpointing=False)
    t.fit(TinyModel(), loader(random_dataset(300), 16))
    t.save_checkpoint(tmp_path / "plain.ckpt")
    with pytest.warns(UserWarning, match="holds no pruning state"):
        _resume(tmp_path / "plain.ckpt", DataPruning(AdaPruner(anneal=0.0), 0.4, export_dir=False), epochs=2)


def test_a_mid_epoch_resume_with_another_batch_size_is_refused(tmp_path):
    _checkpoints(tmp_path, every_n_train_steps=5)
    ckpt = tmp_path / "epoch=1-step=25.ckpt"  # 19 batches in epoch 0: step 25 is inside epoch 1
    with pytest.raises(ValueError, match="other settings.*batch_size 16 -> 32"):
        pruning = DataPruning(AdaPruner(anneal=0.0), 0.4, warmup_epochs=1, prune_epochs=1, export_dir=False)
        _resume(ckpt, pruning, batch=32)


def test_an_end_of_epoch_resume_with_another_batch_size_is_refused(tmp_path):
    """The LR schedule in the checkpoint was sized for 16-sample batches: OneCycle would raise mid-fit at 32, or
    silently end early with fewer steps; the pruning state refuses it at the start, as it does mid-epoch."""
    _checkpoints(tmp_path)
    pruning = DataPruning(AdaPruner(anneal=0.0), 0.4, warmup_epochs=1, prune_epochs=1, export_dir=False)
    with pytest.raises(ValueError, match="batch_size 16 -> 32.*Resume with the number of processes, batch size"):
        _resume(_epoch_end_checkpoint(tmp_path, 1), pruning, batch=32)
    extended = DataPruning(AdaPruner(anneal=0.0), 0.4, warmup_epochs=1, prune_epochs=1, export_dir=False)
    _resume(_epoch_end_checkpoint(tmp_path, 1), extended, epochs=5)  # more epochs: allowed (the plan grows)
    assert extended.session.restored and extended.kept_indices.numel() == 180


@pytest.mark.slow
def test_an_end_of_epoch_resume_with_more_processes_is_refused(tmp_path):
    _checkpoints(tmp_path)
    pruning = DataPruning(AdaPruner(anneal=0.0), 0.4, warmup_epochs=1, prune_epochs=1, export_dir=False)
    t = trainer(max_epochs=4, callbacks=[pruning], devices=2, strategy="ddp_fork")
    with pytest.raises(Exception, match="world_size 1 -> 2"):
        t.fit(TinyModel(), loader(random_dataset(300), 16), ckpt_path=_epoch_end_checkpoint(tmp_path, 1))


def test_the_checkpoint_seed_wins_over_a_new_global_seed(tmp_path):
    _checkpoints(tmp_path, seed=0)
    cb = DataPruning(RS2Pruning(), 0.4, warmup_epochs=1, prune_epochs=1, export_dir=False)
    _checkpoints(tmp_path / "rs2", cb=cb, seed=0)
    L.seed_everything(1)
    resumed = DataPruning(RS2Pruning(), 0.4, warmup_epochs=1, prune_epochs=1, export_dir=False)
    _resume(_epoch_end_checkpoint(tmp_path / "rs2", 1), resumed)
    assert resumed.session.seed == 0 and resumed.method.fit.seed == 0


class LateRestore(L.pytorch.strategies.SingleDeviceStrategy):
    """Restores callbacks after ``strategy.setup``, as FSDP and DeepSpeed do: after ``configure_optimizers`` has
    sized its scheduler with ``pruning_stepping_batches``, which already made the epoch's loader."""

    @property
    def restore_checkpoint_after_setup(self) -> bool:
        return True


class FailAtStep(L.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("interrupted")


def test_a_mid_epoch_resume_under_a_strategy_that_restores_late_is_exact(tmp_path):
    def fit(root, callbacks=(), ckpt_path=None):
        L.seed_everything(0)
        cb = DataPruning(AdaPruner(anneal=0.0), 0.4, warmup_epochs=1, prune_epochs=2, export_dir=False, seed=3)
        model = TinyModel(scheduler="pruned")  # configure_optimizers calls pruning_stepping_batches
        t = trainer(
            max_epochs=3,
            strategy=LateRestore(device=torch.device("cpu")),
            callbacks=[cb, *callbacks],
            enable_checkpointing=bool(callbacks),
            default_root_dir=root,
        )
        try:
            t.fit(model, loader(random_dataset(100), 10), ckpt_path=ckpt_path)
        except RuntimeError as err:
            assert "interrupted" in str(err)
        return cb, model

    full, full_model = fit(tmp_path / "full")
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=3, save_top_k=-1, filename="{step}")
    fit(tmp_path / "run", callbacks=[ckpt, FailAtStep(8)])
    resumed, model = fit(tmp_path / "resumed", ckpt_path=tmp_path / "ckpt" / "step=6.ckpt")  # inside epoch 0
    assert len(model.seen[0]) == 4 and model.mismatches == 0  # batches 6..9 of the warm-up, the right samples
    assert torch.equal(torch.cat(model.seen[0]), torch.cat(full_model.seen[0][6:]))
    assert torch.equal(resumed.method.logits, full.method.logits)
    assert torch.equal(resumed.kept_indices, full.kept_indices)


class StepDecay(TinyModel):
    """Momentum and a step-interval LR decay: a resume one batch or one step off changes the weights."""

    def __init__(self):
        super().__init__()
        self.validations = []

    def on_validation_epoch_end(self):
        self.validations.append((self.current_epoch, self.global_step))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        return [opt], [{"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.97), "interval": "step"}]


@pytest.mark.parametrize(
    ("limit", "accumulate", "at_last_batch"),
    [(1.0, 1, False), (0.5, 1, False), (1.0, 2, False), (1.0, 1, True)],
    ids=["plain", "limit", "accumulate", "last-batch"],
)
def test_a_resume_from_inside_a_batch_is_exact(tmp_path, limit, accumulate, at_last_batch):
    """A checkpoint saved in on_train_batch_end (every_n_train_steps), inside the first pruned epoch or after its
    last batch: weights, LR, validation, samples and pruning state equal the uninterrupted run's."""

    def fit(root, callbacks=(), ckpt_path=None):
        L.seed_everything(0)
        cb = DataPruning(AdaPruner(anneal=0.0), 0.4, warmup_epochs=1, prune_epochs=2, export_dir=False, seed=3)
        model = StepDecay()
        t = trainer(
            max_epochs=3,
            callbacks=[cb, *callbacks],
            enable_checkpointing=bool(callbacks),
            default_root_dir=root,
            limit_train_batches=limit,
            accumulate_grad_batches=accumulate,
            val_check_interval=0.5,
        )
        val = loader(random_dataset(40, seed=1), 20, shuffle=False)
        try:
            t.fit(model, loader(random_dataset(200), 10), val_dataloaders=val, ckpt_path=ckpt_path)
        except RuntimeError as err:
            assert "interrupted" in str(err)
        return cb, model, t

    full, full_model, full_t = fit(tmp_path / "full")
    steps = [-(-len(full_model.seen[e]) // accumulate) for e in range(3)]
    step = steps[0] + (steps[1] if at_last_batch else 2)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1, filename="{step}")
    fit(tmp_path / "run", callbacks=[ckpt, FailAtStep(step + 1)])
    path = tmp_path / "ckpt" / f"step={step}.ckpt"
    resumed, model, t = fit(tmp_path / "resumed", ckpt_path=path)
    done = (step - steps[0]) * accumulate  # batches of epoch 1 before the checkpoint
    if done < len(full_model.seen[1]):
        assert torch.equal(torch.cat(model.seen[1]), torch.cat(full_model.seen[1][done:])) and model.mismatches == 0
    assert torch.equal(torch.cat(model.seen[2]), torch.cat(full_model.seen[2]))
    for a, b in zip(model.parameters(), full_model.parameters()):
        assert torch.equal(a, b)  # every optimiser step, in order, at the same learning rates
    assert t.optimizers[0].param_groups[0]["lr"] == full_t.optimizers[0].param_groups[0]["lr"]
    assert t.global_step == full_t.global_step
    assert model.validations == [v for v in full_model.validations if v[1] > step]  # mid- and end-of-epoch
    assert float(t.callback_metrics["val/loss"]) == float(full_t.callback_metrics["val/loss"])
    assert torch.equal(resumed.method.logits, full.method.logits)
    assert torch.equal(resumed.kept_indices, full.kept_indices)


def test_a_mid_epoch_record_whose_order_is_drawn_otherwise_is_refused_naming_the_release():
    """An epoch's order is rebuilt on resume from the seed: drawn otherwise (another shuffle, another release), the
    rest of the epoch would repeat and skip samples, so the order's checksum refuses it."""
    from lightning_adapruner.core._epoch import EpochRecord

    def record(order):
        return EpochRecord(0, torch.tensor(order), 4, 1, 0, 2, 2, (), torch.device("cpu"))

    saved = record([3, 1, 0, 2])
    saved.record(0, 2, torch.tensor([0.5, 1.5]))
    saved.advance(True)
    record([3, 1, 0, 2]).load_state_dict(saved.state_dict())  # the same order resumes
    with pytest.raises(ValueError, match=r"order_checksum .* -> .*resume with the release, processes"):
        record([1, 3, 0, 2]).load_state_dict(saved.state_dict())
