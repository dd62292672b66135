"""``adapruner-report``: a markdown table and PNG plots from a Hydra sweep of pruning runs.

Every run of a sweep leaves a ``metrics.json`` in its run directory (at most three levels below the sweep
directory). This module finds them, groups the runs by *setting* (dataset, model, epochs), method and target
prune ratio, and writes ``report.md`` plus four plots into ``<sweep_dir>/report/`` (or ``--out``)::

    adapruner-report multirun/2024-05-01/12-00-00
    adapruner-report multirun/2024-05-01/12-00-00 --out docs/sweep

Layout: loading (files in, :class:`Run` out) -> pure aggregation and rendering (:func:`aggregate`,
:func:`render_markdown`, :func:`parse_metrics_csv`, :func:`mean_per_epoch`; tested without files) ->
plotting (matplotlib's Agg canvas, imported only when plotting) -> :func:`build_report` and :func:`main`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
MAX_DEPTH = 3  # run directories lie at most this many levels below the sweep directory
FULL_DATA_METHOD = "none"
KEEP_SHARE_COLUMN = "adp/keep_share"
KEEP_SHARE_TARGET_COLUMN = "adp/keep_share_target"
PLOT_FILES = {
    "accuracy": "accuracy_vs_prune_ratio.png",
    "keep_share": "keep_share_per_epoch.png",
    "logits": "logit_histogram.png",
    "per_class": "per_class_kept.png",
}


class ReportError(Exception):
    """The sweep cannot be reported on; the message names the path and the fix."""


# --------------------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------------------


class Setting(NamedTuple):
    """What runs must share to be compared: the dataset, the model and the number of epochs."""

    dataset: str
    model: str
    epochs: int | None

    def __str__(self) -> str:
        epochs = "? epochs" if self.epochs is None else f"{self.epochs} epochs"
        return f"{self.dataset} / {self.model}, {epochs}"


@dataclass(frozen=True)
class Run:
    """One run's ``metrics.json``; ``name`` is its directory relative to the sweep, paths are resolved."""

    name: str
    method: str
    prune_ratio_target: float
    test_acc: float
    seed: int | None = None
    dataset: str = "?"
    model: str = "?"
    epochs: int | None = None
    prune_ratio_realised: float | None = None
    samples_forwarded: float | None = None
    wall_time_s: float | None = None
    subset_path: Path | None = None
    metrics_csv: Path | None = None

    @property
    def setting(self) -> Setting:
        return Setting(self.dataset, self.model, self.epochs)

    @property
    def ratio_key(self) -> float:
        """The target prune ratio the run is grouped under; every full-data run is grouped at 0."""
        return 0.0 if self.method == FULL_DATA_METHOD else round(self.prune_ratio_target, 6)


class Skipped(NamedTuple):
    """A run directory that holds no usable ``metrics.json``, and why."""

    name: str
    reason: str


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
    forwarded_vs_full: float | None  # mean samples forwarded / that of the full-data run; None without one
    wall_time_s: Stat

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass
class ReportInputs:
    """Everything :func:`render_markdown` prints besides the table rows."""

    sweep_dir: str
    num_runs: int
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: dict[str, str | None] = field(default_factory=dict)  # file name -> None if written, else why not


# --------------------------------------------------------------------------------------------------------------------
# Parsing (pure)
# --------------------------------------------------------------------------------------------------------------------


def _number(data: Mapping[str, Any], key: str, *, required: bool = False) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ValueError(f"missing required key {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key!r} must be a number, got {value!r}")
    return float(value)


def _path(value: Any, run_dir: Path) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else run_dir / path


