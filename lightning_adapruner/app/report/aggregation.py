"""Aggregation (pure): runs grouped into cells by setting, method and budget (or target prune ratio), with
mean ± std over the seeds and the paired difference with full data.

A sweep whose runs carry the budget keys (``budget_target``/``budget_realised``) is tabled by budget: a run's
cell is (setting, method, :attr:`~lightning_adapruner.app.report.runs.Run.budget_key`), except that the runs of a
method configured by prune ratio (no ``budget_target``) share one cell per target ratio, at the mean of their
budget keys, so a realised budget that moves a little with the seed does not split the cell. An older sweep
(no budget keys) is tabled by target prune ratio (:func:`grouping_of`).

Copies of one full-data run (the same setting and seed: a sweep over prune ratios trains ``none`` once per
ratio) and of one fewer-epochs run (the same setting, seed and epochs) count once (:func:`dedupe_runs`).

Report order: settings by (dataset, model, epochs, label noise); inside a setting the full-data method first,
the fewer-epochs one second, then the other methods alphabetically (:func:`method_order`); inside a method by
budget or target prune ratio.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lightning_adapruner.app.report.runs import FEWER_EPOCHS_METHOD, Run, Setting
from lightning_adapruner.app.report.stats import PairedCI, paired_ci
from lightning_adapruner.app.summary import FULL_DATA_METHOD

BY_BUDGET, BY_RATIO = "budget", "prune_ratio"  # what a sweep's cells are keyed by (see grouping_of)


def format_budget(value: float) -> str:
    """A budget with two decimals at least and three at most: ``0.6`` -> ``"0.60"``, ``0.652`` -> ``"0.652"``."""
    text = f"{value:.3f}"
    return text[:-1] if text.endswith("0") else text


class Cell(NamedTuple):
    """A table cell: the runs of one setting and method at one budget (``by="budget"``) or target prune ratio.

    Example::

        >>> Cell(Setting("d", "m", 20), "rs2", 0.6, BY_BUDGET).label, Cell(Setting("d", "m", 20), "el2n", 0.3).label
        ('budget 0.60', 'ratio 0.3')
    """

    setting: Setting
    method: str
    value: float  # the budget or the target prune ratio
    by: str = BY_RATIO

    @property
    def label(self) -> str:
        return f"budget {format_budget(self.value)}" if self.by == BY_BUDGET else f"ratio {format_ratio(self.value)}"


GroupKey = Cell  # (setting, method, budget or target prune ratio, by)


class Stat(NamedTuple):
    """Mean and sample standard deviation (ddof=1) of the values present; ``None`` where undefined."""

    mean: float | None
    std: float | None
    n: int


_NONE = Stat(None, None, 0)


@dataclass(frozen=True)
class TableRow:
    """One cell of the report table (see :class:`Cell`).

    Attributes:
        prune_ratio_target: the cell's target prune ratio (by budget: the mean over its runs).
        forwarded_vs_full: mean samples forwarded / that of the full-data runs; ``None`` without one.
        budget: the cell's budget when the sweep is tabled by budget, else ``None``.
        epochs: the epochs the runs trained (a fewer-epochs run trains fewer than its setting's).
        budget_realised: samples forwarded as a share of full data's (``Run.realised_budget``).
        fit_time_s: seconds of the training itself; ``time_s``: that, or the whole job's where it is missing.
        paired: test accuracy minus that of full data, paired by seed (``None`` for full data, or without it).
    """

    setting: Setting
    method: str
    prune_ratio_target: float
    seeds: tuple[int | None, ...]
    test_acc: Stat
    prune_ratio_realised: Stat
    samples_forwarded: Stat
    forwarded_vs_full: float | None
    wall_time_s: Stat
    budget: float | None = None
    epochs: Stat = _NONE
    budget_realised: Stat = _NONE
    fit_time_s: Stat = _NONE
    time_s: Stat = _NONE
    paired: PairedCI | None = None

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def cell(self) -> Cell:
        if self.budget is not None:
            return Cell(self.setting, self.method, self.budget, BY_BUDGET)
        return Cell(self.setting, self.method, self.prune_ratio_target, BY_RATIO)

    @property
    def share_of_full(self) -> float | None:
        """Samples forwarded as a share of full data's: the mean realised budget, else ``forwarded_vs_full``."""
        if self.method == FULL_DATA_METHOD:
            return 1.0
        return self.budget_realised.mean if self.budget_realised.mean is not None else self.forwarded_vs_full


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
    """Sort key of the methods: the full-data run first, the fewer-epochs run second, then the rest by name.

    Example::

        >>> sorted(["random", "adapruner", FULL_DATA_METHOD, "el2n", FEWER_EPOCHS_METHOD], key=method_order) == [
        ...     FULL_DATA_METHOD, FEWER_EPOCHS_METHOD, "adapruner", "el2n", "random"]
        True
    """
    return ({FULL_DATA_METHOD: 0, FEWER_EPOCHS_METHOD: 1}.get(method, 2), method)


def setting_order(setting: Setting) -> tuple[str, str, int, float]:
    """Sort key of the settings: dataset, model, epochs (unknown first), label noise."""
    return (setting.dataset, setting.model, -1 if setting.epochs is None else setting.epochs, setting.label_noise)


def _run_order(run: Run) -> tuple[bool, int, str]:
    return (run.seed is None, run.seed if run.seed is not None else 0, run.name)


def natural_order(name: str) -> tuple:
    """Sort key of run names with their numbers compared as numbers: ``"2"`` before ``"10"``.

    Example::

        >>> sorted(["10", "2", "seed1/3", "1"], key=natural_order)
        ['1', '2', '10', 'seed1/3']
    """
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _copy_key(run: Run) -> tuple | None:
    """What copies of one run share: full data's (setting, seed), fewer epochs' (setting, seed, epochs)."""
    if run.seed is None:
        return None
    if run.method == FULL_DATA_METHOD:
        return (run.setting, run.method, run.seed)
    if run.method == FEWER_EPOCHS_METHOD:
        return (run.setting, run.method, run.seed, run.epochs)
    return None


def _copies(runs: Sequence[Run]) -> list[list[int]]:
    """The positions in ``runs`` of each group of copies of one run, in run-name order, in report order."""
    copies: dict[tuple, list[int]] = defaultdict(list)
    for i, run in enumerate(runs):
        key = _copy_key(run)
        if key is not None:
            copies[key].append(i)
    groups = [sorted(group, key=lambda i: natural_order(runs[i].name)) for group in copies.values() if len(group) > 1]
    first = [runs[group[0]] for group in groups]
    order = sorted(range(len(groups)), key=lambda g: (setting_order(first[g].setting), method_order(first[g].method),
                                                      first[g].seed or 0))  # fmt: skip
    return [groups[g] for g in order]


def duplicate_runs(runs: Sequence[Run]) -> list[list[Run]]:
    """The groups of copies of one run: full-data runs of the same setting and seed, fewer-epochs runs of the
    same setting, seed and epochs; each group (of two or more) in run-name order (:func:`natural_order`).

    Args:
        runs: the runs of the sweep.
    """
    return [[runs[i] for i in group] for group in _copies(runs)]


def dedupe_runs(runs: Sequence[Run]) -> tuple[list[Run], list[str]]:
    """``runs`` with each group of :func:`duplicate_runs` counted once (its first run by name), and a note per group.

    A sweep like ``-m pruning=adapruner,none pruning.prune_ratio=0.1,0.3`` trains the same full-data run once
    per ratio; counted as they are, the copies would pass for extra seeds.

    Args:
        runs: the runs of the sweep.

    Example::

        >>> runs = [Run(name, FULL_DATA_METHOD, 0.0, 0.9, seed=0) for name in ("3", "1")]
        >>> kept, notes = dedupe_runs([*runs, Run("2", "el2n", 0.3, 0.8, seed=0)])
        >>> [run.name for run in kept]
        ['1', '2']
        >>> print(*notes)
        ? / ?, ? epochs: 2 copies of the same full-data run for seed 0 (`1`, `3`) counted once (`1` used)
    """
    dropped: set[int] = set()
    notes = []
    for group in _copies(runs):
        dropped |= set(group[1:])
        first = runs[group[0]]
        names = ", ".join(f"`{runs[i].name}`" for i in group)
        what = "full-data run" if first.method == FULL_DATA_METHOD else f"fewer-epochs run ({first.epochs} epochs)"
        notes.append(
            f"{first.setting}: {len(group)} copies of the same {what} for seed {first.seed} ({names}) counted once "
            f"(`{first.name}` used)"
        )
    return [run for i, run in enumerate(runs) if i not in dropped], notes


def grouping_of(runs: Sequence[Run]) -> str:
    """:data:`BY_BUDGET` when some run carries the budget keys and every run's budget is known
    (``Run.budget_key``), else :data:`BY_RATIO` (a sweep from before the budget keys).

    Args:
        runs: the runs of the sweep.
    """
    if any(run.has_budget_keys for run in runs) and all(run.budget_key is not None for run in runs):
        return BY_BUDGET
    return BY_RATIO


def cell_of_runs(runs: Sequence[Run], by: str | None = None) -> list[Cell]:
    """The cell of every run of ``runs``, in their order (see the module's docstring).

    Args:
        runs: the runs of the sweep.
        by: :data:`BY_BUDGET` or :data:`BY_RATIO`; :func:`grouping_of` when ``None``.

    Raises:
        ValueError: if ``by`` is :data:`BY_BUDGET` and a run's budget is unknown.

    Example::

        >>> runs = [Run("a", "el2n", 0.3, 0.9, budget_realised=0.652), Run("b", "el2n", 0.3, 0.9, budget_realised=0.66),
        ...         Run("c", "rs2", 0.4, 0.9, budget_target=0.6)]
        >>> [(cell.method, cell.label) for cell in cell_of_runs(runs)]
        [('el2n', 'budget 0.656'), ('el2n', 'budget 0.656'), ('rs2', 'budget 0.60')]
    """
    by = grouping_of(runs) if by is None else by
    if by != BY_BUDGET:
        return [Cell(run.setting, run.method, run.ratio_key, BY_RATIO) for run in runs]
    by_ratio: dict[tuple, list[float]] = defaultdict(list)
    for run in runs:
        if run.budget_target is None and run.budget_key is not None:
            by_ratio[(run.setting, run.method, run.ratio_key)].append(run.budget_key)
    cells = []
    for run in runs:
        key = (run.setting, run.method, run.ratio_key)
        if run.method == FULL_DATA_METHOD or run.budget_target is not None or not by_ratio.get(key):
            value = run.budget_key
        else:
            value = round(statistics.fmean(by_ratio[key]), 3)
        if value is None:
            raise ValueError(
                f"run {run.name!r} has no budget (no budget_target, budget_realised, or samples_forwarded and "
                "samples_full_data): group the sweep by prune ratio"
            )
        cells.append(Cell(run.setting, run.method, value, BY_BUDGET))
    return cells


def _cell_order(cell: Cell) -> tuple:
    return (setting_order(cell.setting), method_order(cell.method), cell.value)


def group_runs(runs: Iterable[Run], by: str | None = None) -> dict[GroupKey, list[Run]]:
    """Runs by :class:`Cell`, in report order; runs inside a cell by seed; copies of a run counted once.

    Args:
        runs: the runs of the sweep.
        by: :data:`BY_BUDGET` or :data:`BY_RATIO`; :func:`grouping_of` when ``None``.
    """
    kept, _ = dedupe_runs(list(runs))
    groups: dict[GroupKey, list[Run]] = defaultdict(list)
    for run, cell in zip(kept, cell_of_runs(kept, by)):
        groups[cell].append(run)
    return {key: sorted(groups[key], key=_run_order) for key in sorted(groups, key=_cell_order)}


def acc_by_seed(runs: Iterable[Run]) -> dict[int, float]:
    """Mean test accuracy per seed (a seed run twice counts once, with its mean); runs without a seed drop out.

    Example::

        >>> acc_by_seed([Run("a", "el2n", 0.3, 0.75, seed=0), Run("b", "el2n", 0.3, 0.85, seed=0), Run("c", "x", 0, 1)])
        {0: 0.8}
    """
    by_seed: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        if run.seed is not None:
            by_seed[run.seed].append(run.test_acc)
    return {seed: statistics.fmean(values) for seed, values in by_seed.items()}


def aggregate(runs: Sequence[Run], by: str | None = None) -> list[TableRow]:
    """One :class:`TableRow` per :class:`Cell`, sorted by setting, method and budget (or target ratio).

    ``forwarded_vs_full`` divides the mean samples forwarded by that of the full-data runs of the same setting
    (all of them, whatever their ``prune_ratio_target``), and is ``None`` when the setting has no such run;
    ``paired`` pairs the cell's runs with those full-data runs seed by seed.

    Args:
        runs: the runs of the sweep.
        by: :data:`BY_BUDGET` or :data:`BY_RATIO`; :func:`grouping_of` when ``None``.
    """
    groups = group_runs(runs, by)
    full_runs: dict[Setting, list[Run]] = defaultdict(list)
    for cell, group in groups.items():
        if cell.method == FULL_DATA_METHOD:
            full_runs[cell.setting] += group
    rows = []
    for cell, group in groups.items():
        samples = mean_std(r.samples_forwarded for r in group)
        base = mean_std(r.samples_forwarded for r in full_runs.get(cell.setting, [])).mean
        share = samples.mean / base if samples.mean is not None and base else None
        full = cell.setting in full_runs and cell.method != FULL_DATA_METHOD
        rows.append(
            TableRow(
                setting=cell.setting,
                method=cell.method,
                prune_ratio_target=cell.value
                if cell.by == BY_RATIO
                else round(statistics.fmean(r.ratio_key for r in group), 6),
                seeds=tuple(r.seed for r in group),
                test_acc=mean_std(r.test_acc for r in group),
                prune_ratio_realised=mean_std(r.prune_ratio_realised for r in group),
                samples_forwarded=samples,
                forwarded_vs_full=share,
                wall_time_s=mean_std(r.wall_time_s for r in group),
                budget=cell.value if cell.by == BY_BUDGET else None,
                epochs=mean_std(r.epochs for r in group),
                budget_realised=mean_std(r.realised_budget for r in group),
                fit_time_s=mean_std(r.fit_time_s for r in group),
                time_s=mean_std(r.time_s for r in group),
                paired=paired_ci(acc_by_seed(group), acc_by_seed(full_runs[cell.setting])) if full else None,
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
    """A note for every table cell averaged over the same seed twice (e.g. a sweep run into the same dir again;
    copies of a full-data or fewer-epochs run are counted once before, see :func:`dedupe_runs`).

    Args:
        rows: the rows of :func:`aggregate`.
    """
    notes = []
    for row in rows:
        seeds = [s for s in row.seeds if s is not None]
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            notes.append(
                f"{row.setting}, {row.method} at {row.cell.label}: seed(s) "
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
