"""The exported kept subset: ``pruned_subset.json`` (metadata) beside ``pruned_subset.pt`` (indices, scores).

:func:`write_pruned_subset` writes both; :func:`read_pruned_subset` validates everything it reads (format,
keys, sizes, index range, duplicates, the JSON/tensor agreement) and raises :class:`PrunedSubsetError`, one
clear message naming the file and the fix, instead of a raw ``JSONDecodeError``/``KeyError``/``UnpicklingError``
(a missing file is a ``FileNotFoundError`` with the same kind of message).
"""

from __future__ import annotations

import json
import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from lightning_adapruner.core.functional.sharded import shard_span

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
SUBSET_NAME = "pruned_subset"
SUBSET_FILE = f"{SUBSET_NAME}.json"  # the metadata; the tensors lie beside it in SUBSET_NAME + ".pt"
_REQUIRED_KEYS = ("format_version", "tensors", "num_samples", "num_kept")


class PrunedSubsetError(ValueError):
    """A pruned-subset file is missing, unreadable or inconsistent; the message names the file and the fix."""


@dataclass(frozen=True)
class PrunedSubset:
    """What :func:`read_pruned_subset` returns.

    Attributes:
        kept_indices: sorted, distinct dataset indices of the kept samples (LongTensor ``[num_kept]``).
        scores: the method's per-sample score of every sample (FloatTensor ``[num_samples]``; AdaPruner's logits).
        metadata: the JSON metadata (method, ratios as exact counts, seed, samples forwarded, ...).
        last_epoch: the last epoch each sample was in the kept set (int16 ``[num_samples]``, -1: never), or
            ``None`` for subsets written before it was recorded. A score frozen when its sample was cut early (only
            forwarded samples learn) is read against it.
    """

    kept_indices: Tensor
    scores: Tensor
    metadata: dict[str, Any]
    last_epoch: Tensor | None = None

    @property
    def num_samples(self) -> int:
        return int(self.metadata["num_samples"])


def subset_json_path(path: str | Path) -> Path:
    """``path`` itself when it names the JSON file; ``<path>/pruned_subset.json`` for a directory."""
    path = Path(path)
    if path.is_dir():
        return path / SUBSET_FILE
    return path if path.suffix == ".json" else path.with_suffix(".json")


