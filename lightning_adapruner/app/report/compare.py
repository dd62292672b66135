"""Comparison against full data (pure): paired accuracy differences, the largest lossless saving, Pareto points.

All of them compare a method with the full-data runs (``method == FULL_DATA_METHOD``) of the same setting; a
setting without full-data runs has none of them. Two rules of "lossless" live here: the report's
(:func:`largest_lossless`: non-inferior, the paired 95% interval's lower bound at least ``-margin``) and the older
mean rule of :func:`lossless_savings` (the mean accuracy within a tolerance of full data's), kept for scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from lightning_adapruner.app.report.aggregation import (
    BY_BUDGET,
    Stat,
    TableRow,
    acc_by_seed,
    full_data_row,
    group_runs,
    mean_std,
    method_order,
    settings_of,
)
from lightning_adapruner.app.report.runs import FEWER_EPOCHS_METHOD, Run, Setting
from lightning_adapruner.app.report.stats import LOSSLESS_MARGIN_PP, PairedCI, is_lossless, paired_ci
from lightning_adapruner.app.summary import FULL_DATA_METHOD

LOSSLESS_TOLERANCE = 0.001  # 0.1 percentage points of test accuracy
_ROUNDING = 1e-12  # an accuracy exactly at the tolerance edge counts as lossless despite float rounding
COSTS = {  # TableRow attributes -> their name on an axis
    "samples_forwarded": "samples forwarded",
    "wall_time_s": "wall time",
    "fit_time_s": "fit time",
    "time_s": "time (fit where known, else whole job)",
}


@dataclass(frozen=True)
class PairedDiff:
    """Test accuracy of a cell (setting, method, budget or target prune ratio) minus full data's, seed by seed.

    Attributes:
        seeds: the seeds run by both, in order.
        diff: mean ± std over those seeds of ``acc(method, seed) - acc(full data, seed)`` (accuracy units).
        ci: the same mean in percentage points with its 95% interval (:func:`~.stats.paired_ci`).
        budget: the cell's budget when the sweep is tabled by budget, else ``None``.
    """

    setting: Setting
    method: str
    prune_ratio_target: float
    seeds: tuple[int, ...]
    diff: Stat
    ci: PairedCI = PairedCI(None, None, None, 0)
    budget: float | None = None


def paired_differences(runs: Sequence[Run]) -> list[PairedDiff]:
    """One :class:`PairedDiff` per cell (:func:`~.aggregation.group_runs`) whose setting has full-data runs.

    Pairing by seed removes the seed-to-seed variation both share (the same initial weights, split and data
    order), so a small but consistent gap shows. A cell with no seed in common gets ``Stat(None, None, 0)``.
    Copies of one full-data run count once (:func:`~.aggregation.dedupe_runs`).

    Args:
        runs: the runs of the sweep.

    Example::

        >>> runs = [Run(str(i), m, 0.3, acc, seed=s) for i, (m, s, acc) in enumerate(
        ...     [(FULL_DATA_METHOD, 0, 0.90), (FULL_DATA_METHOD, 1, 0.92), ("random", 0, 0.89), ("random", 1, 0.90)])]
        >>> [(d.method, d.seeds, round(d.diff.mean, 3), d.ci.n) for d in paired_differences(runs)]
        [('random', (0, 1), -0.015, 2)]
    """
    groups = group_runs(runs)
    full = {key.setting: acc_by_seed(group) for key, group in groups.items() if key.method == FULL_DATA_METHOD}
    diffs = []
    for key, group in groups.items():
        if key.method == FULL_DATA_METHOD or key.setting not in full:
            continue
        accs, base = acc_by_seed(group), full[key.setting]
        seeds = tuple(sorted(set(accs) & set(base)))
        stat = mean_std(accs[seed] - base[seed] for seed in seeds)
        ratio = key.value if key.by != BY_BUDGET else round(sum(r.ratio_key for r in group) / len(group), 6)
        budget = key.value if key.by == BY_BUDGET else None
        diffs.append(PairedDiff(key.setting, key.method, ratio, seeds, stat, paired_ci(accs, base), budget))
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
    budget: float | None = None
    paired: PairedCI | None = None


def largest_lossless(rows: Sequence[TableRow], margin_pp: float = LOSSLESS_MARGIN_PP) -> list[LosslessSaving]:
    """Per setting with full data and method, the largest saving among its *lossless* cells: non-inferior at
    ``margin_pp`` (the paired 95% interval's lower bound ``>= -margin_pp``, so two seeds or more) and forwarding
    fewer samples than full data (:attr:`~.aggregation.TableRow.share_of_full` below 1). On equal savings the
    lower budget (or target ratio) is reported.

    Args:
        rows: the rows of :func:`~lightning_adapruner.app.report.aggregation.aggregate`.
        margin_pp: the non-inferiority margin in percentage points (``>= 0``).

    Raises:
        ValueError: if ``margin_pp`` is negative.

    Example::

        >>> from lightning_adapruner.app.report.aggregation import aggregate
        >>> runs = [Run(f"f{s}", FULL_DATA_METHOD, 0.0, acc, seed=s, samples_forwarded=100)
        ...         for s, acc in ((0, 0.90), (1, 0.92), (2, 0.91))]
        >>> runs += [Run(f"{p}{s}", "random", p, acc + d, seed=s, samples_forwarded=100 * (1 - p))
        ...          for p, acc in ((0.3, 0.9), (0.5, 0.85)) for s, d in ((0, 0.0), (1, 0.021), (2, 0.009))]
        >>> [(s.method, round(s.saving, 3), s.prune_ratio_target) for s in largest_lossless(aggregate(runs))]
        [('random', 0.3, 0.3)]
    """
    if not margin_pp >= 0:
        raise ValueError(f"the lossless margin must be >= 0 pp, got {margin_pp!r}")

    def share(row: TableRow) -> float | None:
        return row.share_of_full

    def lossless(row: TableRow, full: TableRow) -> bool:
        return row.paired is not None and bool(is_lossless(row.paired, margin_pp))

    return _largest_savings(rows, share, lossless, keep_budget=True)


def lossless_savings(rows: Sequence[TableRow], tolerance: float = LOSSLESS_TOLERANCE) -> list[LosslessSaving]:
    """Per setting with full data and method, the largest saving among its lossless target ratios.

    The mean rule, kept for scripts (the report uses :func:`largest_lossless`). A ratio is lossless here when its
    mean test accuracy is at least full data's mean minus ``tolerance`` (in
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

    def share(row: TableRow) -> float | None:
        return row.forwarded_vs_full

    def lossless(row: TableRow, full: TableRow) -> bool:
        assert full.test_acc.mean is not None
        return row.test_acc.mean is not None and row.test_acc.mean >= full.test_acc.mean - tolerance - _ROUNDING

    return _largest_savings(rows, share, lossless, keep_budget=False)


def _largest_savings(
    rows: Sequence[TableRow],
    share: Callable[[TableRow], float | None],
    lossless: Callable[[TableRow, TableRow], bool],
    keep_budget: bool,
) -> list[LosslessSaving]:
    """Per setting with full data and method, the cell of largest saving ``1 - share`` among those that forward
    less than full data (``share < 1``: forwarding its count or more saves nothing) and pass ``lossless``."""
    savings = []
    for setting in settings_of(rows):
        full = full_data_row(rows, setting)
        if full is None or full.test_acc.mean is None:
            continue
        here = [r for r in rows if r.setting == setting and r.method != FULL_DATA_METHOD]
        for method in sorted({r.method for r in here}, key=method_order):
            saved = {id(r): 1.0 - s for r in here if r.method == method and (s := share(r)) is not None and s < 1.0}
            qualified = [r for r in here if id(r) in saved and lossless(r, full)]
            best = max(qualified, key=lambda r: saved[id(r)], default=None)
            savings.append(
                LosslessSaving(
                    setting=setting,
                    method=method,
                    saving=None if best is None else saved[id(best)],
                    prune_ratio_target=None if best is None else best.prune_ratio_target,
                    test_acc=None if best is None else best.test_acc.mean,
                    full_acc=full.test_acc.mean,
                    budget=best.budget if keep_budget and best is not None else None,
                    paired=best.paired if keep_budget and best is not None else None,
                )
            )
    return savings


class ParetoPoint(NamedTuple):
    """One cell in a Pareto view: its cost relative to full data, its test accuracy over the seeds, and its test
    accuracy minus full data's, paired by seed (pp, with the 95% interval; ``None`` without full data's seeds)."""

    cost: float
    acc: float
    acc_std: float  # 0.0 for a single seed
    prune_ratio_target: float
    diff: PairedCI | None = None
    label: str = ""  # the cell: "budget 0.60" or "ratio 0.3"


@dataclass(frozen=True)
class ParetoPanel:
    """One setting's Pareto view: full data as the reference (cost 1), the fewer-epochs runs' curve (``reference``,
    empty without them) and one line of points per other method."""

    setting: Setting
    full: ParetoPoint
    lines: dict[str, list[ParetoPoint]]  # method -> points by increasing cost, methods in report order
    reference: list[ParetoPoint] = field(default_factory=list)  # the fewer-epochs runs, by increasing cost


def _cost(row: TableRow, cost: str, full_cost: float) -> float | None:
    if cost == "samples_forwarded":
        return row.share_of_full
    spent = getattr(row, cost).mean
    return None if spent is None else spent / full_cost


def _point(row: TableRow, cost: str, full_cost: float) -> ParetoPoint | None:
    spent = _cost(row, cost, full_cost)
    if spent is None or row.test_acc.mean is None:
        return None
    acc_std = row.test_acc.std or 0.0
    return ParetoPoint(spent, row.test_acc.mean, acc_std, row.prune_ratio_target, row.paired, row.cell.label)


def pareto_panels(rows: Sequence[TableRow], cost: str) -> list[ParetoPanel]:
    """Per setting with full data, test accuracy against ``cost`` as a share of full data's mean cost.

    For ``"samples_forwarded"`` the share is the realised budget where the runs report it
    (:attr:`~.aggregation.TableRow.share_of_full`). Cells without the cost or the accuracy are left out, and so
    is a setting whose full data lacks either or whose other methods have no point. The fewer-epochs cells
    form the panel's ``reference``.

    Args:
        rows: the rows of :func:`~lightning_adapruner.app.report.aggregation.aggregate`.
        cost: a key of :data:`COSTS`: ``"samples_forwarded"``, ``"wall_time_s"``, ``"fit_time_s"``, ``"time_s"``.

    Raises:
        ValueError: for another ``cost``.

    Example::

        >>> from lightning_adapruner.app.report.aggregation import aggregate
        >>> runs = [Run("f", FULL_DATA_METHOD, 0.0, 0.90, wall_time_s=10.0)]
        >>> runs.append(Run("r", "random", 0.5, 0.88, wall_time_s=6.0))
        >>> (panel,) = pareto_panels(aggregate(runs), "wall_time_s")
        >>> panel.full.cost, [(p.cost, p.acc, p.label) for p in panel.lines["random"]]
        (1.0, [(0.6, 0.88, 'ratio 0.5')])
    """
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {sorted(COSTS)}, got {cost!r}")
    panels = []
    for setting in settings_of(rows):
        full = full_data_row(rows, setting)
        full_cost = None if full is None else 1.0 if cost == "samples_forwarded" else getattr(full, cost).mean
        reference = None if full is None or not full_cost else _point(full, cost, full_cost)
        if reference is None:
            continue
        lines: dict[str, list[ParetoPoint]] = {}
        for row in rows:
            point = _point(row, cost, full_cost) if row.setting == setting else None  # type: ignore[arg-type]
            if point is not None and row.method != FULL_DATA_METHOD:
                lines.setdefault(row.method, []).append(point)
        shorter = sorted(lines.pop(FEWER_EPOCHS_METHOD, []), key=lambda p: p.cost)
        if lines or shorter:
            sorted_lines = {m: sorted(p, key=lambda q: q.cost) for m, p in lines.items()}
            panels.append(ParetoPanel(setting, reference._replace(cost=1.0), sorted_lines, shorter))
    return panels