def parse_run(data: Any, name: str, run_dir: Path) -> Run:
    """A :class:`Run` from the decoded ``metrics.json`` of the run in ``run_dir``.

    ``method`` and ``test_acc`` are required, and ``prune_ratio_target`` for every method but ``none``; all other
    keys are optional. Relative ``subset_path``/``metrics_csv`` are taken relative to ``run_dir``.

    Raises:
        ValueError: if ``data`` is not an object, a required key is missing or a value has the wrong type.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise ValueError(f"missing required key 'method' (a non-empty string), got {method!r}")
    ratio = _number(data, "prune_ratio_target", required=method != FULL_DATA_METHOD)
    seed, epochs = _number(data, "seed"), _number(data, "epochs")
    return Run(
        name=name,
        method=method,
        prune_ratio_target=0.0 if ratio is None else ratio,
        test_acc=_number(data, "test_acc", required=True),  # type: ignore[arg-type]
        seed=None if seed is None else int(seed),
        dataset=str(data.get("dataset") or "?"),
        model=str(data.get("model") or "?"),
        epochs=None if epochs is None else int(epochs),
        prune_ratio_realised=_number(data, "prune_ratio_realised"),
        samples_forwarded=_number(data, "samples_forwarded"),
        wall_time_s=_number(data, "wall_time_s"),
        subset_path=_path(data.get("subset_path"), run_dir),
        metrics_csv=_path(data.get("metrics_csv"), run_dir),
    )


def _cell(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    number = float(value)
    return None if math.isnan(number) else number


def parse_metrics_csv(text: str, columns: Sequence[str]) -> dict[str, dict[int, float]]:
    """Per column, ``{epoch: value}`` from the text of a Lightning ``CSVLogger`` ``metrics.csv``.

    Each row of that file fills only some columns (the others are empty or ``nan``); rows without an epoch or
    without the column are passed over, and the last value logged in an epoch wins.

    Example::

        >>> parse_metrics_csv("epoch,step,adp/keep_share\\n0,9,1.0\\n0,9,\\n1,19,0.8\\n", ["adp/keep_share"])
        {'adp/keep_share': {0: 1.0, 1: 0.8}}
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


# --------------------------------------------------------------------------------------------------------------------
# Aggregation and rendering (pure)
# --------------------------------------------------------------------------------------------------------------------


def mean_std(values: Iterable[float | None]) -> Stat:
    """Mean and sample std (ddof=1) of the values that are not ``None``; the std needs two of them."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return Stat(None, None, 0)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Stat(statistics.fmean(present), std, len(present))


def method_order(method: str) -> tuple[int, str]:
    """Sort key: the full-data run first, then the AdaPruner variants, then the baselines, by name."""
    if method == FULL_DATA_METHOD:
        return (0, method)
    return (1 if method.startswith("adapruner") else 2, method)


def _setting_order(setting: Setting) -> tuple[str, str, int]:
    return (setting.dataset, setting.model, -1 if setting.epochs is None else setting.epochs)


def group_runs(runs: Iterable[Run]) -> dict[tuple[Setting, str, float], list[Run]]:
    """Runs by (setting, method, target prune ratio), in report order; runs inside a group by seed."""
    groups: dict[tuple[Setting, str, float], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.setting, run.method, run.ratio_key)].append(run)
    ordered = sorted(groups, key=lambda k: (_setting_order(k[0]), method_order(k[1]), k[2]))
    return {key: sorted(groups[key], key=_run_order) for key in ordered}


def _run_order(run: Run) -> tuple[bool, int, str]:
    return (run.seed is None, run.seed if run.seed is not None else 0, run.name)


def aggregate(runs: Sequence[Run]) -> list[TableRow]:
    """One :class:`TableRow` per (setting, method, target prune ratio), sorted by setting, method and ratio.

    ``forwarded_vs_full`` divides the mean samples forwarded by that of the ``none`` runs of the same setting
    (all of them, whatever their ``prune_ratio_target``), and is ``None`` when the setting has no such run.
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


def duplicate_seed_notes(rows: Iterable[TableRow]) -> list[str]:
    """A note for every table cell averaged over the same seed twice (e.g. a sweep run into the same dir again)."""
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


