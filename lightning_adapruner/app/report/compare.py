"""Comparison against full data (pure): paired accuracy differences, the largest lossless saving, Pareto points.

All three compare a method with the full-data runs (``method == FULL_DATA_METHOD``) of the same setting; a
setting without full-data runs has none of them.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lightning_adapruner.app.report.aggregation import (
    Stat,
    TableRow,
    full_data_row,
    group_runs,
    mean_std,
    method_order,
    settings_of,
)
from lightning_adapruner.app.report.runs import Run, Setting
from lightning_adapruner.app.summary import FULL_DATA_METHOD

log = logging.getLogger(__name__)

LOSSLESS_TOLERANCE = 0.001  # 0.1 percentage points of test accuracy
_ROUNDING = 1e-12  # an accuracy exactly at the tolerance edge counts as lossless despite float rounding
COSTS = {"samples_forwarded": "samples forwarded", "wall_time_s": "wall time"}  # TableRow attributes


@dataclass(frozen=True)
class PairedDiff:
    """Test accuracy of a (setting, method, target prune ratio) minus full data's, seed by seed.

    Attributes:
        seeds: the seeds run by both, in order.
        diff: mean ± std over those seeds of ``acc(method, seed) - acc(full data, seed)``.
    """

    setting: Setting
    method: str
    prune_ratio_target: float
    seeds: tuple[int, ...]
    diff: Stat


def _acc_by_seed(runs: Sequence[Run]) -> dict[int, float]:
    """Mean test accuracy per seed (a seed run twice counts once, with its mean); runs without a seed drop out."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        if run.seed is not None:
            by_seed[run.seed].append(run.test_acc)
    return {seed: statistics.fmean(values) for seed, values in by_seed.items()}


def paired_differences(runs: Sequence[Run]) -> list[PairedDiff]:
    """One :class:`PairedDiff` per (setting, method, target prune ratio) whose setting has full-data runs.

    Pairing by seed removes the seed-to-seed variation both share (the same initial weights, split and data
    order), so a small but consistent gap shows. A cell with no seed in common gets ``Stat(None, None, 0)``.

    Args:
        runs: the runs of the sweep.

    Example::

        >>> runs = [Run(str(i), m, 0.3, acc, seed=s) for i, (m, s, acc) in enumerate(
        ...     [(FULL_DATA_METHOD, 0, 0.90), (FULL_DATA_METHOD, 1, 0.92), ("random", 0, 0.89), ("random", 1, 0.90)])]
        >>> [(d.method, d.seeds, round(d.diff.mean, 3)) for d in paired_differences(runs)]
        [('random', (0, 1), -0.015)]
    """
    groups = group_runs(runs)
    full = {key[0]: _acc_by_seed(group) for key, group in groups.items() if key[1] == FULL_DATA_METHOD}
    diffs = []
    for (setting, method, ratio), group in groups.items():
        if method == FULL_DATA_METHOD or setting not in full:
            continue
        accs = _acc_by_seed(group)
        seeds = tuple(sorted(set(accs) & set(full[setting])))
        stat = mean_std(accs[seed] - full[setting][seed] for seed in seeds)
        diffs.append(PairedDiff(setting, method, ratio, seeds, stat))
    return diffs


@dataclass(frozen=True)
class LosslessSaving:
    """The largest compute saving of a method that costs no more than ``tolerance`` of full data's accuracy.

    Attributes:
        saving: ``1 - mean samples forwarded / full data's mean``, or ``None`` when no ratio qualifies.
        prune_ratio_target: the target ratio it was reached at (``None`` with ``saving``).
        test_acc: the mean test accuracy there (``None`` with ``saving``).
        full_acc: full data's mean test accuracy.
    """

    setting: Setting
    method: str
    saving: float | None
    prune_ratio_target: float | None
    test_acc: float | None
    full_acc: float


