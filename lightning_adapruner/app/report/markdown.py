"""Rendering (pure): the text of ``report.md`` from the aggregated rows and the comparisons against full data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lightning_adapruner.app.report.aggregation import (
    BY_BUDGET,
    BY_RATIO,
    Stat,
    TableRow,
    format_budget,
    format_ratio,
    settings_of,
)
from lightning_adapruner.app.report.compare import LosslessSaving, PairedDiff
from lightning_adapruner.app.report.runs import FEWER_EPOCHS_METHOD, Setting, Skipped
from lightning_adapruner.app.report.stats import LOSSLESS_MARGIN_PP, PairedCI, format_ci, format_pp, is_lossless
from lightning_adapruner.app.summary import FULL_DATA_METHOD

TABLE_HEADER = (  # by target prune ratio (a sweep without budget keys)
    "| method | target prune ratio | seeds | test acc (mean ± std) | realised prune ratio | samples forwarded "
    "| vs full data | wall time s (mean ± std) |"
)
BUDGET_TABLE_HEADER = (  # by budget
    "| method | budget | epochs | seeds | test acc (mean ± std) | budget realised | target prune ratio "
    "| realised prune ratio | samples forwarded | fit time s (mean ± std) | wall time s (mean ± std) |"
)


def definitions(margin_pp: float = LOSSLESS_MARGIN_PP) -> list[str]:
    """The report's three definitions, one line each, printed under every table.

    Example::

        >>> print(definitions()[1].strip())  # lines end in two spaces: a markdown line break
        *Lossless at a budget*: non-inferior at a 0.3 pp margin: the interval's lower bound ≥ −0.3 pp.
    """
    return [
        f"*Paired*: per seed, test accuracy minus that of the full-data (`{FULL_DATA_METHOD}`) run of the same "
        "setting and seed, in pp; the mean over the n seeds paired with its 95% confidence interval (Student t, "
        "n − 1 degrees of freedom; n=1: no interval).  ",
        f"*Lossless at a budget*: non-inferior at a {margin_pp:g} pp margin: the interval's lower bound "
        f"≥ −{margin_pp:g} pp.  ",
        "*A beats B*: the paired interval of A − B (pairing by seed) excludes 0; an interval that includes 0 is a tie.",
    ]


@dataclass
class ReportInputs:
    """Everything :func:`render_markdown` prints besides the table rows.

    Attributes:
        sweep_dir: the sweep reported on, as named in the report (:func:`~.runs.sweep_label`).
        num_runs: how many runs were found.
        skipped: the run directories (or JSONL lines) without a usable run.
        notes: anything else the reader should know (missing files, copies of a run counted once).
        plots: plot file name -> ``None`` if written, else why not.
        captions: plot file name -> one line saying what the plot shows.
        warnings: plot file name -> a warning printed under it (times not measured side by side).
        paired: the paired differences against full data.
        savings: the largest lossless savings (:func:`~.compare.largest_lossless`).
        margin_pp: the lossless margin in percentage points.
        verdicts: per setting, the per-budget lines on fewer epochs against pruning (:mod:`~.verdicts`).
        by: what the cells are keyed by: ``"budget"`` or ``"prune_ratio"``.
    """

    sweep_dir: str
    num_runs: int
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: dict[str, str | None] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)
    paired: list[PairedDiff] = field(default_factory=list)
    savings: list[LosslessSaving] = field(default_factory=list)
    margin_pp: float = LOSSLESS_MARGIN_PP
    verdicts: dict[Setting, list[str]] = field(default_factory=dict)
    by: str = BY_RATIO


def format_stat(stat: Stat, digits: int, scale: float = 1.0, sign: bool = False) -> str:
    """``"mean ± std"`` (times ``scale``, with a ``+`` on positive means if ``sign``); ``"n/a"`` without values.

    Args:
        stat: the statistic.
        digits: decimals.
        scale: factor applied to mean and std (``100`` for percentage points).
        sign: print ``+`` before a positive mean.

    Example::

        >>> [format_stat(stat, 3) for stat in (Stat(0.5, 0.01234, 2), Stat(0.5, None, 1), Stat(None, None, 0))]
        ['0.500 ± 0.012', '0.500 ± n/a', 'n/a']
        >>> format_stat(Stat(0.0042, 0.001, 3), 2, scale=100, sign=True)
        '+0.42 ± 0.10'
    """
    if stat.mean is None:
        return "n/a"
    std = "n/a" if stat.std is None else f"{stat.std * scale:.{digits}f}"
    return f"{stat.mean * scale:{'+' if sign else ''}.{digits}f} ± {std}"


def _ratio_cell(method: str, ratio: float) -> str:
    return "0 (full data)" if method == FULL_DATA_METHOD else format_ratio(ratio)


def _budget_cell(method: str, budget: float | None) -> str:
    if budget is None:
        return "n/a"
    return "1 (full data)" if method == FULL_DATA_METHOD else format_budget(budget)


def _epochs_cell(stat: Stat) -> str:
    if stat.mean is None:
        return "n/a"
    return f"{stat.mean:g}" if stat.std in (None, 0.0) else format_stat(stat, 1)


def render_row(row: TableRow) -> str:
    """One markdown table line of ``row`` (columns as in :data:`TABLE_HEADER`, or :data:`BUDGET_TABLE_HEADER`
    for a row of a sweep tabled by budget)."""
    realised = row.prune_ratio_realised.mean
    samples = row.samples_forwarded.mean
    realised_cell = "n/a" if realised is None else f"{realised:.4f}"
    samples_cell = "n/a" if samples is None else f"{samples:,.0f}"
    if row.budget is not None:
        share = row.share_of_full
        cells = [
            f"`{row.method}`",
            _budget_cell(row.method, row.budget),
            _epochs_cell(row.epochs),
            str(row.n),
            format_stat(row.test_acc, 4),
            "n/a" if share is None else f"{share:.3f}",
            "—" if row.method in (FULL_DATA_METHOD, FEWER_EPOCHS_METHOD) else format_ratio(row.prune_ratio_target),
            realised_cell,
            samples_cell,
            format_stat(row.fit_time_s, 1),
            format_stat(row.wall_time_s, 1),
        ]
    else:
        cells = [
            f"`{row.method}`",
            _ratio_cell(row.method, row.prune_ratio_target),
            str(row.n),
            format_stat(row.test_acc, 4),
            realised_cell,
            samples_cell,
            "n/a" if row.forwarded_vs_full is None else f"{row.forwarded_vs_full:.1%}",
            format_stat(row.wall_time_s, 1),
        ]
    return "| " + " | ".join(cells) + " |"


def _table(header: str, lines: list[str]) -> list[str]:
    return [header, "|" + " --- |" * header.count(" | ") + " --- |", *lines, ""]


def lossless_cell(ci: PairedCI, margin_pp: float) -> str:
    """``yes``/``no`` by the lossless rule; ``n=1, no interval`` with one pair; ``n/a`` with none.

    Example::

        >>> [lossless_cell(PairedCI(*v), 0.3) for v in ((0.0, -0.2, 0.2, 3), (0.0, -0.5, 0.5, 3), (0.1, None, None, 1))]
        ['yes', 'no', 'n=1, no interval']
    """
    verdict = is_lossless(ci, margin_pp)
    if verdict is None:
        return f"n={ci.n}, no interval" if ci.n else "n/a"
    return "yes" if verdict else "no"


def _paired_line(diff: PairedDiff, margin_pp: float) -> str:
    key = format_budget(diff.budget) if diff.budget is not None else format_ratio(diff.prune_ratio_target)
    ci = diff.ci
    if ci.mean is None:
        cells = [f"`{diff.method}`", key, "0", "n/a (no seed in common)", "—", "n/a"]
    else:
        interval = "n=1, no interval" if not ci.has_interval else f"[{format_pp(ci.low)}, {format_pp(ci.high)}]"  # type: ignore[arg-type]
        cells = [f"`{diff.method}`", key, str(ci.n), format_pp(ci.mean), interval, lossless_cell(ci, margin_pp)]
    return "| " + " | ".join(cells) + " |"


def _key_name(by: str) -> str:
    return "budget" if by == BY_BUDGET else "target prune ratio"


def _comparison(setting: Setting, rows: Sequence[TableRow], inputs: ReportInputs) -> list[str]:
    """The paired differences and the lossless savings of ``setting``, or why there are none."""
    if not any(r.setting == setting and r.method == FULL_DATA_METHOD for r in rows):
        return [f"No full-data (`{FULL_DATA_METHOD}`) run in this setting: nothing to pair or compare with.", ""]
    lines = []
    margin = inputs.margin_pp
    paired = [d for d in inputs.paired if d.setting == setting]
    if paired:
        header = (
            f"| method | {_key_name(inputs.by)} | pairs | test acc − full data, pp | 95% CI, pp "
            f"| lossless (lower bound ≥ −{margin:g} pp) |"
        )
        lines += ["### Test accuracy against full data, paired by seed", ""]
        lines += _table(header, [_paired_line(d, margin) for d in paired])
        lines += [*definitions(margin), ""]
    savings = [s for s in inputs.savings if s.setting == setting]
    if savings:
        header = (
            f"| method | largest lossless saving of samples forwarded | at {_key_name(inputs.by)} "
            "| test acc there (− full data, pp [95% CI]) |"
        )
        lines += ["### Largest lossless saving", ""]
        lines += _table(header, [_saving_line(s) for s in savings])
        lines += [*definitions(margin), ""]
    return lines


def _saving_line(saving: LosslessSaving) -> str:
    if saving.saving is None or saving.prune_ratio_target is None or saving.test_acc is None:
        return f"| `{saving.method}` | none | — | — |"
    key = format_budget(saving.budget) if saving.budget is not None else format_ratio(saving.prune_ratio_target)
    if saving.paired is not None:
        delta = format_ci(saving.paired, " pp")
    else:
        delta = f"{format_pp((saving.test_acc - saving.full_acc) * 100)} pp"
    return f"| `{saving.method}` | {saving.saving:.1%} | {key} | {saving.test_acc:.4f} ({delta}) |"


def _verdicts(setting: Setting, inputs: ReportInputs) -> list[str]:
    lines = inputs.verdicts.get(setting)
    if not lines:
        return []
    return ["### Fewer epochs against pruning, per budget", "", *lines, ""]


def legend(by: str) -> str:
    """The legend under the settings: what the columns of the tables hold."""
    cells = (
        "Cells: (setting, method, budget), the budget being the share of full data's samples (at the setting's "
        "epochs) a run forwards, configured (`budget_target`) or realised; runs configured by prune ratio share a "
        "cell per ratio, at their mean realised budget. Fit time: the training itself; wall time: the whole job. "
        if by == BY_BUDGET
        else "Cells: (setting, method, target prune ratio); the runs carry no budget keys. "
    )
    return (
        cells + "Test accuracy and times: mean ± sample standard deviation (ddof=1) over the seeds of a cell; "
        '"± n/a" where a cell has a single seed. Realised prune ratio and samples forwarded: means. '
        f'"vs full data" and "budget realised": mean samples forwarded as a share of the `{FULL_DATA_METHOD}` '
        "runs' (\"n/a\" without them). Largest lossless saving: among a method's lossless cells, the largest "
        '1 − samples forwarded / full data\'s ("none": no cell is). Copies of a full-data or fewer-epochs run '
        "(the same setting and seed) count once. Methods: full data first, then fewer epochs, then by name."
    )


def render_markdown(rows: Sequence[TableRow], inputs: ReportInputs) -> str:
    """The text of ``report.md``: per setting the table, the comparisons and the per-budget verdicts; the
    skipped runs, notes and plots.

    Args:
        rows: the rows of :func:`~lightning_adapruner.app.report.aggregation.aggregate`.
        inputs: the rest.
    """
    settings = settings_of(rows)
    lines = [
        "# AdaPruner sweep report",
        "",
        f"Sweep: `{inputs.sweep_dir}`  ",
        f"Runs found: {inputs.num_runs}; skipped: {len(inputs.skipped)}; "
        f"settings (dataset and samples / model / epochs / label noise): {len(settings)}; "
        f"cells by {_key_name(inputs.by)}",
        "",
    ]
    if len(settings) > 1:
        lines += ["Settings:", *(f"- {setting}" for setting in settings), ""]
    for setting in settings:
        here = [row for row in rows if row.setting == setting]
        header = BUDGET_TABLE_HEADER if any(row.budget is not None for row in here) else TABLE_HEADER
        lines += [f"## {setting}", ""]
        lines += _table(header, [render_row(row) for row in here])
        lines += [*definitions(inputs.margin_pp), ""]
        lines += _comparison(setting, rows, inputs)
        lines += _verdicts(setting, inputs)
    lines += [legend(inputs.by), ""]
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
            if reason is not None:
                lines += [f"- `{file_name}` skipped: {reason}", ""]
                continue
            lines.append(f"![{title}]({file_name})")
            lines += [f"*{inputs.captions[file_name]}*", ""] if file_name in inputs.captions else [""]
            if file_name in inputs.warnings:
                lines += [f"> **Warning**: {inputs.warnings[file_name]}", ""]
    return "\n".join(lines).rstrip() + "\n"