def format_ratio(value: float) -> str:
    """``0.3`` -> ``"0.3"``, ``0.125`` -> ``"0.125"``, ``0.0`` -> ``"0"``."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def format_stat(stat: Stat, digits: int) -> str:
    """``"mean ± std"``; ``"mean ± n/a"`` from a single value; ``"n/a"`` from none."""
    if stat.mean is None:
        return "n/a"
    std = "n/a" if stat.std is None else f"{stat.std:.{digits}f}"
    return f"{stat.mean:.{digits}f} ± {std}"


TABLE_HEADER = (
    "| method | target prune ratio | seeds | test acc (mean ± std) | realised prune ratio | samples forwarded "
    "| vs full data | wall time s (mean ± std) |"
)


def render_row(row: TableRow) -> str:
    """One markdown table line of ``row`` (columns as in :data:`TABLE_HEADER`)."""
    realised = row.prune_ratio_realised.mean
    samples = row.samples_forwarded.mean
    cells = [
        f"`{row.method}`",
        "0 (full data)" if row.method == FULL_DATA_METHOD else format_ratio(row.prune_ratio_target),
        str(row.n),
        format_stat(row.test_acc, 4),
        "n/a" if realised is None else f"{realised:.4f}",
        "n/a" if samples is None else f"{samples:,.0f}",
        "n/a" if row.forwarded_vs_full is None else f"{row.forwarded_vs_full:.1%}",
        format_stat(row.wall_time_s, 1),
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown(rows: Sequence[TableRow], inputs: ReportInputs) -> str:
    """The text of ``report.md``: one table per setting, the skipped runs, notes and the plots."""
    settings = sorted({row.setting for row in rows}, key=_setting_order)
    lines = [
        "# AdaPruner sweep report",
        "",
        f"Sweep: `{inputs.sweep_dir}`  ",
        f"Runs found: {inputs.num_runs}; skipped: {len(inputs.skipped)}; "
        f"dataset/model/epochs combinations: {len(settings)}",
        "",
    ]
    if len(settings) > 1:
        lines += ["Combinations:", *(f"- {setting}" for setting in settings), ""]
    for setting in settings:
        lines += [f"## {setting}", "", TABLE_HEADER, "|" + " --- |" * 8]
        lines += [render_row(row) for row in rows if row.setting == setting]
        lines.append("")
    lines += [
        "Test accuracy and wall time: mean ± sample standard deviation (ddof=1) over the seeds of a cell; "
        '"± n/a" where a cell has a single seed. Realised prune ratio and samples forwarded: means. '
        '"vs full data": mean samples forwarded as a share of the `none` (full-data) runs of the same dataset, '
        'model and epochs ("n/a" without such a run).',
        "",
    ]
    if inputs.skipped:
        lines += ["## Skipped runs", ""]
        lines += [f"- `{s.name}`: {s.reason}" for s in sorted(inputs.skipped)]
        lines.append("")
    if inputs.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in inputs.notes), ""]
    if inputs.plots:
        lines += ["## Plots", ""]
        for file_name, reason in inputs.plots.items():
            title = file_name.removesuffix(".png").replace("_", " ")
            lines.append(f"![{title}]({file_name})" if reason is None else f"- `{file_name}` skipped: {reason}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def mean_per_epoch(series: Sequence[Mapping[int, float]]) -> list[tuple[int, float]]:
    """``[(epoch, mean over the series that have that epoch)]`` in epoch order."""
    by_epoch: dict[int, list[float]] = defaultdict(list)
    for one in series:
        for epoch, value in one.items():
            by_epoch[epoch].append(value)
    return [(epoch, statistics.fmean(by_epoch[epoch])) for epoch in sorted(by_epoch)]


def per_class_share(kept: Sequence[int], total: Sequence[int]) -> list[float]:
    """Kept share of every class (``nan`` for a class with no samples)."""
    if len(kept) != len(total):
        raise ValueError(f"per_class_kept has {len(kept)} classes but per_class_total has {len(total)}")
    return [k / t if t else math.nan for k, t in zip(kept, total)]


# --------------------------------------------------------------------------------------------------------------------
# Loading (files)
# --------------------------------------------------------------------------------------------------------------------


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


def find_runs(sweep_dir: Path, exclude: Path | None = None) -> tuple[list[Run], list[Skipped]]:
    """The runs at most :data:`MAX_DEPTH` levels below ``sweep_dir``, and the run directories skipped.

    A directory with a ``metrics.json`` is a run (its subdirectories are not searched); a Hydra run directory
    (one with ``.hydra/``) without it is reported as skipped. ``exclude`` (the report's own folder) and hidden
    directories are not searched.
    """
    runs: list[Run] = []
    skipped: list[Skipped] = []
    excluded = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(sweep_dir):
        here = Path(dirpath)
        name = _display(here, sweep_dir)
        depth = 0 if name == "." else len(Path(name).parts)
        if METRICS_FILE in filenames:
            dirnames[:] = []
            try:
                data = json.loads((here / METRICS_FILE).read_text())
                runs.append(parse_run(data, name, here))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                skipped.append(Skipped(name, f"unreadable {METRICS_FILE} ({type(err).__name__}: {err})"))
            except ValueError as err:
                skipped.append(Skipped(name, f"invalid {METRICS_FILE}: {err}"))
            continue
        if ".hydra" in dirnames:
            skipped.append(Skipped(name, f"no {METRICS_FILE} (the run failed, is still running, or predates it)"))
        dirnames[:] = sorted(
            d for d in dirnames if depth < MAX_DEPTH and not d.startswith(".") and (here / d).resolve() != excluded
        )
    return runs, skipped


def drop_missing_files(runs: Sequence[Run], notes: list[str]) -> list[Run]:
    """``runs`` with every ``subset_path``/``metrics_csv`` that does not exist set to ``None`` (and a note)."""
    checked = []
    for run in runs:
        changes: dict[str, Any] = {}
        if run.subset_path is not None and not _subset_json(run.subset_path).is_file():
            notes.append(f"`{run.name}`: subset_path {_subset_json(run.subset_path)} not found")
            changes["subset_path"] = None
        if run.metrics_csv is not None and not run.metrics_csv.is_file():
            notes.append(f"`{run.name}`: metrics_csv {run.metrics_csv} not found")
            changes["metrics_csv"] = None
        checked.append(replace(run, **changes) if changes else run)
    return checked


def _load_keep_share(run: Run, notes: list[str]) -> dict[str, dict[int, float]] | None:
    if run.metrics_csv is None:
        return None
    try:
        series = parse_metrics_csv(run.metrics_csv.read_text(), [KEEP_SHARE_COLUMN, KEEP_SHARE_TARGET_COLUMN])
    except (OSError, ValueError, csv.Error) as err:
        notes.append(f"`{run.name}`: cannot read metrics_csv {run.metrics_csv} ({type(err).__name__}: {err})")
        return None
    return series if series[KEEP_SHARE_COLUMN] else None


def _subset_json(path: Path) -> Path:
    return path / "pruned_subset.json" if path.is_dir() else path.with_suffix(".json")


def _load_subset_meta(run: Run, notes: list[str]) -> dict[str, Any] | None:
    if run.subset_path is None:
        return None
    path = _subset_json(run.subset_path)
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        notes.append(f"`{run.name}`: cannot read subset_path {path} ({type(err).__name__}: {err})")
        return None
    return meta if isinstance(meta, dict) else None


def _load_logits(run: Run, notes: list[str]) -> tuple[list[float], list[float]] | None:
    """Learned logits of the kept and of the pruned samples of ``run``'s exported subset."""
    import torch

    from lightning_adapruner import read_pruned_subset

    assert run.subset_path is not None
    try:
        subset = read_pruned_subset(run.subset_path)
        kept, logits = subset.kept_indices, subset.scores
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        notes.append(f"`{run.name}`: cannot read the subset tensors at {run.subset_path} ({type(err).__name__}: {err})")
        return None
    mask = torch.zeros(logits.numel(), dtype=torch.bool)
    mask[kept] = True
    return logits[mask].tolist(), logits[~mask].tolist()


# --------------------------------------------------------------------------------------------------------------------
# Plotting (matplotlib's Agg canvas; no pyplot, so no global backend state is touched)
# --------------------------------------------------------------------------------------------------------------------


def _figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    ncols = min(n, max_cols)
    return math.ceil(n / ncols), ncols


def _hide_unused(axes: Any, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def plot_accuracy(rows: Sequence[TableRow], path: Path) -> None:
    """Test accuracy against target prune ratio, one line per method, one panel per setting."""
    settings = sorted({row.setting for row in rows}, key=_setting_order)
    nrows, ncols = _grid(len(settings), 2)
    fig, axes = _figure(nrows, ncols, 6.0, 4.2)
    for ax, setting in zip(axes.flat, settings):
        here = [row for row in rows if row.setting == setting and row.test_acc.mean is not None]
        for row in here:
            if row.method == FULL_DATA_METHOD:
                mean, std = row.test_acc.mean, row.test_acc.std or 0.0
                label = f"none (full data), n={row.n}"
                ax.axhspan(mean - std, mean + std, color="0.6", alpha=0.3, lw=0)
                ax.axhline(mean, color="0.3", ls="--", lw=1.2, label=label)
        methods = sorted({row.method for row in here if row.method != FULL_DATA_METHOD}, key=method_order)
        for i, method in enumerate(methods):
            points = sorted(
                (r.prune_ratio_target, r.test_acc.mean, r.test_acc.std or 0.0) for r in here if r.method == method
            )
            x, y, err = zip(*points)
            ax.errorbar(x, y, yerr=err, marker="os^Dv<>"[i % 7], capsize=3, lw=1.5, label=method)
        ax.set_xticks(sorted({r.prune_ratio_target for r in here if r.method != FULL_DATA_METHOD}))
        ax.set(title=str(setting), xlabel="target prune ratio", ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _hide_unused(axes, len(settings))
    fig.savefig(path, dpi=120)


def plot_keep_share(
    curves: Mapping[tuple[Setting, str, float], dict[str, list[tuple[int, float]]]], path: Path
) -> None:
    """Realised keep share per epoch (solid) and its target (dotted), one panel per method, a colour per curve."""
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    several = len({key[0] for key in curves}) > 1
    methods = sorted({key[1] for key in curves}, key=method_order)
    nrows, ncols = _grid(len(methods), 2)
    fig, axes = _figure(nrows, ncols, 6.0, 4.2)
    for ax, method in zip(axes.flat, methods):
        here = sorted((key for key in curves if key[1] == method), key=lambda k: (_setting_order(k[0]), k[2]))
        for i, key in enumerate(here):
            setting, _, ratio = key
            colour = colormaps["viridis"](0.85 * i / max(1, len(here) - 1))
            label = (f"{setting}: " if several else "") + f"ratio {format_ratio(ratio)}"
            epochs, shares = zip(*curves[key][KEEP_SHARE_COLUMN])
            ax.plot(epochs, shares, marker="o", ms=3, color=colour, label=label)
            if curves[key].get(KEEP_SHARE_TARGET_COLUMN):
                epochs, targets = zip(*curves[key][KEEP_SHARE_TARGET_COLUMN])
                ax.plot(epochs, targets, ls=":", lw=1.2, color=colour)
        ax.set(title=f"{method} (dotted: target)", xlabel="epoch", ylabel="keep share (mean over seeds)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0.0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _hide_unused(axes, len(methods))
    fig.savefig(path, dpi=120)


def plot_logit_histograms(panels: Sequence[tuple[str, list[float], list[float]]], path: Path) -> None:
    """Histogram of the learned logits of kept and of pruned samples, one panel per (title, kept, pruned)."""
    nrows, ncols = _grid(len(panels), 3)
    fig, axes = _figure(nrows, ncols, 4.5, 3.4)
    for ax, (title, kept, pruned) in zip(axes.flat, panels):
        values = kept + pruned
        lo, hi = min(values), max(values)
        bins = [lo + (hi - lo) * i / 40 for i in range(41)] if hi > lo else 10
        ax.hist(kept, bins=bins, alpha=0.6, color="tab:blue", label=f"kept ({len(kept)})")
        ax.hist(pruned, bins=bins, alpha=0.6, color="tab:red", label=f"pruned ({len(pruned)})")
        ax.set(title=title, xlabel="learned logit m", ylabel="samples")
        ax.title.set_fontsize("medium")
        ax.legend(fontsize="small")
    _hide_unused(axes, len(panels))
    fig.savefig(path, dpi=120)


def plot_per_class(series: Mapping[tuple[Setting, str, float], list[float]], path: Path) -> None:
    """Kept share of every class (mean over seeds), one panel per setting; dotted lines mark 1 - target ratio."""
    settings = sorted({key[0] for key in series}, key=_setting_order)
    nrows, ncols = _grid(len(settings), 1)
    fig, axes = _figure(nrows, ncols, 9.0, 4.0)
    for ax, setting in zip(axes.flat, settings):
        here = sorted(
            ((m, r, s) for (st, m, r), s in series.items() if st == setting), key=lambda t: (method_order(t[0]), t[1])
        )
        classes = max(len(s) for _, _, s in here)
        bars = classes <= 20
        width = 0.8 / len(here)
        for i, (method, ratio, shares) in enumerate(here):
            label = f"{method}, ratio {format_ratio(ratio)}"
            if bars:
                x = [c - 0.4 + width * (i + 0.5) for c in range(len(shares))]
                artist = ax.bar(x, shares, width=width, label=label)
                colour = artist.patches[0].get_facecolor()
            else:
                (line,) = ax.plot(range(len(shares)), shares, marker="o", ms=3, lw=0.8, label=label)
                colour = line.get_color()
            ax.axhline(1.0 - ratio, color=colour, ls=":", lw=1)
        ax.set(title=f"{setting} (dotted: 1 - target ratio)", xlabel="class", ylabel="kept share of the class")
        if bars:
            ax.set_xticks(range(classes))
        ax.set_ylim(0.0, 1.05)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="small", ncols=2)
    _hide_unused(axes, len(settings))
    fig.savefig(path, dpi=120)


def _plot_all(runs: Sequence[Run], rows: Sequence[TableRow], out_dir: Path, notes: list[str]) -> dict[str, str | None]:
    """Write every plot it has inputs for; ``{file name: None if written, else why not}``."""
    plots: dict[str, str | None] = {}
    groups = group_runs(drop_missing_files(runs, notes))

    if any(row.test_acc.mean is not None and row.method != FULL_DATA_METHOD for row in rows):
        plot_accuracy(rows, out_dir / PLOT_FILES["accuracy"])
        plots[PLOT_FILES["accuracy"]] = None
    else:
        plots[PLOT_FILES["accuracy"]] = "no pruning run (only `none` runs)"

    curves = {}
    for key, group in groups.items():
        loaded = [s for s in (_load_keep_share(run, notes) for run in group) if s is not None]
        if loaded:
            curves[key] = {column: mean_per_epoch([s[column] for s in loaded]) for column in loaded[0]}
    if curves:
        plot_keep_share(curves, out_dir / PLOT_FILES["keep_share"])
        plots[PLOT_FILES["keep_share"]] = None
    else:
        plots[PLOT_FILES["keep_share"]] = f"no run has a readable `metrics_csv` with an `{KEEP_SHARE_COLUMN}` column"

    panels = []
    for (setting, method, ratio), group in groups.items():
        if not method.startswith("adapruner"):
            continue
        for run in group:  # the lowest seed with a readable subset represents the cell
            if run.subset_path is not None and (logits := _load_logits(run, notes)) is not None:
                several = len({key[0] for key in groups}) > 1
                title = f"{setting}\n" if several else ""
                title += f"{method}, ratio {format_ratio(ratio)} (seed {run.seed})"
                panels.append((title, *logits))
                break
    if panels:
        plot_logit_histograms(panels, out_dir / PLOT_FILES["logits"])
        plots[PLOT_FILES["logits"]] = None
    else:
        plots[PLOT_FILES["logits"]] = "no adapruner run has a readable `subset_path` (pruned_subset.json + .pt)"

    per_class = {}
    for key, group in groups.items():
        shares = []
        for run in group:
            meta = _load_subset_meta(run, notes)
            if meta and meta.get("per_class_kept") is not None and meta.get("per_class_total") is not None:
                try:
                    shares.append(per_class_share(meta["per_class_kept"], meta["per_class_total"]))
                except ValueError as err:
                    notes.append(f"`{run.name}`: {err}")
        if shares and len({len(s) for s in shares}) == 1:
            per_class[key] = [statistics.fmean(column) for column in zip(*shares)]
    if per_class:
        plot_per_class(per_class, out_dir / PLOT_FILES["per_class"])
        plots[PLOT_FILES["per_class"]] = None
    else:
        plots[PLOT_FILES["per_class"]] = (
            "no run's pruned_subset.json has `per_class_kept` (labels unknown or no subset)"
        )
    return plots


# --------------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------------


def build_report(sweep_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``report.md`` and the plots for the sweep in ``sweep_dir``; returns the path of ``report.md``.

    Args:
        sweep_dir: the Hydra sweep directory (``multirun/<date>/<time>``) or any folder above the runs.
        out_dir: where to write; ``<sweep_dir>/report`` by default.

    Raises:
        ReportError: if ``sweep_dir`` is not a directory or no usable ``metrics.json`` lies below it.
    """
    sweep = Path(sweep_dir).expanduser()
    if not sweep.is_dir():
        raise ReportError(
            f"sweep directory {sweep} does not exist (or is not a directory); pass the folder Hydra wrote the sweep "
            "to, e.g. `adapruner-report multirun/<date>/<time>`"
        )
    out = Path(out_dir).expanduser() if out_dir is not None else sweep / "report"
    runs, skipped = find_runs(sweep, exclude=out)
    if not runs:
        detail = "; ".join(f"{s.name}: {s.reason}" for s in sorted(skipped)[:5])
        raise ReportError(
            f"no usable {METRICS_FILE} in {sweep} or up to {MAX_DEPTH} levels below it"
            + (f" ({len(skipped)} run dir(s) skipped: {detail})" if skipped else "")
            + f"; pass the sweep directory whose run folders hold the {METRICS_FILE} written at the end of "
            "`adapruner-train`, or rerun the sweep if the runs failed"
        )
    out.mkdir(parents=True, exist_ok=True)
    rows = aggregate(runs)
    notes = duplicate_seed_notes(rows)
    plots = _plot_all(runs, rows, out, notes)
    inputs = ReportInputs(str(sweep), len(runs), skipped, notes, plots)
    report = out / "report.md"
    report.write_text(render_markdown(rows, inputs))
    log.info("report of %d runs (%d skipped) written to %s", len(runs), len(skipped), report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``adapruner-report <sweep_dir> [--out DIR]``; returns the exit status (0 on success, 2 on a bad sweep)."""
    parser = argparse.ArgumentParser(
        prog="adapruner-report",
        description="Tabulate and plot a Hydra sweep of adapruner-train runs (one metrics.json per run).",
    )
    parser.add_argument("sweep_dir", help="the sweep directory, e.g. multirun/2024-05-01/12-00-00")
    parser.add_argument("--out", default=None, help="output folder (default: <sweep_dir>/report)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.out)
    except ReportError as err:
        print(f"adapruner-report: error: {err}", file=sys.stderr)
        return 2
    print(f"adapruner-report: wrote {report} (plots beside it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