def lossless_savings(rows: Sequence[TableRow], tolerance: float = LOSSLESS_TOLERANCE) -> list[LosslessSaving]:
    """Per setting with full data and method, the largest saving among its lossless target ratios.

    A ratio is lossless when its mean test accuracy is at least full data's mean minus ``tolerance`` (in
    accuracy units: ``0.001`` is 0.1 percentage points) and it forwards fewer samples than full data (a known
    count: soft mode's prune-then-retrain forwards more, and saves nothing however accurate); the saving is
    ``1 - forwarded_vs_full``, i.e. the mean over seeds of ``1 - samples_forwarded / full data's mean``.
    On equal savings the lower target ratio is reported.

    Args:
        rows: the rows of :func:`~lightning_adapruner.app.report.aggregation.aggregate`.
        tolerance: the accuracy a method may lose and still count as lossless (``>= 0``).

    Raises:
        ValueError: if ``tolerance`` is negative.

    Example::

        >>> from lightning_adapruner.app.report.aggregation import aggregate
        >>> runs = [Run("f", FULL_DATA_METHOD, 0.0, 0.900, samples_forwarded=100)]
        >>> runs += [Run(f"r{p}", "random", p, acc, samples_forwarded=100 * (1 - p))
        ...          for p, acc in ((0.2, 0.8995), (0.5, 0.85))]
        >>> runs += [Run("soft", "adapruner_soft", 0.3, 0.91, samples_forwarded=170)]  # 1.7x full data's count
        >>> savings = lossless_savings(aggregate(runs))
        >>> [(s.method, s.saving and round(s.saving, 3), s.prune_ratio_target) for s in savings]
        [('adapruner_soft', None, None), ('random', 0.2, 0.2)]
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0 (in accuracy units: 0.001 is 0.1 pp), got {tolerance!r}")
    savings = []
    for setting in settings_of(rows):
        full = full_data_row(rows, setting)
        if full is None or full.test_acc.mean is None:
            continue
        here = [r for r in rows if r.setting == setting and r.method != FULL_DATA_METHOD]
        for method in sorted({r.method for r in here}, key=method_order):
            lossless = [
                r
                for r in here
                if r.method == method
                and r.forwarded_vs_full is not None
                and r.forwarded_vs_full < 1.0  # forwarding full data's count or more saves nothing
                and r.test_acc.mean is not None
                and r.test_acc.mean >= full.test_acc.mean - tolerance - _ROUNDING
            ]
            best = max(lossless, key=lambda r: 1.0 - r.forwarded_vs_full, default=None)  # type: ignore[operator]
            savings.append(
                LosslessSaving(
                    setting=setting,
                    method=method,
                    saving=None if best is None else 1.0 - best.forwarded_vs_full,  # type: ignore[operator]
                    prune_ratio_target=None if best is None else best.prune_ratio_target,
                    test_acc=None if best is None else best.test_acc.mean,
                    full_acc=full.test_acc.mean,
                )
            )
    return savings


class ParetoPoint(NamedTuple):
    """One cell in a Pareto view: its cost relative to full data, and its test accuracy over the seeds."""

    cost: float
    acc: float
    acc_std: float  # 0.0 for a single seed
    prune_ratio_target: float


@dataclass(frozen=True)
class ParetoPanel:
    """One setting's Pareto view: full data as the reference (cost 1) and one line of points per method."""

    setting: Setting
    full: ParetoPoint
    lines: dict[str, list[ParetoPoint]]  # method -> points by increasing cost, methods in report order


def _point(row: TableRow, cost: str, full_cost: float) -> ParetoPoint | None:
    spent = getattr(row, cost).mean
    if spent is None or row.test_acc.mean is None:
        return None
    return ParetoPoint(spent / full_cost, row.test_acc.mean, row.test_acc.std or 0.0, row.prune_ratio_target)


def pareto_panels(rows: Sequence[TableRow], cost: str) -> list[ParetoPanel]:
    """Per setting with full data, test accuracy against ``cost`` as a share of full data's mean cost.

    Cells without the cost or the accuracy are left out, and so is a setting whose full data lacks either or
    whose other methods have no point.

    Args:
        rows: the rows of :func:`~lightning_adapruner.app.report.aggregation.aggregate`.
        cost: a key of :data:`COSTS`: ``"samples_forwarded"`` or ``"wall_time_s"``.

    Raises:
        ValueError: for another ``cost``.

    Example::

        >>> from lightning_adapruner.app.report.aggregation import aggregate
        >>> runs = [Run("f", FULL_DATA_METHOD, 0.0, 0.90, wall_time_s=10.0)]
        >>> runs.append(Run("r", "random", 0.5, 0.88, wall_time_s=6.0))
        >>> (panel,) = pareto_panels(aggregate(runs), "wall_time_s")
        >>> panel.full.cost, panel.lines["random"]
        (1.0, [ParetoPoint(cost=0.6, acc=0.88, acc_std=0.0, prune_ratio_target=0.5)])
    """
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {sorted(COSTS)}, got {cost!r}")
    panels = []
    for setting in settings_of(rows):
        full = full_data_row(rows, setting)
        full_cost = None if full is None else getattr(full, cost).mean
        reference = None if full is None or not full_cost else _point(full, cost, full_cost)
        if reference is None:
            continue
        lines: dict[str, list[ParetoPoint]] = {}
        for row in rows:
            point = _point(row, cost, full_cost) if row.setting == setting else None  # type: ignore[arg-type]
            if point is not None and row.method != FULL_DATA_METHOD:
                lines.setdefault(row.method, []).append(point)
        if lines:
            panels.append(ParetoPanel(setting, reference, {m: sorted(p) for m, p in lines.items()}))
    return panels
