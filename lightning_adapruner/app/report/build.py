"""``build_report`` and ``main``: a sweep directory in, ``report.md`` and the plots out."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

from lightning_adapruner import METRIC_NAMES, SUBSET_FILE
from lightning_adapruner.app.report.aggregation import TableRow, aggregate, duplicate_seed_notes, group_runs
from lightning_adapruner.app.report.artefacts import (
    RunFiles,
    keep_share_curves,
    load_run_files,
    per_class_series,
    score_panels,
)
from lightning_adapruner.app.report.compare import (
    COSTS,
    LOSSLESS_TOLERANCE,
    lossless_savings,
    paired_differences,
    pareto_panels,
)
from lightning_adapruner.app.report.markdown import ReportInputs, render_markdown
from lightning_adapruner.app.report.plots import (
    PLOT_CAPTIONS,
    PLOT_FILES,
    plot_accuracy,
    plot_keep_share,
    plot_logit_histograms,
    plot_pareto,
    plot_per_class,
)
from lightning_adapruner.app.report.runs import MAX_DEPTH, Run, find_runs
from lightning_adapruner.app.summary import FULL_DATA_METHOD, METRICS_FILE

log = logging.getLogger(__name__)

Plan = Callable[[Path], None] | str  # draws the plot into the path given, or says why there is no plot


class ReportError(Exception):
    """The sweep cannot be reported on; the message names the path and the fix."""


def plot_plans(
    rows: Sequence[TableRow], runs: Sequence[Run], files: Mapping[str, RunFiles], tolerance: float, notes: list[str]
) -> dict[str, Plan]:
    """For every key of :data:`PLOT_FILES`, what draws the plot, or why there is none (a note may be added).

    Args:
        rows: the aggregated rows.
        runs: the runs of the sweep.
        files: the :class:`~lightning_adapruner.app.report.artefacts.RunFiles` of every run, by run name.
        tolerance: the lossless tolerance (the band of the Pareto views).
        notes: the report's notes, appended to.
    """
    groups = group_runs(runs)
    plans: dict[str, Plan] = {}
    pruning = any(row.test_acc.mean is not None and row.method != FULL_DATA_METHOD for row in rows)
    plans["accuracy"] = partial(plot_accuracy, rows) if pruning else f"no pruning run (only `{FULL_DATA_METHOD}` runs)"
    for key, cost in (("pareto_samples", "samples_forwarded"), ("pareto_wall_time", "wall_time_s")):
        panels = pareto_panels(rows, cost)
        plans[key] = (
            partial(plot_pareto, panels, cost=COSTS[cost], tolerance=tolerance)
            if panels
            else f"no setting has `{FULL_DATA_METHOD}` runs and pruning runs that report `{cost}`"
        )
    curves = keep_share_curves(groups, files)
    plans["keep_share"] = (
        partial(plot_keep_share, curves)
        if curves
        else f"no run has a readable `metrics_csv` with an `{METRIC_NAMES.keep_share}` column"
    )
    panels = score_panels(groups, files)
    plans["logits"] = (
        partial(plot_logit_histograms, panels) if panels else f"no run has a readable `subset_path` ({SUBSET_FILE})"
    )
    per_class = per_class_series(groups, files, notes)
    plans["per_class"] = (
        partial(plot_per_class, per_class)
        if per_class
        else f"no run's {SUBSET_FILE} has `per_class_kept` (labels unknown or no subset)"
    )
    return plans


def draw(plans: Mapping[str, Plan], out_dir: Path) -> dict[str, str | None]:
    """Draw every plan into ``out_dir``; ``{file name: None if written, else why not}`` in :data:`PLOT_FILES` order.

    Args:
        plans: from :func:`plot_plans`.
        out_dir: the folder to write the PNGs to.
    """
    written: dict[str, str | None] = {}
    for key, file_name in PLOT_FILES.items():
        plan = plans[key]
        if isinstance(plan, str):
            written[file_name] = plan
        else:
            plan(out_dir / file_name)
            written[file_name] = None
    return written


# ------------------------------------------------------------------------------------------- entry points
def build_report(
    sweep_dir: str | Path, out_dir: str | Path | None = None, tolerance: float = LOSSLESS_TOLERANCE
) -> Path:
    """Write ``report.md`` and the plots for the sweep in ``sweep_dir``; returns the path of ``report.md``.

    Args:
        sweep_dir: the Hydra sweep directory (``multirun/<date>/<time>``) or any folder above the runs.
        out_dir: where to write; ``<sweep_dir>/report`` by default.
        tolerance: the test accuracy a pruning run may lose against full data and still count as lossless,
            in accuracy units (``0.001``: 0.1 percentage points).

    Raises:
        ReportError: if ``sweep_dir`` is not a directory, no usable ``metrics.json`` lies below it, or
            ``tolerance`` is negative.
    """
    if not tolerance >= 0:
        raise ReportError(f"tolerance must be >= 0 (in accuracy units: 0.001 is 0.1 pp), got {tolerance!r}")
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
    files = load_run_files(runs, notes)
    inputs = ReportInputs(
        sweep_dir=_relative(sweep, out),
        num_runs=len(runs),
        skipped=skipped,
        notes=notes,
        plots=draw(plot_plans(rows, runs, files, tolerance, notes), out),
        captions={PLOT_FILES[key]: caption for key, caption in PLOT_CAPTIONS.items()},
        paired=paired_differences(runs),
        savings=lossless_savings(rows, tolerance),
        tolerance=tolerance,
    )
    report = out / "report.md"
    report.write_text(render_markdown(rows, inputs))
    log.info("report of %d runs (%d skipped) written to %s", len(runs), len(skipped), report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``adapruner-report <sweep_dir> [--out DIR] [--tolerance ACC]``; returns 0 on success, 2 on a bad sweep.

    Args:
        argv: the command line without the program name (``sys.argv[1:]`` when ``None``).
    """
    parser = argparse.ArgumentParser(
        prog="adapruner-report",
        description=f"Tabulate and plot a Hydra sweep of adapruner-train runs (one {METRICS_FILE} per run).",
    )
    parser.add_argument("sweep_dir", help="the sweep directory, e.g. multirun/2024-05-01/12-00-00")
    parser.add_argument("--out", default=None, help="output folder (default: <sweep_dir>/report)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=LOSSLESS_TOLERANCE,
        help=f"test accuracy a run may lose and count as lossless (default {LOSSLESS_TOLERANCE}: 0.1 pp)",
    )
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.out, args.tolerance)
    except ReportError as err:
        print(f"adapruner-report: error: {err}", file=sys.stderr)
        return 2
    print(f"adapruner-report: wrote {report} (plots beside it)")
    return 0


def _relative(path: Path, start: Path) -> str:
    """``path`` as seen from ``start`` (the report's folder), so a committed report names no machine's paths."""
    try:
        return os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive (Windows)
        return str(path)
