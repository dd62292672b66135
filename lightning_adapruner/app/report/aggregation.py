"""Aggregation (pure): runs grouped by setting, method and target prune ratio, with mean ± std over the seeds.

Report order: settings by (dataset, model, epochs, label noise); inside a setting the full-data method first,
then the other methods alphabetically (:func:`method_order`); inside a method by target prune ratio.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lightning_adapruner.app.report.runs import Run, Setting
from lightning_adapruner.app.summary import FULL_DATA_METHOD

log = logging.getLogger(__name__)

GroupKey = tuple[Setting, str, float]  # (setting, method, target prune ratio)


class Stat(NamedTuple):
    """Mean and sample standard deviation (ddof=1) of the values present; ``None`` where undefined."""

    mean: float | None
    std: float | None
    n: int


@dataclass(frozen=True)
class TableRow:
    """One (setting, method, target prune ratio) cell group of the report table."""

    setting: Setting
    method: str
    prune_ratio_target: float
    seeds: tuple[int | None, ...]
    test_acc: Stat
    prune_ratio_realised: Stat
    samples_forwarded: Stat
    forwarded_vs_full: float | None  # mean samples forwarded / that of the full-data runs; None without one
    wall_time_s: Stat

    @property
    def n(self) -> int:
        return len(self.seeds)


def mean_std(values: Iterable[float | None]) -> Stat:
    """Mean and sample std (ddof=1) of the values that are not ``None``; the std needs two of them.

    Args:
        values: the values, ``None`` for a missing one.

    Example::

        >>> mean_std([0.5, None, 1.0]), mean_std([0.5]), mean_std([None])
        (Stat(mean=0.75, std=0.3535533905932738, n=2), Stat(mean=0.5, std=None, n=1), Stat(mean=None, std=None, n=0))
    """
    present = [float(v) for v in values if v is not None]
    if not present:
        return Stat(None, None, 0)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Stat(statistics.fmean(present), std, len(present))


def method_order(method: str) -> tuple[int, str]:
    """Sort key of the methods: the full-data run first, then every other method alphabetically.

    Example::

        >>> sorted(["random", "adapruner", FULL_DATA_METHOD, "el2n"], key=method_order) == [
        ...     FULL_DATA_METHOD, "adapruner", "el2n", "random"]
        True
    """
    return (0 if method == FULL_DATA_METHOD else 1, method)


def setting_order(setting: Setting) -> tuple[str, str, int, float]:
    """Sort key of the settings: dataset, model, epochs (unknown first), label noise."""
    return (setting.dataset, setting.model, -1 if setting.epochs is None else setting.epochs, setting.label_noise)


def _run_order(run: Run) -> tuple[bool, int, str]:
    return (run.seed is None, run.seed if run.seed is not None else 0, run.name)


def group_runs(runs: Iterable[Run]) -> dict[GroupKey, list[Run]]:
    """Runs by (setting, method, target prune ratio), in report order; runs inside a group by seed.

    Args:
        runs: the runs of the sweep.
    """
    groups: dict[GroupKey, list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.setting, run.method, run.ratio_key)].append(run)
    ordered = sorted(groups, key=lambda k: (setting_order(k[0]), method_order(k[1]), k[2]))
    return {key: sorted(groups[key], key=_run_order) for key in ordered}


def aggregate(runs: Sequence[Run]) -> list[TableRow]:
    """One :class:`TableRow` per (setting, method, target prune ratio), sorted by setting, method and ratio.

    ``forwarded_vs_full`` divides the mean samples forwarded by that of the full-data runs of the same setting
    (all of them, whatever their ``prune_ratio_target``), and is ``None`` when the setting has no such run.

    Args:
        runs: the runs of the sweep.
    """
    full = {
        setting: mean_std(r.samples_forwarded for r in runs if r.setting == setting and r.method == FULL_DATA_METHOD)
        for setting in {r.setting for r in runs}
    }
    rows = []
    for (setting, method, ratio), group in group_runs(runs).items():
        samples = mean_std(r.samples_forwarded for r in group)
        base = full[setting].mean
        share = samples.mean / base if samples.mean is not None and base else None
        rows.append(
            TableRow(
                setting=setting,
                method=method,
                prune_ratio_target=ratio,
                seeds=tuple(r.seed for r in group),
                test_acc=mean_std(r.test_acc for r in group),
                prune_ratio_realised=mean_std(r.prune_ratio_realised for r in group),
                samples_forwarded=samples,
                forwarded_vs_full=share,
                wall_time_s=mean_std(r.wall_time_s for r in group),
            )
        )
    return rows


def settings_of(rows: Iterable[TableRow]) -> list[Setting]:
    """The settings of ``rows``, in report order."""
    return sorted({row.setting for row in rows}, key=setting_order)


def full_data_row(rows: Iterable[TableRow], setting: Setting) -> TableRow | None:
    """The full-data row of ``setting``, or ``None`` when it has no full-data run.

    Args:
        rows: the rows of :func:`aggregate`.
        setting: the setting.
    """
    return next((r for r in rows if r.setting == setting and r.method == FULL_DATA_METHOD), None)


def format_ratio(value: float) -> str:
    """``0.3`` -> ``"0.3"``, ``0.125`` -> ``"0.125"``, ``0.0`` -> ``"0"``."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def duplicate_seed_notes(rows: Iterable[TableRow]) -> list[str]:
    """A note for every table cell averaged over the same seed twice (e.g. a sweep run into the same dir again).

    Args:
        rows: the rows of :func:`aggregate`.
    """
    notes = []
    for row in rows:
        seeds = [s for s in row.seeds if s is not None]
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            notes.append(
                f"{row.setting}, {row.method} at prune ratio {format_ratio(row.prune_ratio_target)}: seed(s) "
                f"{repeated} appear more than once; the mean counts every run"
            )
    return notes


def mean_per_epoch(series: Sequence[Mapping[int, float]]) -> list[tuple[int, float]]:
    """``[(epoch, mean over the series that have that epoch)]`` in epoch order.

    Args:
        series: ``{epoch: value}`` of each run.

    Example::

        >>> mean_per_epoch([{0: 1.0, 1: 0.8}, {0: 1.0, 1: 0.6, 2: 0.5}])
        [(0, 1.0), (1, 0.7), (2, 0.5)]
    """
    by_epoch: dict[int, list[float]] = defaultdict(list)
    for one in series:
        for epoch, value in one.items():
            by_epoch[epoch].append(value)
    return [(epoch, statistics.fmean(by_epoch[epoch])) for epoch in sorted(by_epoch)]


def per_class_share(kept: Sequence[int], total: Sequence[int]) -> list[float]:
    """Kept share of every class (``nan`` for a class with no samples).

    Args:
        kept: kept samples of every class.
        total: samples of every class.

    Raises:
        ValueError: if the two lists differ in length.
    """
    if len(kept) != len(total):
        raise ValueError(f"per_class_kept has {len(kept)} classes but per_class_total has {len(total)}")
    return [k / t if t else math.nan for k, t in zip(kept, total)]
