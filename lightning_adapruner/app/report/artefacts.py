"""Loading what a run's ``metrics.json`` points to (the ``metrics.csv`` of its fit, its exported pruned subset),
and the plot inputs made of them.

A file that is missing or unreadable becomes a note in the report, never an error: the table does not need it.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from lightning_adapruner import METRIC_NAMES, PrunedSubset, read_pruned_subset
from lightning_adapruner.app.report.aggregation import GroupKey, format_ratio, mean_per_epoch, per_class_share
from lightning_adapruner.app.report.runs import Run

log = logging.getLogger(__name__)

KEEP_SHARE_COLUMNS = (METRIC_NAMES.keep_share, METRIC_NAMES.keep_share_target)
Groups = Mapping[GroupKey, list[Run]]  # runs by (setting, method, target prune ratio), as group_runs returns them


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
    """

    keep_share: dict[str, dict[int, float]] | None = None
    subset: PrunedSubset | None = None


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


def load_run_files(runs: Sequence[Run], notes: list[str]) -> dict[str, RunFiles]:
    """:class:`RunFiles` of every run, by run name; a note in ``notes`` for every file that could not be read.

    Args:
        runs: the runs of the sweep.
        notes: the report's notes, appended to.
    """
    return {run.name: RunFiles(_keep_share(run, notes), _subset(run, notes)) for run in runs}


def kept_and_pruned_scores(subset: PrunedSubset) -> tuple[list[float], list[float]]:
    """The per-sample scores of the kept and of the pruned samples of ``subset``.

    Example::

        >>> subset = PrunedSubset(torch.tensor([0, 2]), torch.tensor([3.0, -1.0, 2.0]), {"num_samples": 3})
        >>> kept_and_pruned_scores(subset)
        ([3.0, 2.0], [-1.0])
    """
    kept = torch.zeros(subset.scores.numel(), dtype=torch.bool)
    kept[subset.kept_indices] = True
    return subset.scores[kept].tolist(), subset.scores[~kept].tolist()


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


def score_panels(groups: Groups, files: Mapping[str, RunFiles]) -> list[tuple[str, list[float], list[float]]]:
    """Per cell, ``(title, kept scores, pruned scores)`` of the lowest seed with a readable subset.

    Args:
        groups: the runs by cell (:func:`~lightning_adapruner.app.report.aggregation.group_runs`).
        files: the :class:`RunFiles` of every run, by run name.
    """
    several = len({key[0] for key in groups}) > 1
    panels = []
    for (setting, method, ratio), group in groups.items():
        subsets = [(run, files[run.name].subset) for run in group if files[run.name].subset is not None]
        if subsets:  # the lowest seed with a readable subset represents the cell
            run, subset = subsets[0]
            title = (f"{setting}\n" if several else "") + f"{method}, ratio {format_ratio(ratio)} (seed {run.seed})"
            panels.append((title, *kept_and_pruned_scores(subset)))  # type: ignore[arg-type]
    return panels


def per_class_series(groups: Groups, files: Mapping[str, RunFiles], notes: list[str]) -> dict[GroupKey, list]:
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
            series[key] = [statistics.fmean(column) for column in zip(*shares)]
    return series
