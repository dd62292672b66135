"""``DataPruning(sharded=True)`` end to end under 1, 2 and 4 gloo processes (``tests/sharded_fit_worker.py``): each
rank holds its own samples' state, and every epoch's kept set, the method's state and the exported subset are the
replicated fit's bit for bit (the worker's losses do not depend on order, so both fits hold the same scores);
checkpoints resume exactly from the per-rank files; progress bars and a synced metric before the callback do not
hang its collectives."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import in_threads

from lightning_adapruner import AdaPruner, DataPruning, EL2NPruning, InfoBatchPruning, RandomPruning, read_pruned_subset
from lightning_adapruner import functional as F
from lightning_adapruner.core._epoch import ShardedRecord
from lightning_adapruner.core._loader import LoaderFacts
from lightning_adapruner.core._session import ShardedSession
from lightning_adapruner.core.export import PrunedSubsetError, write_subset_manifest, write_subset_shard
from lightning_adapruner.core.functional.schedule import PruningTarget

WORKER = Path(__file__).resolve().parents[1] / "sharded_fit_worker.py"
N = 403


def fit(out: Path, world_size: int, method: str, *extra: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, str(WORKER), str(out), "--devices", str(world_size), "--method", method, *extra],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world_size)]


def joined(ranks: list[dict], key: str, epoch: int | None = None) -> torch.Tensor:
    parts = [r[key] if epoch is None else r[key][epoch] for r in ranks]
    return torch.sort(torch.cat(parts)).values


@pytest.mark.slow
@pytest.mark.bits
@pytest.mark.parametrize(
    ("method", "world_size"), [("keep_hardest", 1), ("keep_hardest", 2), ("keep_hardest", 4), ("forgetting", 2),
                               ("el2n", 2)],
)  # fmt: skip
def test_a_sharded_fit_keeps_the_replicated_fits_sets_and_state_bit_for_bit(tmp_path, method, world_size):
    replicated = fit(tmp_path / "replicated", world_size, method)
    sharded = fit(tmp_path / "sharded", world_size, method, "--sharded")
    assert [r["span"] for r in sharded] == [F.shard_span(N, world_size, r) for r in range(world_size)]
    for rank in sharded:  # every per-sample tensor of the harness and the method is the rank's own samples'
        own = rank["span"][1] - rank["span"][0]
        assert rank["record_sizes"]["seen"] == rank["record_sizes"]["last_epoch"] == own
        assert all(state.numel() == own for state in rank["state"].values())
    reference = replicated[0]
    for epoch, kept in reference["kept"].items():
        assert torch.equal(joined(sharded, "kept", epoch), kept), epoch
        forwarded = torch.cat([r["batches"][epoch] for r in sharded])  # what the ranks really loaded
        assert torch.equal(torch.unique(forwarded), kept)
        assert len({r["batches"][epoch].numel() for r in sharded}) == 1  # the ranks stay in step
        assert forwarded.numel() - kept.numel() < world_size  # a top-up repeats fewer samples than ranks
    assert any(reference["kept"][e].numel() < reference["kept"][e - 1].numel() for e in range(1, 5))
    for name, state in reference["state"].items():
        assert torch.equal(torch.cat([r["state"][name] for r in sharded]), state), name
    assert {r["forwarded"] for r in sharded} == {reference["forwarded"]}
    ours, theirs = read_pruned_subset(sharded[0]["export"]), read_pruned_subset(reference["export"])
    assert ours.metadata["shards"] and ours.metadata["num_kept"] == theirs.metadata["num_kept"] == F.num_kept(N, 0.6)
    assert torch.equal(ours.kept_indices, joined(sharded, "final"))
    assert torch.equal(ours.scores, theirs.scores) and torch.equal(ours.last_epoch, theirs.last_epoch)
    last = reference["kept"][4]
    if method == "keep_hardest":  # not nested: the export is a cut of every sample, the replicated one
        assert torch.equal(ours.kept_indices, theirs.kept_indices)
    else:  # nested, the export a batch's rounding larger than the last epoch: that epoch plus a random draw
        assert last.numel() < ours.kept_indices.numel() and bool(torch.isin(last, ours.kept_indices).all())
        assert not torch.equal(ours.kept_indices, theirs.kept_indices)  # (the draw is the sharded fit's own)


@pytest.mark.slow
def test_a_sharded_fit_killed_mid_epoch_resumes_from_its_per_rank_files_exactly(tmp_path):
    whole = fit(tmp_path / "whole", 2, "keep_hardest", "--sharded")
    killed = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path / "cut"), "--devices", "2", "--sharded", "--kill-step", "37"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode != 0 and not (tmp_path / "cut" / "rank0.pt").exists()
    files = sorted((tmp_path / "cut" / "pruning_state").glob("*.rank*-of-2.pt"))
    assert len(files) >= 4 and {f.name.split(".rank")[1] for f in files} == {"0-of-2.pt", "1-of-2.pt"}
    ckpt = tmp_path / "cut" / "ckpt" / "step=36.ckpt"  # inside epoch 3 (pruned): 3 of its 8 steps run
    state = torch.load(ckpt, weights_only=False)["callbacks"]["DataPruning"]
    assert "{rank}" in state["shards"] and "seen" not in state  # the checkpoint names the files, holds no shard
    resumed = fit(tmp_path / "cut", 2, "keep_hardest", "--sharded", "--ckpt", str(ckpt))
    for a, b in zip(whole, resumed):
        assert torch.equal(a["batches"][3][-b["batches"][3].numel() :], b["batches"][3])  # the rest of epoch 3
        assert torch.equal(a["batches"][4], b["batches"][4]) and torch.equal(a["kept"][4], b["kept"][4])
        assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
        assert torch.equal(a["final"], b["final"]) and a["forwarded"] == b["forwarded"]
    with pytest.raises(subprocess.CalledProcessError):  # a replicated fit refuses the sharded checkpoint
        subprocess.run(
            [sys.executable, str(WORKER), str(tmp_path / "other"), "--devices", "2", "--ckpt", str(ckpt)],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("bar", ["tqdm", "rich"])
def test_progress_bars_and_a_synced_metric_before_a_sharded_callback_do_not_hang(tmp_path, bar):
    ranks = fit(tmp_path, 2, "keep_hardest", "--sharded", "--bar", bar)  # (a hang is the gloo timeout's error)
    assert joined(ranks, "final").numel() == F.num_kept(N, 0.6)


def test_sharded_state_refuses_what_needs_every_samples_state_naming_the_fix():
    for method in (AdaPruner(network_weights="normalized"), AdaPruner(mode="soft"), InfoBatchPruning()):
        with pytest.raises(ValueError, match="loss_weights.*sharded=False"):
            DataPruning(method, 0.3, sharded=True)
    assert DataPruning(AdaPruner(), 0.3, sharded=True).session.sharded  # its default weighs nothing
    with pytest.raises(ValueError, match="class_floor.*sharded=False"):
        DataPruning(RandomPruning(), 0.3, class_floor=2, sharded=True)


@pytest.mark.slow
def test_a_plan_that_draws_per_rank_is_refused_with_the_fix(tmp_path):
    done = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path), "--devices", "2", "--method", "random_dynamic", "--sharded"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode != 0 and "must choose through self.select_top" in done.stderr


def test_a_sharded_export_is_read_whole_and_a_missing_or_misplaced_shard_is_refused(tmp_path):
    n, world = 10, 3
    scores = torch.arange(n, dtype=torch.float32)
    kept = torch.tensor([1, 4, 5, 8, 9])
    for r in range(world):
        a, b = F.shard_span(n, world, r)
        mine = kept[(kept >= a) & (kept < b)]
        write_subset_shard(tmp_path, r, world, n, mine, scores[a:b], torch.full((b - a,), 2, dtype=torch.int16))
    path = write_subset_manifest(tmp_path, world, {"num_samples": n, "num_kept": 5, "method": "m"})
    subset = read_pruned_subset(path)
    assert torch.equal(subset.kept_indices, kept) and torch.equal(subset.scores, scores)
    shard = tmp_path / "pruned_subset.rank1-of-3.pt"
    moved = shard.rename(tmp_path / "elsewhere.pt")
    with pytest.raises(FileNotFoundError, match="rank1-of-3"):
        read_pruned_subset(path)
    moved.rename(shard)
    (tmp_path / "pruned_subset.rank2-of-3.pt").write_bytes((tmp_path / "pruned_subset.rank0-of-3.pt").read_bytes())
    with pytest.raises(PrunedSubsetError, match="rank2-of-3.pt does not continue the shards before it at sample 6"):
        read_pruned_subset(path)


@pytest.mark.slow
def test_adapruner_with_sharded_state_runs_one_set_of_controllers_on_every_rank(tmp_path):
    """AdaPruner's controllers come from per-batch numbers summed over the ranks (the exact counts and the sums are
    checked against one process in ``test_a_trajectory_from_every_ranks_positions_...``): every rank ends with the
    same ``k`` and ``lambda``, its own samples' logits learned, and the schedule's kept counts. The logits are not
    the replicated fit's: a sample's update depends on the batch it lands in, and a sharded epoch orders samples
    otherwise."""
    ranks = fit(tmp_path, 2, "adapruner", "--sharded")
    for name in ("k", "lam"):
        assert len({float(r["state"][name]) for r in ranks}) == 1, name
    assert float(ranks[0]["state"]["k"]) > 0.1  # it moved from k_start
    for rank in ranks:
        logits, own = rank["state"]["logits"], rank["span"][1] - rank["span"][0]
        assert logits.numel() == own and logits.std() > 0  # learned, sample by sample
    sizes = [joined(ranks, "kept", e).numel() for e in range(5)]
    assert sizes[0] == N and sizes == sorted(sizes, reverse=True) and sizes[-1] < N
    assert read_pruned_subset(ranks[0]["export"]).kept_indices.numel() == F.num_kept(N, 0.6)


class ThreadCollectives:
    """The session's collectives between thread-ranks (``helpers.in_threads``)."""

    def __init__(self, world_size, rank, gather):
        self.world_size, self.rank, self.gather_rows = world_size, rank, gather

    def same_everywhere(self, value):
        everyone = self.gather_rows(value)
        return bool((everyone == everyone[0]).all())

    def broadcast(self, obj):
        return obj  # (names the fit's checkpoint files only)


