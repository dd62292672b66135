"""The exported kept subset: ``<name>.json`` (metadata) beside ``<name>.pt`` (indices and logits)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_NAME = "pruned_subset"


def _json_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / f"{DEFAULT_NAME}.json"
    return path if path.suffix == ".json" else path.with_suffix(".json")


def write_pruned_subset(path: str | Path, kept_indices: Tensor, logits: Tensor, metadata: dict[str, Any]) -> Path:
    """Write the subset and return the JSON path. ``path`` is a directory or a file prefix."""
    json_path = _json_path(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tensor_path = json_path.with_suffix(".pt")
    torch.save(
        {"kept_indices": kept_indices.detach().cpu().long(), "logits": logits.detach().cpu().float()}, tensor_path
    )
    meta = {"format_version": FORMAT_VERSION, "tensors": tensor_path.name, **metadata}
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return json_path


def read_pruned_subset(path: str | Path) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Read ``(kept_indices, logits, metadata)`` from a subset written by ``AdaptiveDatasetPruning``."""
    json_path = _json_path(path)
    if not json_path.is_file():
        raise FileNotFoundError(
            f"no pruned subset at {json_path}: pass the JSON file (or its directory) that "
            "AdaptiveDatasetPruning wrote at the end of fit (see its `export_dir` argument)"
        )
    meta = json.loads(json_path.read_text())
    tensors = torch.load(json_path.parent / meta["tensors"], map_location="cpu", weights_only=True)
    return tensors["kept_indices"], tensors["logits"], meta


def load_pruned_subset(path: str | Path, dataset: Dataset) -> Subset:
    """The kept samples of ``dataset`` as a ``torch.utils.data.Subset``, ready to train any network on.

    Args:
        path: the ``pruned_subset.json`` written at the end of a pruning run, or its directory.
        dataset: the *same* training dataset (same order, same size) the subset was learned on.

    Raises:
        ValueError: if ``dataset`` has another size than the one the subset was made for.

    Example::

        train_set = load_pruned_subset("runs/adapruner/pruned_subset.json", full_train_set)
        trainer.fit(model, DataLoader(train_set, batch_size=128, shuffle=True))
    """
    kept, _, meta = read_pruned_subset(path)
    n = len(dataset)  # type: ignore[arg-type]
    if n != meta["num_samples"]:
        raise ValueError(
            f"the subset at {path} was made for a dataset of {meta['num_samples']} samples, but the dataset given has "
            f"{n}; pass the same training split (same order) the subset was learned on"
        )
    log.info("loaded pruned subset: %d of %d samples (realised prune ratio %.4f)", len(kept), n, 1 - len(kept) / n)
    return Subset(dataset, kept.tolist())
