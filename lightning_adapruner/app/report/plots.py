"""Plotting: one PNG per view, drawn on matplotlib's Agg canvas (no pyplot, so no global backend state is touched).

matplotlib is imported inside the plotting functions only, so loading, aggregating and rendering never need it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_adapruner import METRIC_NAMES
from lightning_adapruner.app.report.aggregation import BY_BUDGET, GroupKey, TableRow, method_order, setting_order
from lightning_adapruner.app.report.artefacts import EARLIER, FINAL_CUT, KEPT, PRUNED, PerClass, ScorePanel
from lightning_adapruner.app.report.compare import ParetoPanel, ParetoPoint
from lightning_adapruner.app.report.layout import Limits, Pin, limits, place
from lightning_adapruner.app.report.runs import FEWER_EPOCHS_METHOD
from lightning_adapruner.app.report.stats import LOSSLESS_MARGIN_PP
from lightning_adapruner.app.summary import FULL_DATA_METHOD

PLOT_FILES = {
    "accuracy": "accuracy_vs_prune_ratio.png",
    "pareto_samples": "pareto_samples_forwarded.png",
    "pareto_wall_time": "pareto_wall_time.png",
    "keep_share": "keep_share_per_epoch.png",
    "logits": "logit_histogram.png",
    "per_class": "per_class_kept.png",
}
PLOT_CAPTIONS = {
    "accuracy": "Test accuracy (mean ± std over seeds) against the budget (or target prune ratio); dashed: full data.",
    "pareto_samples": (
        "Test accuracy minus full data's, paired by seed (pp; error bars: 95% CI), against samples forwarded as a "
        "share of full data's (the realised budget); star: full data at (1, 0); grey curve and band: all the data "
        "for fewer epochs (`shorter`) with its 95% CI; dotted: the lossless margin. Points beyond the axes sit at "
        "the edge with their value; methods at one budget are nudged a little apart."
    ),
    "pareto_wall_time": (
        "The same against the training's time (fit time where the runs report it, else the whole job's) as a share "
        "of full data's; points beyond 3x full data's time sit at the edge with their value."
    ),
    "keep_share": "Realised keep share per epoch (mean over seeds), and its target (dotted).",
    "logits": (
        "Per-sample scores of the exported subset (AdaPruner: the learned logit m), kept against pruned. AdaPruner "
        "updates only the forwarded samples' logits, so the scores of samples cut early are frozen and can sit "
        "above kept ones."
    ),
    "per_class": "Kept share of every class (mean over seeds); dotted: 1 - target prune ratio.",
}
SCORE_CAPTION_SPLIT = (
    "Per-sample scores of the exported subset (AdaPruner: the learned logit m) in three groups: kept at the end; "
    "pruned at the final cut (in the last epoch's kept set, not kept at the end); pruned earlier, whose scores froze "
    "when they were cut (only forwarded samples' logits move), so they can sit above kept ones."
)
GROUP_COLOURS = {KEPT: "tab:blue", FINAL_CUT: "tab:orange", EARLIER: "tab:gray", PRUNED: "tab:red"}
MARKERS = "os^Dv<>"
DODGE = 0.006  # methods' points are nudged this share of the x axis apart, so equal budgets do not hide each other


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


def _finish(fig: Any, axes: Any, used: int, path: Path) -> None:  # hides the unused panels, writes the PNG
    for ax in axes.flat[used:]:
        ax.set_visible(False)
    fig.savefig(path, dpi=120)


def plot_accuracy(rows: Sequence[TableRow], path: Path) -> Any:
    """Test accuracy against the budget (or target prune ratio), one line per method, one panel per setting.

    Args:
        rows: the aggregated rows.
        path: the PNG to write.

    Returns:
        The matplotlib figure.
    """
    settings = sorted({row.setting for row in rows}, key=setting_order)
    by_budget = any(row.cell.by == BY_BUDGET for row in rows)
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
            points = sorted((r.cell.value, r.test_acc.mean, r.test_acc.std or 0.0) for r in here if r.method == method)
            x, y, err = zip(*points)
            ax.errorbar(x, y, yerr=err, marker=MARKERS[i % len(MARKERS)], capsize=3, lw=1.5, label=method)
        ticks = sorted({round(r.cell.value, 2) for r in here if r.method != FULL_DATA_METHOD})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        xlabel = "budget (share of full data's samples)" if by_budget else "target prune ratio"
        ax.set(title=str(setting), xlabel=xlabel, ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _finish(fig, axes, len(settings), path)
    return fig


def _interval(points: Sequence[ParetoPoint]) -> tuple[list[float], list[float], list[float]]:
    """Means, lower and upper bounds (a bound without an interval is the mean) of drawable points."""
    means = [p.diff.mean for p in points]  # type: ignore[union-attr]
    lows = [p.diff.low if p.diff.low is not None else m for p, m in zip(points, means)]  # type: ignore[union-attr]
    highs = [p.diff.high if p.diff.high is not None else m for p, m in zip(points, means)]  # type: ignore[union-attr]
    return means, lows, highs  # type: ignore[return-value]


def _pin_marker(pin: Pin) -> str:
    return "v" if "↓" in pin.text else "^" if "↑" in pin.text else ">"


def _draw_pins(ax: Any, pins: Sequence[Pin], box: Limits, colour: Any, placed: list[tuple[float, float]]) -> None:
    """Markers pinned at the edge, each with the label that gives its value: beside a marker at the right edge,
    above one at the bottom, below one at the top; labels of pins close together are stacked (``placed``: where
    the labels drawn so far on this panel point)."""
    width, height = box.x_hi - box.x_lo, box.y_hi - box.y_lo
    for pin in pins:
        ax.plot([pin.x], [pin.y], marker=_pin_marker(pin), ms=9, color=colour, ls="", clip_on=False, zorder=6)
        level = sum(abs(pin.x - x) < 0.15 * width and abs(pin.y - y) < 0.1 * height for x, y in placed)
        placed.append((pin.x, pin.y))
        if "↓" in pin.text or "↑" in pin.text:
            right = pin.x > box.x_lo + 0.6 * width
            sign = -1 if "↑" in pin.text else 1
            offset, ha = (-4 if right else 4, sign * (10 + 11 * level)), "right" if right else "left"
        else:  # pinned at the right edge: the label to its left
            offset, ha = (-10, -11 * level), "right"
        ax.annotate(
            pin.text, (pin.x, pin.y), xytext=offset, textcoords="offset points", fontsize="small", color=colour,
            ha=ha, va="center", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )  # fmt: skip


def plot_pareto(
    panels: Sequence[ParetoPanel],
    path: Path,
    cost: str,
    margin_pp: float = LOSSLESS_MARGIN_PP,
    x_cap: float = 1.0,
    warning: str | None = None,
) -> Any:
    """Test accuracy minus full data's (pp, 95% CI) against a cost relative to full data, one panel per setting.

    Full data is the star at (1, 0); the fewer-epochs runs are the reference curve with its shaded interval; the
    axes sit on the band that matters (:func:`~.layout.limits`) and points beyond them are pinned at the edge
    with a label (:func:`~.layout.place`).

    Args:
        panels: from :func:`~lightning_adapruner.app.report.compare.pareto_panels`.
        path: the PNG to write.
        cost: the x axis's name (``"samples forwarded"``).
        margin_pp: the lossless margin, drawn as a dotted line.
        x_cap: the largest cost shown before pinning (1 for samples forwarded, 3 for time).
        warning: a warning for the figure's title (times not measured side by side), or ``None``.

    Returns:
        The matplotlib figure.
    """
    nrows, ncols = _grid(len(panels), 2)
    fig, axes = _figure(nrows, ncols, 8.4, 4.8)
    methods = sorted({method for panel in panels for method in panel.lines}, key=method_order)  # one colour each
    for ax, panel in zip(axes.flat, panels):
        box = limits(panel.reference, panel.lines, x_cap)
        placed: list[tuple[float, float]] = []
        ax.axhline(0.0, color="0.3", ls="--", lw=1)
        ax.axhline(-margin_pp, color="0.45", ls=":", lw=1.2, label=f"lossless margin −{margin_pp:g} pp")
        ax.plot([1.0], [0.0], marker="*", ms=14, color="0.1", ls="", zorder=5, label=f"full data ({FULL_DATA_METHOD})")
        reference, ref_pins = place("fewer epochs", panel.reference, box)
        if reference:
            means, lows, highs = _interval(reference)
            xs = [p.cost for p in reference]
            ax.fill_between(xs, lows, highs, color="0.5", alpha=0.25, lw=0)
            label = f"fewer epochs ({FEWER_EPOCHS_METHOD}), 95% CI band"
            ax.plot(xs, means, color="0.25", lw=2.2, marker="s", ms=5, label=label, zorder=4)
        _draw_pins(ax, ref_pins, box, "0.25", placed)
        for i, (method, points) in enumerate(panel.lines.items()):
            k = methods.index(method)
            colour, marker = f"C{k % 10}", MARKERS[k % len(MARKERS)]
            inside, pins = place(method, points, box)
            if inside:
                means, lows, highs = _interval(inside)
                err = [[m - lo for m, lo in zip(means, lows)], [hi - m for m, hi in zip(means, highs)]]
                nudge = DODGE * (i - (len(panel.lines) - 1) / 2) * (box.x_hi - box.x_lo)  # bars side by side
                xs = [p.cost + nudge for p in inside]
                ax.errorbar(xs, means, yerr=err, marker=marker, color=colour, capsize=3, lw=1.4, label=method)
            elif pins:
                ax.plot([], [], marker=_pin_marker(pins[0]), color=colour, ls="", label=f"{method} (off the axes)")
            _draw_pins(ax, pins, box, colour, placed)
        ax.set_xlim(box.x_lo, box.x_hi)
        ax.set_ylim(box.y_lo, box.y_hi)
        ax.set(title=str(panel.setting), xlabel=f"{cost} (share of full data's)")
        ax.set_ylabel("test acc − full data, pp (95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if warning:
        fig.suptitle(f"⚠ {warning}", color="tab:red", fontsize="medium")
    _finish(fig, axes, len(panels), path)
    return fig


def plot_keep_share(curves: Mapping[GroupKey, dict[str, list[tuple[int, float]]]], path: Path) -> Any:
    """Realised keep share per epoch (solid) and its target (dotted), one panel per method, a colour per curve.

    Args:
        curves: per cell, ``{column: [(epoch, mean value)]}`` of the keep share and its target.
        path: the PNG to write.
    """
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    several = len({key.setting for key in curves}) > 1
    methods = sorted({key.method for key in curves}, key=method_order)
    nrows, ncols = _grid(len(methods), 2)
    fig, axes = _figure(nrows, ncols, 6.0, 4.2)
    for ax, method in zip(axes.flat, methods):
        here = sorted(
            (key for key in curves if key.method == method), key=lambda k: (setting_order(k.setting), k.value)
        )
        for i, key in enumerate(here):
            colour = colormaps["viridis"](0.85 * i / max(1, len(here) - 1))
            label = (f"{key.setting}: " if several else "") + key.label
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
    return fig


def score_caption(panels: Sequence[ScorePanel]) -> str:
    """The score plot's caption: three groups when every subset told the samples cut early from those cut at the
    end (``last_epoch``), else kept against pruned with the warning that early-cut scores are frozen."""
    return SCORE_CAPTION_SPLIT if panels and all(p.frozen_known for p in panels) else PLOT_CAPTIONS["logits"]


def plot_logit_histograms(panels: Sequence[ScorePanel], path: Path) -> Any:
    """Histogram of the per-sample scores of each group (kept; pruned at the final cut; pruned earlier), one
    panel per :class:`~.artefacts.ScorePanel`.

    Args:
        panels: from :func:`~lightning_adapruner.app.report.artefacts.score_panels`.
        path: the PNG to write.

    Returns:
        The matplotlib figure.
    """
    nrows, ncols = _grid(len(panels), 3)
    fig, axes = _figure(nrows, ncols, 4.6, 3.5)
    for ax, panel in zip(axes.flat, panels):
        values = [v for scores in panel.groups.values() for v in scores]
        lo, hi = min(values), max(values)
        bins = [lo + (hi - lo) * i / 40 for i in range(41)] if hi > lo else 10
        for name, scores in panel.groups.items():
            ax.hist(scores, bins=bins, alpha=0.55, color=GROUP_COLOURS[name], label=f"{name} ({len(scores)})")
        ax.set(title=panel.title, xlabel="score (AdaPruner: learned logit m)", ylabel="samples")
        ax.title.set_fontsize("medium")
        ax.legend(fontsize="x-small")
    _finish(fig, axes, len(panels), path)
    return fig


def plot_per_class(series: Mapping[GroupKey, PerClass], path: Path) -> Any:
    """Kept share of every class (mean over seeds), one panel per setting; dotted lines mark 1 - target ratio.

    Args:
        series: per cell, the kept share of every class and the cell's target prune ratio.
        path: the PNG to write.

    Returns:
        The matplotlib figure.
    """
    settings = sorted({key.setting for key in series}, key=setting_order)
    nrows, ncols = _grid(len(settings), 1)
    fig, axes = _figure(nrows, ncols, 9.0, 4.0)
    for ax, setting in zip(axes.flat, settings):
        here = sorted((k for k in series if k.setting == setting), key=lambda k: (method_order(k.method), k.value))
        classes = max(len(series[k].shares) for k in here)
        bars = classes <= 20
        width = 0.8 / len(here)
        for i, key in enumerate(here):
            shares, ratio = series[key]
            label = f"{key.method}, {key.label}"
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
    return fig