def write_pruned_subset(
    path: str | Path,
    kept_indices: Tensor,
    scores: Tensor,
    metadata: dict[str, Any],
    last_epoch: Tensor | None = None,
) -> Path:
    """Write the subset (``path``: a directory or a file prefix) and return the JSON path."""
    json_path = subset_json_path(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tensor_path = json_path.with_suffix(".pt")
    tensors = _subset_tensors(kept_indices, scores, last_epoch)
    kept = tensors["kept_indices"]
    torch.save(tensors, tensor_path)
    meta = {"format_version": FORMAT_VERSION, "tensors": tensor_path.name, **metadata, "num_kept": int(kept.numel())}
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return json_path


def _subset_tensors(kept: Tensor, scores: Tensor, last_epoch: Tensor | None) -> dict[str, Tensor]:
    """The tensors a subset file holds, on the CPU in their stored dtypes."""
    tensors = {"kept_indices": kept.detach().cpu().long(), "scores": scores.detach().cpu().float()}
    if last_epoch is not None:
        tensors["last_epoch"] = last_epoch.detach().cpu().to(torch.int16)
    return tensors


def subset_shard_path(path: str | Path, rank: int, world_size: int) -> Path:
    """Where rank ``rank`` of a sharded fit writes its part of the subset, beside the manifest ``path`` names."""
    return subset_json_path(path).with_suffix(f".rank{rank}-of-{world_size}.pt")


def write_subset_shard(
    path: str | Path, rank: int, world_size: int, num_samples: int, kept: Tensor, scores: Tensor, last_epoch: Tensor
) -> Path:
    """Write one rank's part of a sharded fit's subset: its kept dataset indices and its own samples' scores and
    last epochs (the span :func:`~lightning_adapruner.core.functional.shard_span` gives it)."""
    shard = subset_shard_path(path, rank, world_size)
    shard.parent.mkdir(parents=True, exist_ok=True)
    span = torch.tensor(shard_span(num_samples, world_size, rank))
    torch.save({**_subset_tensors(kept, scores, last_epoch), "span": span}, shard)
    return shard


def write_subset_manifest(path: str | Path, world_size: int, metadata: dict[str, Any]) -> Path:
    """Write a sharded subset's JSON (the manifest): the metadata, and the per-rank files in place of one tensor
    file (:func:`read_pruned_subset` joins them)."""
    json_path = subset_json_path(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    shards = [subset_shard_path(json_path, r, world_size).name for r in range(world_size)]
    meta = {"format_version": FORMAT_VERSION, "tensors": None, "shards": shards, **metadata}
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return json_path


def subset_metadata(
    method: Any,
    kept: Tensor | int,
    num_samples: int,
    prune_ratio: float,
    seed: int,
    ledger: Any,
    labels: Tensor | None,
    **facts: Any,
) -> dict[str, Any]:
    """The JSON metadata of an exported subset: ratios as exact counts plus a rounded share, the compute
    forwarded against full data's, per-class counts when labels are known, the method's scalar state, ``facts``.

    Example::

        >>> from lightning_adapruner.core.metrics import ComputeLedger
        >>> from lightning_adapruner import RandomPruning
        >>> meta = subset_metadata(RandomPruning(), torch.arange(7), 10, 0.3, 0, ComputeLedger(80, 100), None)
        >>> meta["num_pruned"], meta["prune_ratio_realised"], meta["saved_share"]
        (3, 0.3, 0.2)
    """
    num_kept = kept if isinstance(kept, int) else kept.numel()  # (a sharded fit's rank 0 knows the count only)
    meta: dict[str, Any] = {
        "method": method.name,
        "num_samples": num_samples,
        "num_kept": num_kept,
        "num_pruned": num_samples - num_kept,
        "prune_ratio_target": prune_ratio,
        "prune_ratio_realised": round((num_samples - num_kept) / num_samples, 6),
        "seed": seed,
        "samples_forwarded": ledger.forwarded,
        "samples_full_data": ledger.full,
        "saved_share": round(ledger.saved_share, 6),
        "per_class_kept": None,
        "per_class_total": None,
        **facts,
        **({f"method_{k}": v for k, v in method.scalars().items()} if method.info is not None else {}),
    }
    if labels is not None and isinstance(kept, Tensor):
        total = torch.bincount(labels.long())
        meta["per_class_total"] = total.tolist()
        meta["per_class_kept"] = torch.bincount(labels.long()[kept.long()], minlength=total.numel()).tolist()
    return meta


_FIX = (
    ". The files were altered or are not a pruned subset: export it again (DataPruning writes it at the end of fit) "
    "or restore the original pair of files"
)


def read_pruned_subset(path: str | Path) -> PrunedSubset:
    """Read and validate a subset written at the end of a pruning fit.

    Raises:
        FileNotFoundError: the JSON file, or the tensor file it names, does not exist.
        PrunedSubsetError: the files are unreadable, of an unknown format, or disagree with each other
            (counts, sizes, indices out of range, negative or repeated).
    """
    json_path = subset_json_path(path)
    if not json_path.is_file():
        raise FileNotFoundError(
            f"no pruned subset at {json_path}: pass the {SUBSET_FILE} (or its directory) that the pruning callback "
            "wrote at the end of fit (see its `export_dir` argument)"
        )
    try:
        meta = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PrunedSubsetError(
            f"{json_path} is not valid JSON ({err}); re-export it or restore the original"
        ) from None
    if not isinstance(meta, dict):
        raise PrunedSubsetError(
            f"{json_path} holds a JSON {type(meta).__name__}, not the subset's metadata object" + _FIX
        )
    missing = [k for k in _REQUIRED_KEYS if k not in meta]
    if missing:
        raise PrunedSubsetError(
            f"{json_path} lacks the key(s) {missing}: it was not written by write_pruned_subset" + _FIX
        )
    if meta["format_version"] != FORMAT_VERSION:
        raise PrunedSubsetError(
            f"{json_path} has format_version {meta['format_version']!r}; this lightning_adapruner reads version "
            f"{FORMAT_VERSION}: read it with the release that wrote it, or export the subset again"
        )
    if meta.get("shards"):
        tensor_path, tensors = json_path, _join_shards(json_path, meta)
    else:
        tensor_path = json_path.parent / str(meta["tensors"])
        tensors = _load_tensors(tensor_path)
    kept, scores = tensors.get("kept_indices"), tensors.get("scores")
    if not isinstance(kept, Tensor) or not isinstance(scores, Tensor):
        raise PrunedSubsetError(f"{tensor_path} lacks the tensors 'kept_indices' and 'scores'" + _FIX)
    _check_consistency(json_path, tensor_path, meta, kept, scores)
    last_epoch = tensors.get("last_epoch")
    if last_epoch is not None and (not isinstance(last_epoch, Tensor) or last_epoch.shape != scores.shape):
        raise PrunedSubsetError(f"{tensor_path}: last_epoch is not one epoch per sample" + _FIX)
    return PrunedSubset(kept.long(), scores.float(), meta, None if last_epoch is None else last_epoch.long())


def _join_shards(json_path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The tensors of a sharded subset's per-rank files joined, each checked to cover its span in rank order."""
    names = meta["shards"] if isinstance(meta["shards"], list) else [meta["shards"]]
    parts = [_load_tensors(json_path.parent / str(name)) for name in names]
    keys, stop = ("kept_indices", "scores", "last_epoch", "span"), 0
    for name, part in zip(names, parts):
        if not all(isinstance(part.get(key), Tensor) for key in keys):
            raise PrunedSubsetError(f"{name} lacks one of the tensors {keys}" + _FIX)
        span = part["span"]
        if span.tolist()[0] != stop or part["scores"].numel() != int(span[1] - stop):
            raise PrunedSubsetError(f"{name} does not continue the shards before it at sample {stop}" + _FIX)
        stop = int(span[1])
    return {key: torch.cat([part[key] for part in parts]) for key in ("kept_indices", "scores", "last_epoch")}


def _load_tensors(tensor_path: Path) -> dict[str, Any]:
    if not tensor_path.is_file():
        raise FileNotFoundError(
            f"{tensor_path} (named by the JSON's 'tensors' key) is missing; copy it beside the JSON"
        )
    try:
        tensors = torch.load(tensor_path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise PrunedSubsetError(f"{tensor_path} cannot be read ({type(err).__name__}: {err}); re-export it") from None
    if not isinstance(tensors, dict):
        raise PrunedSubsetError(f"{tensor_path} holds a {type(tensors).__name__}, not the subset's tensors" + _FIX)
    return tensors


def _check_consistency(json_path: Path, tensor_path: Path, meta: dict, kept: Tensor, scores: Tensor) -> None:
    n, num_kept = meta["num_samples"], meta["num_kept"]
    if not isinstance(n, int) or not isinstance(num_kept, int) or n < 1 or not 0 <= num_kept <= n:
        raise PrunedSubsetError(f"{json_path}: num_samples={n!r} and num_kept={num_kept!r} are not valid counts" + _FIX)
    if kept.ndim != 1 or kept.is_floating_point() or kept.dtype == torch.bool:
        raise PrunedSubsetError(
            f"{tensor_path}: kept_indices must be a 1-D integer tensor, got {kept.dtype} {kept.shape}" + _FIX
        )
    if kept.numel() != num_kept:
        raise PrunedSubsetError(
            f"{json_path} says num_kept={num_kept} but {tensor_path} holds {kept.numel()} indices: the two files are "
            "from different runs; export them again together"
        )
    if scores.shape != (n,):
        raise PrunedSubsetError(f"{tensor_path}: scores has shape {tuple(scores.shape)}, expected ({n},)" + _FIX)
    if kept.numel():
        low, high = int(kept.min()), int(kept.max())
        if low < 0 or high >= n:
            raise PrunedSubsetError(f"{tensor_path}: kept_indices span [{low}, {high}], outside [0, {n})" + _FIX)
        if torch.unique(kept).numel() != kept.numel():
            raise PrunedSubsetError(
                f"{tensor_path}: kept_indices repeat some samples; a subset lists each sample once" + _FIX
            )


def load_pruned_subset(path: str | Path, dataset: Dataset) -> Subset:
    """The kept samples of ``dataset`` as a ``torch.utils.data.Subset``, ready to train any network on.

    Args:
        path: the ``pruned_subset.json`` written at the end of a pruning fit, or its directory.
        dataset: the *same* training dataset (same order, same size) the subset was learned on.

    Raises:
        PrunedSubsetError: the subset files are invalid (see :func:`read_pruned_subset`), or ``dataset`` has
            another size than the one the subset was made for.

    Example::

        >>> import tempfile
        >>> from torch.utils.data import TensorDataset
        >>> data = TensorDataset(torch.arange(10.0))
        >>> folder = tempfile.mkdtemp()
        >>> _ = write_pruned_subset(folder, torch.tensor([1, 4, 7]), torch.zeros(10), {"num_samples": 10})
        >>> subset = load_pruned_subset(folder, data)
        >>> len(subset), subset[1][0].item()
        (3, 4.0)
    """
    subset = read_pruned_subset(path)
    n = len(dataset)  # type: ignore[arg-type]  # a map-style dataset (torch's Dataset declares no __len__)
    if n != subset.num_samples:
        raise PrunedSubsetError(
            f"the subset at {path} was made for a dataset of {subset.num_samples} samples, but the dataset given has "
            f"{n}; pass the same training split (same order) the subset was learned on"
        )
    kept = subset.kept_indices
    log.info("loaded pruned subset: %d of %d samples (realised prune ratio %.4f)", len(kept), n, 1 - len(kept) / n)
    return Subset(dataset, kept.tolist())