def test_a_sharded_cut_with_samples_never_forwarded_ranks_the_rest_as_one_process_would():
    """Rank 0 has evidence on every sample it owns, rank 1 on half: rank 0 still joins the draw among the unseen
    (else the ranks part ways at a gather), the unseen are kept at the cut's own rate, and the seen part is the
    one-process cut of the seen samples, bit for bit (scores with ties)."""
    n, world = 40, 2
    scores = (torch.arange(n) * 7 % 5).float()
    unseen = torch.arange(n) >= 30  # rank 1 owns [20, 40)

    def work(rank, gather):
        session = ShardedSession(EL2NPruning(), PruningTarget(prune_ratio=0.5), 1, 1, "linear", 0, False)
        facts = LoaderFacts(n, 4, drop_last=False, shuffle=True, limit_batches=1.0, max_epochs=3,
                            device=torch.device("cpu"))  # fmt: skip
        session.start(facts, ThreadCollectives(world, rank, gather), seed=0)
        record = session.plan(0)  # the warm-up: what pruning_loss gathers, written straight into the record
        start, stop = record.span
        for buffer in record.buffers.values():
            buffer.copy_(torch.where(unseen[start:stop], float("nan"), scores[start:stop]))  # NaN: never recorded
        record.batch_of.zero_()
        record.steps, record.recorded = record.num_batches, [(True,) * world] * record.num_batches
        session.plan(1)
        return session.kept.long() + start, session.budget(1)

    (kept0, budget), (kept1, _) = in_threads(world, work)
    kept = torch.sort(torch.cat([kept0, kept1])).values
    quota = F.evidence_quota(budget, n, int(unseen.sum()))
    assert 0 < quota < budget < n and kept.numel() == budget
    assert int(unseen[kept].sum()) == quota
    seen = (~unseen).nonzero().flatten()
    gen = F.generator(0, 1, F.selection.STREAM_TIES)
    assert torch.equal(kept[~unseen[kept]], seen[F.select_top(scores[seen], budget - quota, gen)])


