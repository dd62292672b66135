"""Loading what a run's ``metrics.json`` points to (the ``metrics.csv`` of its fit, its exported pruned subset),
and the plot inputs made of them.

A file that is missing or unreadable becomes a note in the report, never an error: the table does not need it.
The subset's tensors file may hold ``last_epoch`` (``[N]``, the last epoch each sample was in the kept set; -1:
never): with it the score histogram tells the samples cut at the final cut from those cut earlier, whose scores
froze when they were cut (AdaPruner updates only the forwarded samples' logits).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from lightning_adapruner import METRIC_NAMES, PrunedSubset, read_pruned_subset
from lightning_adapruner.app.report.aggregation import GroupKey, mean_per_epoch, per_class_share
from lightning_adapruner.app.report.runs import Run

KEEP_SHARE_COLUMNS = (METRIC_NAMES.keep_share, METRIC_NAMES.keep_share_target)
Groups = Mapping[GroupKey, list[Run]]  # runs by cell, as group_runs returns them
LAST_EPOCH = "last_epoch"  # the optional tensor of the subset's .pt: the last epoch each sample was kept (-1: never)
KEPT, FINAL_CUT, EARLIER = "kept", "pruned at the final cut", "pruned earlier (score frozen when cut)"
PRUNED = "pruned"


def _cell(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    number = float(value)
    return None if math.isnan(number) else number


def parse_metrics_csv(text: str, columns: Sequence[str]) -> dict[str, dict[int, float]]:
    """Per column, ``{epoch: value}`` from the text of a Lightning ``CSVLogger`` ``metrics.csv``.

    Each row of that file fills only some columns (the others are empty or ``nan``); rows without an epoch or
    without the column are passed over, and the last value logged in an epoch wins.

    Args:
        text: the file's text.
        columns: the columns to read.

    Raises:
        ValueError: if a cell of ``epoch`` or of ``columns`` is not a number.

    Example::

        >>> parse_metrics_csv("epoch,step,val/acc\\n0,9,0.5\\n0,9,\\n1,19,0.8\\n", ["val/acc"])
        {'val/acc': {0: 0.5, 1: 0.8}}
    """
    series: dict[str, dict[int, float]] = {column: {} for column in columns}
    for row in csv.DictReader(io.StringIO(text)):
        epoch = _cell(row.get("epoch"))
        if epoch is None:
            continue
        for column in columns:
            value = _cell(row.get(column))
            if value is not None:
                series[column][int(epoch)] = value
    return series


@dataclass(frozen=True)
class RunFiles:
    """What could be read of one run's files.

    Attributes:
        keep_share: ``{column: {epoch: value}}`` of :data:`KEEP_SHARE_COLUMNS` from ``metrics.csv``, or ``None``
            (no file, unreadable, or no keep-share column: a full-data run).
        subset: the exported pruned subset, or ``None``.
        last_epoch: the subset's ``last_epoch`` tensor, or ``None`` (an older export, or no subset).
    """

    keep_share: dict[str, dict[int, float]] | None = None
    subset: PrunedSubset | None = None
    last_epoch: Tensor | None = None


def _keep_share(run: Run, notes: list[str]) -> dict[str, dict[int, float]] | None:
    if run.metrics_csv is None:
        return None
    if not run.metrics_csv.is_file():
        notes.append(f"`{run.name}`: metrics_csv {run.metrics_csv} not found")
        return None
    try:
        series = parse_metrics_csv(run.metrics_csv.read_text(), KEEP_SHARE_COLUMNS)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
        notes.append(f"`{run.name}`: cannot read metrics_csv {run.metrics_csv} ({type(err).__name__}: {err})")
        return None
    return series if series[METRIC_NAMES.keep_share] else None


def _subset(run: Run, notes: list[str]) -> PrunedSubset | None:
    if run.subset_path is None:
        return None
    try:
        return read_pruned_subset(run.subset_path)
    except FileNotFoundError as err:
        notes.append(f"`{run.name}`: subset_path not found ({err})")
    except (OSError, ValueError, RuntimeError) as err:  # PrunedSubsetError is a ValueError
        notes.append(f"`{run.name}`: cannot read subset_path {run.subset_path} ({type(err).__name__}: {err})")
    return None


def _last_epoch(subset: PrunedSubset | None) -> Tensor | None:
    """The subset's ``last_epoch`` (validated by :func:`~lightning_adapruner.read_pruned_subset`), ``None`` for an
    export written before it was recorded."""
    return None if subset is None else subset.last_epoch


def load_run_files(runs: Sequence[Run], notes: list[str]) -> dict[str, RunFiles]:
    """:class:`RunFiles` of every run, by run name; a note in ``notes`` for every file that could not be read.

    Args:
        runs: the runs of the sweep.
        notes: the report's notes, appended to.
    """
    files = {}
    for run in runs:
        subset = _subset(run, notes)
        files[run.name] = RunFiles(_keep_share(run, notes), subset, _last_epoch(subset))
    return files


def score_groups(subset: PrunedSubset, last_epoch: Tensor | None = None) -> dict[str, list[float]]:
    """The per-sample scores of ``subset`` by group: kept; with ``last_epoch``, pruned at the final cut (in the
    kept set of the last epoch trained, ``last_epoch == last_epoch.max()``, but not kept at the end) and pruned
    earlier (score frozen when cut); without it, every pruned sample together.

    Args:
        subset: the exported subset.
        last_epoch: the last epoch each sample was in the kept set (-1: never), or ``None``.

    Example::

        >>> subset = PrunedSubset(torch.tensor([0, 2]), torch.tensor([3.0, -1.0, 2.0, 5.0]), {"num_samples": 4})
        >>> score_groups(subset)
        {'kept': [3.0, 2.0], 'pruned': [-1.0, 5.0]}
        >>> score_groups(subset, torch.tensor([9, 9, 9, 4]))
        {'kept': [3.0, 2.0], 'pruned at the final cut': [-1.0], 'pruned earlier (score frozen when cut)': [5.0]}
    """
    kept = torch.zeros(subset.scores.numel(), dtype=torch.bool)
    kept[subset.kept_indices] = True
    if last_epoch is None:
        return {KEPT: subset.scores[kept].tolist(), PRUNED: subset.scores[~kept].tolist()}
    final = last_epoch == last_epoch.max()
    return {
        KEPT: subset.scores[kept].tolist(),
        FINAL_CUT: subset.scores[~kept & final].tolist(),
        EARLIER: subset.scores[~kept & ~final].tolist(),
    }


def keep_share_curves(groups: Groups, files: Mapping[str, RunFiles]) -> dict[GroupKey, dict[str, list]]:
    """Per cell, the keep share (and its target) per epoch, mean over the seeds whose ``metrics.csv`` has it.

    Args:
        groups: the runs by cell (:func:`~lightning_adapruner.app.report.aggregation.group_runs`).
        files: the :class:`RunFiles` of every run, by run name.
    """
    curves = {}
    for key, group in groups.items():
        loaded = [files[run.name].keep_share for run in group if files[run.name].keep_share is not None]
        if loaded:
            curves[key] = {column: mean_per_epoch([s[column] for s in loaded]) for column in KEEP_SHARE_COLUMNS}  # type: ignore[index]
    return curves


class ScorePanel(NamedTuple):
    """One histogram of the score plot: its title and the scores of each group (:func:`score_groups`)."""

    title: str
    groups: dict[str, list[float]]

    @property
    def frozen_known(self) -> bool:
        """Whether the subset told the samples cut early (scores frozen) from those cut at the end."""
        return EARLIER in self.groups


def score_panels(groups: Groups, files: Mapping[str, RunFiles]) -> list[ScorePanel]:
    """Per cell, the :class:`ScorePanel` of the lowest seed with a readable subset.

    Args:
        groups: the runs by cell (:func:`~lightning_adapruner.app.report.aggregation.group_runs`).
        files: the :class:`RunFiles` of every run, by run name.
    """
    several = len({key.setting for key in groups}) > 1
    panels = []
    for key, group in groups.items():
        loaded = [run for run in group if files[run.name].subset is not None]
        if loaded:  # the lowest seed with a readable subset represents the cell
            run = loaded[0]
            title = (f"{key.setting}\n" if several else "") + f"{key.method}, {key.label} (seed {run.seed})"
            panels.append(ScorePanel(title, score_groups(files[run.name].subset, files[run.name].last_epoch)))  # type: ignore[arg-type]
    return panels


class PerClass(NamedTuple):
    """The kept share of every class in a cell (mean over its seeds), and the cell's target prune ratio."""

    shares: list[float]
    prune_ratio_target: float


def per_class_series(groups: Groups, files: Mapping[str, RunFiles], notes: list[str]) -> dict[GroupKey, PerClass]:
    """Per cell, the kept share of every class, mean over the seeds whose subset records the class counts.

    Args:
        groups: the runs by cell (:func:`~lightning_adapruner.app.report.aggregation.group_runs`).
        files: the :class:`RunFiles` of every run, by run name.
        notes: the report's notes; a subset with inconsistent class counts adds one.
    """
    series = {}
    for key, group in groups.items():
        shares = []
        for run in group:
            subset = files[run.name].subset
            meta = {} if subset is None else subset.metadata
            if meta.get("per_class_kept") is None or meta.get("per_class_total") is None:
                continue
            try:
                shares.append(per_class_share(meta["per_class_kept"], meta["per_class_total"]))
            except (TypeError, ValueError) as err:
                notes.append(f"`{run.name}`: {err}")
        if shares and len({len(s) for s in shares}) == 1:
            ratio = statistics.fmean(run.prune_ratio_target for run in group)
            series[key] = PerClass([statistics.fmean(column) for column in zip(*shares)], ratio)
    return series
