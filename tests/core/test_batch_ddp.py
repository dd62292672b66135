"""``BatchSelection`` under 2-process DDP on every kind of training loader: a map-style ``DataLoader`` (Lightning's
distributed sampler), a plain ``IterableDataset`` sharded by rank, LitData's ``StreamingDataset`` from a real
``litdata.optimize`` run on local files, and a Hugging Face ``IterableDataset`` split by node."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import random_dataset

from lightning_adapruner import functional as F

WORKER = Path(__file__).resolve().parents[1] / "batch_ddp_worker.py"
N, KEEP, WARMUP = 240, 0.25, 2


def _item(i: int) -> dict:
    data = random_dataset(N)
    return {"x": data.x[i], "y": int(data.targets[i])}


def optimized(tmp_path: Path) -> Path:
    """The worker's 240 items written by ``litdata.optimize`` into local chunks."""
    litdata = pytest.importorskip("litdata")
    out = tmp_path / "optimized"
    litdata.optimize(fn=_item, inputs=list(range(N)), output_dir=str(out), chunk_bytes="64KB", num_workers=1)
    return out


@pytest.mark.slow
def test_the_random_rule_draws_per_rank_and_per_batch_under_ddp(tmp_path):
    """The control arm under DDP: each rank trains on a uniform draw of its batch's kept count, reproducibly, and the
    two ranks' draws (keyed by the rank) are not the same positions."""
    done = subprocess.run(
        [sys.executable, str(WORKER), "map", str(tmp_path), "--rule", "random"], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) > 2 * WARMUP
    positions = []
    for steps in ranks:
        for number, step in enumerate(steps):
            scored, trained = step["scored"].tolist(), step["trained"].tolist()
            k = len(scored) if number < WARMUP else F.batch_kept_count(len(scored), KEEP)
            assert len(trained) == k and set(trained) <= set(scored), number
        positions.append([tuple(s["scored"].tolist().index(i) for i in s["trained"].tolist()) for s in steps[WARMUP:]])
    assert positions[0] != positions[1]  # the draw is keyed by the rank as well as the batch


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["map", "iterable", "litdata", "hf"])
def test_every_loader_kind_trains_on_each_batchs_highest_losses_on_both_ranks(tmp_path, kind):
    extra = ["--data", str(optimized(tmp_path))] if kind == "litdata" else []
    if kind == "hf":
        pytest.importorskip("datasets")
    done = subprocess.run(
        [sys.executable, str(WORKER), kind, str(tmp_path), *extra], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) > 2 * WARMUP  # in step: equal batches, nothing skipped
    for steps in ranks:
        for number, step in enumerate(steps):
            scored, losses, trained = step["scored"], step["loss"], step["trained"]
            k = scored.numel() if number < WARMUP else F.batch_kept_count(scored.numel(), KEEP)
            assert torch.equal(trained.sort().values, scored[torch.topk(losses, k).indices].sort().values), number
    for a, b in zip(*ranks):  # equal batches keep equal counts on both ranks
        assert a["scored"].numel() != b["scored"].numel() or a["trained"].numel() == b["trained"].numel()
    for epoch in (0, 1):  # the ranks scored disjoint shards of the data, as the loader split it
        scored = torch.cat([s["scored"] for steps in ranks for s in steps if s["epoch"] == epoch])
        assert scored.unique().numel() == scored.numel() >= N - 2 * 16  # (LitData drops a short last batch per rank)


def test_a_litdata_fit_resumed_mid_epoch_trains_on_what_the_uninterrupted_one_did(tmp_path):
    """LitData's own loader state (checkpointed by Lightning, as for any loader with ``state_dict``) and the
    callback's counters make a mid-epoch resume exact: every later step scores and trains on the same samples."""
    litdata = pytest.importorskip("litdata")  # (in the test extra and the lock: skipped only outside them)
    import lightning as L
    from batch_ddp_worker import BATCH, LitDataEpochEnd, Recording
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_adapruner import BatchSelection

    data = optimized(tmp_path)

    def fit(rule, ckpt=None, every=None):
        L.seed_everything(0)
        model = Recording()
        callbacks = [BatchSelection(keep=0.25, rule=rule, warmup_steps=2), LitDataEpochEnd()]
        if every:
            callbacks.append(ModelCheckpoint(tmp_path / rule, every_n_train_steps=every, save_top_k=-1))
        trainer = L.Trainer(
            accelerator="cpu", max_epochs=2, callbacks=callbacks, logger=False, enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=bool(every),
        )  # fmt: skip
        loader = litdata.StreamingDataLoader(litdata.StreamingDataset(str(data), shuffle=True), batch_size=BATCH)
        trainer.fit(model, loader, ckpt_path=ckpt)
        return model.steps, callbacks[0]

    for rule in ("loss", "random"):
        whole, whole_selection = fit(rule, every=5)
        resumed, selection = fit(rule, ckpt=str(tmp_path / rule / "epoch=0-step=5.ckpt"))
        assert len(whole) == 2 * (N // BATCH) and len(resumed) == len(whole) - 5, rule
        for a, b in zip(whole[5:], resumed):
            assert torch.equal(a["scored"], b["scored"]) and torch.equal(a["trained"], b["trained"]), rule
        assert (selection.scored, selection.trained) == (whole_selection.scored, whole_selection.trained)


@pytest.mark.slow
def test_a_two_process_litdata_fit_resumed_mid_epoch_trains_on_what_the_uninterrupted_one_did(tmp_path):
    """The same under 2-process DDP: Lightning saves rank 0's LitData state (rank-agnostic: samples yielded, world
    size, seed) and every rank restores it; each rank's later steps match the uninterrupted fit's."""
    data = optimized(tmp_path)
    runs = {
        "whole": ["--checkpoint-every", "3"],
        "resumed": ["--resume", str(tmp_path / "whole/ckpt/epoch=0-step=3.ckpt")],
    }
    for name, extra in runs.items():
        (tmp_path / name).mkdir()
        command = [sys.executable, str(WORKER), "litdata", str(tmp_path / name), "--data", str(data), *extra]
        done = subprocess.run([*command, "--rule", "random"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    for rank in range(2):
        whole, resumed = (torch.load(tmp_path / n / f"rank{rank}.pt", weights_only=False) for n in runs)
        assert len(whole) == 14 and len(resumed) == len(whole) - 3, rank  # 224 of 240 samples, 7 batches a rank
        for a, b in zip(whole[3:], resumed):
            assert torch.equal(a["scored"], b["scored"]) and torch.equal(a["trained"], b["trained"]), rank
