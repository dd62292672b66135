"""load_pruned_subset validates everything it reads: one clear error per damaged or mismatched file."""

import json

import lightning as L
import pytest
import torch
from helpers import EpochRecorder, TinyModel, loader, random_dataset, trainer
from torch.utils.data import TensorDataset

from lightning_adapruner import AdaPruner, DataPruning, PrunedSubsetError, load_pruned_subset, read_pruned_subset
from lightning_adapruner.core.export import write_pruned_subset

N = 10


def written(tmp_path, kept=(1, 4, 7), scores=None):
    scores = torch.zeros(N) if scores is None else scores
    return write_pruned_subset(tmp_path, torch.tensor(kept), scores, {"num_samples": N, "method": "test"})


def data(n=N):
    return TensorDataset(torch.arange(float(n)))


def test_a_written_subset_reads_back(tmp_path):
    path = written(tmp_path)
    subset = read_pruned_subset(path)
    assert subset.kept_indices.tolist() == [1, 4, 7] and subset.num_samples == N
    assert subset.metadata["num_kept"] == 3 and subset.metadata["format_version"] == 2
    assert [x.item() for (x,) in load_pruned_subset(path.parent, data())] == [1.0, 4.0, 7.0]


def edit_json(path, **changes):
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def drop_key(path, key):
    meta = json.loads(path.read_text())
    del meta[key]
    path.write_text(json.dumps(meta))


def edit_tensors(path, **changes):
    tensors = torch.load(path.with_suffix(".pt"), weights_only=True)
    tensors.update(changes)
    torch.save(tensors, path.with_suffix(".pt"))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda p: p.write_text("{not json"), "not valid JSON"),
        (lambda p: p.write_text("[1, 2]"), "not the subset's metadata"),
        (lambda p: drop_key(p, "num_kept"), "lacks the key"),
        (lambda p: edit_json(p, format_version=7), "format_version 7"),
        (lambda p: p.with_suffix(".pt").write_bytes(b"garbage"), "cannot be read"),
        (lambda p: edit_tensors(p, kept_indices=torch.tensor([1, 4, 12])), r"outside \[0, 10\)"),
        (lambda p: edit_tensors(p, kept_indices=torch.tensor([1, -4, 7])), r"outside \[0, 10\)"),
        (lambda p: edit_tensors(p, kept_indices=torch.tensor([1, 4, 4])), "repeat"),
        (lambda p: edit_tensors(p, kept_indices=torch.tensor([1, 4])), "num_kept=3 but"),
        (lambda p: edit_tensors(p, kept_indices=torch.tensor([1.0, 4.0, 7.0])), "integer tensor"),
        (lambda p: edit_tensors(p, scores=torch.zeros(N + 1)), "scores has shape"),
        (lambda p: edit_json(p, num_samples=0), "not valid counts"),
    ],
    ids=[
        "bad-json",
        "json-list",
        "missing-key",
        "unknown-format",
        "bad-pt",
        "out-of-range",
        "negative",
        "duplicate",
        "count-mismatch",
        "float-indices",
        "scores-size",
        "bad-count",
    ],
)
def test_damaged_files_get_one_clear_error(tmp_path, damage, match):
    path = written(tmp_path)
    damage(path)
    with pytest.raises(PrunedSubsetError, match=match):
        load_pruned_subset(path, data())


def test_missing_files_and_another_dataset_size(tmp_path):
    with pytest.raises(FileNotFoundError, match="no pruned subset"):
        load_pruned_subset(tmp_path / "missing.json", data())
    path = written(tmp_path)
    with pytest.raises(PrunedSubsetError, match="made for a dataset of 10 samples"):
        load_pruned_subset(path, data(11))
    path.with_suffix(".pt").unlink()
    with pytest.raises(FileNotFoundError, match="is missing"):
        read_pruned_subset(path)


def test_a_version_1_export_is_refused_naming_the_fix(tmp_path):
    """Format 1 (v0.1) named the scores "logits"; like a version-1 checkpoint it is refused, with the fix."""
    torch.save({"kept_indices": torch.tensor([0, 2]), "logits": torch.ones(N)}, tmp_path / "pruned_subset.pt")
    meta = {"format_version": 1, "tensors": "pruned_subset.pt", "num_samples": N, "num_kept": 2}
    (tmp_path / "pruned_subset.json").write_text(json.dumps(meta))
    with pytest.raises(PrunedSubsetError, match="format_version 1.*reads version 2.*export the subset again"):
        read_pruned_subset(tmp_path)


def test_the_export_says_when_each_sample_was_cut(tmp_path):
    """A score freezes when its sample is cut (only forwarded samples learn): the export records the last epoch each
    sample was kept in, so a reader can tell a frozen score from a learned one."""
    L.seed_everything(0)
    cb = DataPruning(AdaPruner(selection="nested"), 0.5, warmup_epochs=1, prune_epochs=2, export_dir=tmp_path)
    rec = EpochRecorder()
    trainer(max_epochs=4, callbacks=[cb, rec]).fit(TinyModel(), loader(random_dataset(256), 16))
    subset = read_pruned_subset(tmp_path)
    last = subset.last_epoch
    assert last.shape == (256,) and int(last.min()) == 0 and int(last.max()) == 3
    for epoch, kept in rec.kept.items():
        assert (last[kept] >= epoch).all()  # kept in that epoch: its last epoch is no earlier
    cut_in_epoch_1 = torch.ones(256, dtype=torch.bool)
    cut_in_epoch_1[rec.kept[1]] = False
    assert (last[cut_in_epoch_1] == 0).all() and cut_in_epoch_1.sum() > 0
    assert (last[subset.kept_indices] == 3).all()