def test_a_sharded_record_refills_the_last_epochs_buffers_only_where_they_fit():
    """The next epoch's record takes the closed one's buffers (refilled: nothing recorded yet); buffers of another
    size, statistic or device (a new fit on the same callback) are left alone and fresh ones allocated."""

    def record(spare, span=(10, 30)):
        block = torch.arange(span[0], span[1])
        return ShardedRecord(
            1, block, 20, 1, 0, 4, 5, ("el2n",), torch.device("cpu"), span, lambda s: s, lambda t: t, spare
        )  # fmt: skip

    old = record(None)
    old.record(0, 4, torch.ones(4), {"el2n": torch.ones(4)})
    new = record((old.buffers, old.batch_of))
    assert new.buffers["loss"].data_ptr() == old.buffers["loss"].data_ptr()
    assert all(bool(b.isnan().all()) for b in new.buffers.values()) and bool((new.batch_of == -1).all())
    for spare in [
        ({n: b.to("meta") for n, b in old.buffers.items()}, old.batch_of.to("meta")),  # another device
        ({"loss": old.buffers["loss"]}, old.batch_of),  # other statistics
    ]:
        fresh = record(spare)
        assert fresh.buffers["loss"].device.type == "cpu" and fresh.batch_of.device.type == "cpu"
        assert fresh.buffers["loss"].data_ptr() != old.buffers["loss"].data_ptr()
    assert record((old.buffers, old.batch_of), span=(10, 29)).batch_of.numel() == 19  # another size
