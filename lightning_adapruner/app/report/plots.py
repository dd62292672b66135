"""Plotting: one PNG per view, drawn on matplotlib's Agg canvas (no pyplot, so no global backend state is touched).

matplotlib is imported inside the plotting functions only, so loading, aggregating and rendering never need it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_adapruner import METRIC_NAMES
from lightning_adapruner.app.report.aggregation import GroupKey, TableRow, format_ratio, method_order, setting_order
from lightning_adapruner.app.report.compare import ParetoPanel
from lightning_adapruner.app.summary import FULL_DATA_METHOD

log = logging.getLogger(__name__)

PLOT_FILES = {
    "accuracy": "accuracy_vs_prune_ratio.png",
    "pareto_samples": "pareto_samples_forwarded.png",
    "pareto_wall_time": "pareto_wall_time.png",
    "keep_share": "keep_share_per_epoch.png",
    "logits": "logit_histogram.png",
    "per_class": "per_class_kept.png",
}
PLOT_CAPTIONS = {
    "accuracy": "Test accuracy (mean ± std over seeds) against the target prune ratio; dashed: full data.",
    "pareto_samples": (
        "Pareto view: test accuracy (mean ± std over seeds) against samples forwarded as a share of full data's; "
        "the horizontal line and band: full data's mean accuracy ± the lossless tolerance."
    ),
    "pareto_wall_time": "The same against wall time as a share of full data's mean wall time.",
    "keep_share": "Realised keep share per epoch (mean over seeds), and its target (dotted).",
    "logits": "Per-sample scores of the exported subset (AdaPruner: the learned logit m), kept against pruned.",
    "per_class": "Kept share of every class (mean over seeds); dotted: 1 - target prune ratio.",
}
MARKERS = "os^Dv<>"


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


def _finish(fig: Any, axes: Any, used: int, path: Path) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)
    fig.savefig(path, dpi=120)


def plot_accuracy(rows: Sequence[TableRow], path: Path) -> None:
    """Test accuracy against target prune ratio, one line per method, one panel per setting.

    Args:
        rows: the aggregated rows.
        path: the PNG to write.
    """
    settings = sorted({row.setting for row in rows}, key=setting_order)
    nrows, ncols = _grid(len(settings), 2)
    fig, axes = _figure(nrows, ncols, 6.0, 4.2)
    for ax, setting in zip(axes.flat, settings):
        here = [row for row in rows if row.setting == setting and row.test_acc.mean is not None]
        for row in here:
            if row.method == FULL_DATA_METHOD:
                mean, std = row.test_acc.mean, row.test_acc.std or 0.0
                ax.axhspan(mean - std, mean + std, color="0.6", alpha=0.3, lw=0)
                ax.axhline(mean, color="0.3", ls="--", lw=1.2, label=f"{FULL_DATA_METHOD} (full data), n={row.n}")
        methods = sorted({row.method for row in here if row.method != FULL_DATA_METHOD}, key=method_order)
        for i, method in enumerate(methods):
            points = sorted(
                (r.prune_ratio_target, r.test_acc.mean, r.test_acc.std or 0.0) for r in here if r.method == method
            )
            x, y, err = zip(*points)
            ax.errorbar(x, y, yerr=err, marker=MARKERS[i % len(MARKERS)], capsize=3, lw=1.5, label=method)
        ax.set_xticks(sorted({r.prune_ratio_target for r in here if r.method != FULL_DATA_METHOD}))
        ax.set(title=str(setting), xlabel="target prune ratio", ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _finish(fig, axes, len(settings), path)


def plot_pareto(panels: Sequence[ParetoPanel], path: Path, cost: str, tolerance: float) -> None:
    """Test accuracy against a cost relative to full data, one line per method, one panel per setting.

    Args:
        panels: from :func:`~lightning_adapruner.app.report.compare.pareto_panels`.
        path: the PNG to write.
        cost: the x axis's name (``"samples forwarded"``).
        tolerance: half-width of the band around full data's mean accuracy.
    """
    nrows, ncols = _grid(len(panels), 2)
    fig, axes = _figure(nrows, ncols, 6.0, 4.2)
    for ax, panel in zip(axes.flat, panels):
        full = panel.full
        ax.axhspan(full.acc - tolerance, full.acc + tolerance, color="0.6", alpha=0.3, lw=0)
        ax.axhline(
            full.acc, color="0.3", ls="--", lw=1.2, label=f"{FULL_DATA_METHOD} (full data) ± {tolerance * 100:g} pp"
        )
        ax.errorbar([full.cost], [full.acc], yerr=[full.acc_std], marker="*", ms=9, color="0.2", capsize=3, lw=0)
        for i, (method, points) in enumerate(panel.lines.items()):
            ax.errorbar(
                [p.cost for p in points],
                [p.acc for p in points],
                yerr=[p.acc_std for p in points],
                marker=MARKERS[i % len(MARKERS)],
                capsize=3,
                lw=1.5,
                label=method,
            )
        ax.set(title=str(panel.setting), xlabel=f"{cost} (share of full data's)", ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _finish(fig, axes, len(panels), path)


def plot_keep_share(curves: Mapping[GroupKey, dict[str, list[tuple[int, float]]]], path: Path) -> None:
    """Realised keep share per epoch (solid) and its target (dotted), one panel per method, a colour per curve.

    Args:
        curves: per cell, ``{column: [(epoch, mean value)]}`` of the keep share and its target.
        path: the PNG to write.
    """
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    several = len({key[0] for key in curves}) > 1
    methods = sorted({key[1] for key in curves}, key=method_order)
    nrows, ncols = _grid(len(methods), 2)
    fig, axes = _figure(nrows, ncols, 6.0, 4.2)
    for ax, method in zip(axes.flat, methods):
        here = sorted((key for key in curves if key[1] == method), key=lambda k: (setting_order(k[0]), k[2]))
        for i, key in enumerate(here):
            setting, _, ratio = key
            colour = colormaps["viridis"](0.85 * i / max(1, len(here) - 1))
            label = (f"{setting}: " if several else "") + f"ratio {format_ratio(ratio)}"
            epochs, shares = zip(*curves[key][METRIC_NAMES.keep_share])
            ax.plot(epochs, shares, marker="o", ms=3, color=colour, label=label)
            if curves[key].get(METRIC_NAMES.keep_share_target):
                epochs, targets = zip(*curves[key][METRIC_NAMES.keep_share_target])
                ax.plot(epochs, targets, ls=":", lw=1.2, color=colour)
        ax.set(title=f"{method} (dotted: target)", xlabel="epoch", ylabel="keep share (mean over seeds)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0.0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _finish(fig, axes, len(methods), path)


def plot_logit_histograms(panels: Sequence[tuple[str, list[float], list[float]]], path: Path) -> None:
    """Histogram of the per-sample scores of kept and of pruned samples, one panel per (title, kept, pruned).

    Args:
        panels: ``(title, kept scores, pruned scores)`` per panel.
        path: the PNG to write.
    """
    nrows, ncols = _grid(len(panels), 3)
    fig, axes = _figure(nrows, ncols, 4.5, 3.4)
    for ax, (title, kept, pruned) in zip(axes.flat, panels):
        values = kept + pruned
        lo, hi = min(values), max(values)
        bins = [lo + (hi - lo) * i / 40 for i in range(41)] if hi > lo else 10
        ax.hist(kept, bins=bins, alpha=0.6, color="tab:blue", label=f"kept ({len(kept)})")
        ax.hist(pruned, bins=bins, alpha=0.6, color="tab:red", label=f"pruned ({len(pruned)})")
        ax.set(title=title, xlabel="score (AdaPruner: learned logit m)", ylabel="samples")
        ax.title.set_fontsize("medium")
        ax.legend(fontsize="small")
    _finish(fig, axes, len(panels), path)


def plot_per_class(series: Mapping[GroupKey, list[float]], path: Path) -> None:
    """Kept share of every class (mean over seeds), one panel per setting; dotted lines mark 1 - target ratio.

    Args:
        series: per cell, the kept share of every class.
        path: the PNG to write.
    """
    settings = sorted({key[0] for key in series}, key=setting_order)
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
    _finish(fig, axes, len(settings), path)
