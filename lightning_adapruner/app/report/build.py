"""``build_report`` and ``main``: a sweep directory (or a JSONL file of runs) in, ``report.md`` and the plots out."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

from lightning_adapruner import METRIC_NAMES, SUBSET_FILE
from lightning_adapruner.app import missing_extra
from lightning_adapruner.app.report.aggregation import (
    BY_RATIO,
    TableRow,
    aggregate,
    dedupe_runs,
    duplicate_seed_notes,
    group_runs,
    grouping_of,
)
from lightning_adapruner.app.report.artefacts import (
    RunFiles,
    keep_share_curves,
    load_run_files,
    per_class_series,
    score_panels,
)
from lightning_adapruner.app.report.compare import COSTS, largest_lossless, paired_differences, pareto_panels
from lightning_adapruner.app.report.markdown import ReportInputs, render_markdown
from lightning_adapruner.app.report.plots import (
    PLOT_CAPTIONS,
    PLOT_FILES,
    plot_accuracy,
    plot_keep_share,
    plot_logit_histograms,
    plot_pareto,
    plot_per_class,
    score_caption,
)
from lightning_adapruner.app.report.runs import MAX_DEPTH, Run, Skipped, find_runs, load_runs_jsonl, sweep_label
from lightning_adapruner.app.report.stats import LOSSLESS_MARGIN_PP
from lightning_adapruner.app.report.timing import TITLE_WARNING, walltime_warning
from lightning_adapruner.app.report.verdicts import budget_verdicts
from lightning_adapruner.app.summary import FULL_DATA_METHOD, METRICS_FILE

log = logging.getLogger(__name__)

Plan = Callable[[Path], object] | str  # draws the plot into the path given, or says why there is no plot
JSONL_SUFFIX = ".jsonl"
NO_ARTEFACTS = "the runs come from a JSONL file: no run directories, so no {what}"
WALL_TIME_CAP = 3.0  # the wall-time view shows up to 3x full data's time; points beyond sit at the edge


class ReportError(Exception):
    """The sweep cannot be reported on; the message names the path and the fix."""


def time_cost(runs: Sequence[Run]) -> tuple[str, str]:
    """The cost of the wall-time view, ``(TableRow attribute, axis name)``: the fit time when the runs report
    it, the whole job's wall time when none does, the fit time where known otherwise.

    Example::

        >>> time_cost([Run("a", "none", 0, 0.9, wall_time_s=9.0, fit_time_s=7.0)]), time_cost([])
        (('fit_time_s', 'fit time'), ('wall_time_s', 'wall time'))
    """
    fits = [run.fit_time_s is not None for run in runs if run.time_s is not None]
    if fits and all(fits):
        return "fit_time_s", COSTS["fit_time_s"]
    if any(fits):
        return "time_s", COSTS["time_s"]
    return "wall_time_s", COSTS["wall_time_s"]


def _reason(from_jsonl: bool, what: str, otherwise: str) -> str:
    return NO_ARTEFACTS.format(what=what) if from_jsonl else otherwise


def plot_plans(
    rows: Sequence[TableRow],
    runs: Sequence[Run],
    files: Mapping[str, RunFiles],
    notes: list[str],
    captions: dict[str, str] | None = None,
    margin_pp: float = LOSSLESS_MARGIN_PP,
    warning: str | None = None,
    from_jsonl: bool = False,
) -> dict[str, Plan]:
    """For every key of :data:`PLOT_FILES`, what draws the plot, or why there is none (a note may be added).

    Args:
        rows: the aggregated rows.
        runs: the runs of the sweep.
        files: the :class:`~lightning_adapruner.app.report.artefacts.RunFiles` of every run, by run name.
        notes: the report's notes, appended to.
        captions: the captions by plot key, updated where a plot's caption depends on its inputs.
        margin_pp: the lossless margin (drawn on the Pareto views).
        warning: the wall-time view's warning (times not measured side by side), or ``None``.
        from_jsonl: whether the runs come from a JSONL file (no artefacts, said so in the reasons).
    """
    captions = {} if captions is None else captions
    groups = group_runs(runs, grouping_of(runs))
    plans: dict[str, Plan] = {}
    pruning = any(row.test_acc.mean is not None and row.method != FULL_DATA_METHOD for row in rows)
    plans["accuracy"] = partial(plot_accuracy, rows) if pruning else f"no pruning run (only `{FULL_DATA_METHOD}` runs)"
    samples = pareto_panels(rows, "samples_forwarded")
    plans["pareto_samples"] = (
        partial(plot_pareto, samples, cost=COSTS["samples_forwarded"], margin_pp=margin_pp)
        if samples
        else f"no setting has `{FULL_DATA_METHOD}` runs and other runs whose samples forwarded are known"
    )
    cost, name = time_cost(runs)
    wall = pareto_panels(rows, cost)
    title = None if warning is None else TITLE_WARNING
    plans["pareto_wall_time"] = (
        partial(plot_pareto, wall, cost=name, margin_pp=margin_pp, x_cap=WALL_TIME_CAP, warning=title)
        if wall
        else f"no setting has `{FULL_DATA_METHOD}` runs and other runs that report `{cost}`"
    )
    curves = keep_share_curves(groups, files)
    no_csv = f"no run has a readable `metrics_csv` with an `{METRIC_NAMES.keep_share}` column"
    plans["keep_share"] = partial(plot_keep_share, curves) if curves else _reason(from_jsonl, "`metrics.csv`", no_csv)
    panels = score_panels(groups, files)
    captions["logits"] = score_caption(panels)
    subset = f"exported subset ({SUBSET_FILE})"
    no_subset = f"no run has a readable `subset_path` ({SUBSET_FILE})"
    plans["logits"] = partial(plot_logit_histograms, panels) if panels else _reason(from_jsonl, subset, no_subset)
    per_class = per_class_series(groups, files, notes)
    no_class = f"no run's {SUBSET_FILE} has `per_class_kept` (labels unknown or no subset)"
    plans["per_class"] = partial(plot_per_class, per_class) if per_class else _reason(from_jsonl, subset, no_class)
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
            continue
        try:
            plan(out_dir / file_name)
        except ImportError as err:  # matplotlib: the tables need nothing more, the plots need the app's extra
            written[file_name] = str(missing_extra(err, "the report's plots"))
            continue
        written[file_name] = None
    return written


# ------------------------------------------------------------------------------------------- entry points
def load_source(source: Path, exclude: Path) -> tuple[list[Run], list[Skipped]]:
    """The runs of a sweep directory, or of a JSONL file (``.jsonl``), and what was skipped.

    Args:
        source: the sweep directory or the JSONL file.
        exclude: a folder not to search (the report's own).

    Raises:
        ReportError: if ``source`` is neither a directory nor a readable ``.jsonl`` file, or holds no usable run.
    """
    if source.is_file() and source.suffix == JSONL_SUFFIX:
        skipped: list[Skipped] = []
        try:
            runs = load_runs_jsonl(source, skipped)
        except (OSError, UnicodeDecodeError) as err:
            raise ReportError(f"cannot read {source} ({type(err).__name__}: {err})") from None
        if not runs:
            detail = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:5])
            raise ReportError(
                f"no usable run in {source}" + (f" ({len(skipped)} line(s) skipped: {detail})" if skipped else "")
                + f"; each line must be one {METRICS_FILE} object with a `name` key"
            )  # fmt: skip
        return runs, skipped
    if not source.is_dir():
        raise ReportError(
            f"sweep directory {source} does not exist (or is not a directory, nor a {JSONL_SUFFIX} file); pass the "
            "folder Hydra wrote the sweep to, e.g. `adapruner-report multirun/<date>/<time>`, or a JSONL file of runs"
        )
    runs, skipped = find_runs(source, exclude=exclude)
    if not runs:
        detail = "; ".join(f"{s.name}: {s.reason}" for s in sorted(skipped)[:5])
        raise ReportError(
            f"no usable {METRICS_FILE} in {source} or up to {MAX_DEPTH} levels below it"
            + (f" ({len(skipped)} run dir(s) skipped: {detail})" if skipped else "")
            + f"; pass the sweep directory whose run folders hold the {METRICS_FILE} written at the end of "
            "`adapruner-train`, or rerun the sweep if the runs failed"
        )
    return runs, skipped


def _grouping_note(runs: Sequence[Run], by: str) -> list[str]:
    """A note when some runs carry budget keys but the tables are by prune ratio (others lack a budget)."""
    if by != BY_RATIO or not any(run.has_budget_keys for run in runs):
        return []
    missing = [f"`{run.name}`" for run in runs if run.budget_key is None]
    return [
        f"the tables are by target prune ratio, not by budget: {len(missing)} run(s) have no budget information "
        "(no `budget_target`, `budget_realised`, or `samples_forwarded` and `samples_full_data`): "
        + ", ".join(missing[:10])
    ]


def build_report(
    sweep_dir: str | Path,
    out_dir: str | Path | None = None,
    tolerance: float | None = None,
    margin_pp: float = LOSSLESS_MARGIN_PP,
) -> Path:
    """Write ``report.md`` and the plots for the sweep in ``sweep_dir``; returns the path of ``report.md``.

    Args:
        sweep_dir: the Hydra sweep directory (``multirun/<date>/<time>``) or any folder above the runs; or a
            JSONL file of runs (one ``metrics.json`` object per line, with a ``name``).
        out_dir: where to write; ``<sweep_dir>/report`` by default (``<file's folder>/<file stem>_report`` for
            a JSONL file).
        tolerance: the lossless margin in accuracy units (``0.003``: 0.3 pp); overrides ``margin_pp`` when given.
        margin_pp: the lossless margin in percentage points: a cell is lossless when the lower bound of its
            paired 95% interval against full data is at least ``-margin_pp``.

    Raises:
        ReportError: if ``sweep_dir`` is neither a directory nor a ``.jsonl`` file, holds no usable run, or the
            margin is negative.
    """
    if tolerance is not None:
        if not tolerance >= 0:
            raise ReportError(f"tolerance must be >= 0 (in accuracy units: 0.003 is 0.3 pp), got {tolerance!r}")
        margin_pp = tolerance * 100
    if not margin_pp >= 0:
        raise ReportError(f"margin must be >= 0 (in percentage points: 0.3 is 0.3 pp), got {margin_pp!r}")
    source = Path(sweep_dir).expanduser()
    from_jsonl = source.is_file() and source.suffix == JSONL_SUFFIX
    default_out = source.parent / f"{source.stem}_report" if from_jsonl else source / "report"
    out = Path(out_dir).expanduser() if out_dir is not None else default_out
    found, skipped = load_source(source, out)
    runs, notes = dedupe_runs(found)
    by = grouping_of(runs)
    notes += _grouping_note(runs, by)
    rows = aggregate(runs, by)
    notes += duplicate_seed_notes(rows)
    files = load_run_files(runs, notes)
    warning = walltime_warning(runs)
    captions = dict(PLOT_CAPTIONS)
    plans = plot_plans(rows, runs, files, notes, captions, margin_pp, warning, from_jsonl)
    out.mkdir(parents=True, exist_ok=True)
    inputs = ReportInputs(
        sweep_dir=sweep_label(source),
        num_runs=len(found),
        skipped=skipped,
        notes=notes,
        plots=draw(plans, out),
        captions={PLOT_FILES[key]: caption for key, caption in captions.items()},
        warnings={} if warning is None else {PLOT_FILES["pareto_wall_time"]: warning},
        paired=paired_differences(runs),
        savings=largest_lossless(rows, margin_pp),
        margin_pp=margin_pp,
        verdicts=budget_verdicts(runs, margin_pp, by),
        by=by,
    )
    report = out / "report.md"
    report.write_text(render_markdown(rows, inputs))
    log.info("report of %d runs (%d skipped) written to %s", len(found), len(skipped), report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``adapruner-report <sweep_dir | runs.jsonl> [--out DIR] [--margin PP] [--tolerance ACC]``; returns 0 on
    success, 2 on a bad sweep.

    Args:
        argv: the command line without the program name (``sys.argv[1:]`` when ``None``).
    """
    parser = argparse.ArgumentParser(
        prog="adapruner-report",
        description=f"Tabulate and plot a Hydra sweep of adapruner-train runs (one {METRICS_FILE} per run), or a "
        f"JSONL file of runs (one {METRICS_FILE} object per line, with a `name`).",
    )
    parser.add_argument(
        "sweep_dir", help="the sweep directory, e.g. multirun/2024-05-01/12-00-00, or a .jsonl file of runs"
    )
    parser.add_argument("--out", default=None, help="output folder (default: <sweep_dir>/report)")
    parser.add_argument(
        "--margin",
        type=float,
        default=LOSSLESS_MARGIN_PP,
        help="lossless margin in pp: a cell is lossless when its paired 95%% CI's lower bound is >= -margin "
        f"(default {LOSSLESS_MARGIN_PP})",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="the same margin in accuracy units (0.003 = 0.3 pp); overrides --margin (kept for old command lines)",
    )
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.out, args.tolerance, args.margin)
    except ReportError as err:
        print(f"adapruner-report: error: {err}", file=sys.stderr)
        return 2
    print(f"adapruner-report: wrote {report} (plots beside it)")
    return 0
