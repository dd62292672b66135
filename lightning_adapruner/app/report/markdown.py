"""Rendering (pure): the text of ``report.md`` from the aggregated rows and the comparisons against full data."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from lightning_adapruner.app.report.aggregation import Stat, TableRow, format_ratio, settings_of
from lightning_adapruner.app.report.compare import LOSSLESS_TOLERANCE, LosslessSaving, PairedDiff
from lightning_adapruner.app.report.runs import Setting, Skipped
from lightning_adapruner.app.summary import FULL_DATA_METHOD

log = logging.getLogger(__name__)

TABLE_HEADER = (
    "| method | target prune ratio | seeds | test acc (mean ± std) | realised prune ratio | samples forwarded "
    "| vs full data | wall time s (mean ± std) |"
)
PAIRED_HEADER = "| method | target prune ratio | seeds paired | test acc − full data, pp (mean ± std) |"
SAVING_HEADER = "| method | largest lossless saving of samples forwarded | at target prune ratio | test acc there |"


@dataclass
class ReportInputs:
    """Everything :func:`render_markdown` prints besides the table rows.

    Attributes:
        sweep_dir: the sweep reported on.
        num_runs: how many runs were found.
        skipped: the run directories without a usable ``metrics.json``.
        notes: anything else the reader should know (missing files, repeated seeds).
        plots: plot file name -> ``None`` if written, else why not.
        captions: plot file name -> one line saying what the plot shows.
        paired: the paired differences against full data.
        savings: the largest lossless savings.
        tolerance: the accuracy loss ``savings`` allowed.
    """

    sweep_dir: str
    num_runs: int
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: dict[str, str | None] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    paired: list[PairedDiff] = field(default_factory=list)
    savings: list[LosslessSaving] = field(default_factory=list)
    tolerance: float = LOSSLESS_TOLERANCE


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


def render_row(row: TableRow) -> str:
    """One markdown table line of ``row`` (columns as in :data:`TABLE_HEADER`)."""
    realised = row.prune_ratio_realised.mean
    samples = row.samples_forwarded.mean
    cells = [
        f"`{row.method}`",
        _ratio_cell(row.method, row.prune_ratio_target),
        str(row.n),
        format_stat(row.test_acc, 4),
        "n/a" if realised is None else f"{realised:.4f}",
        "n/a" if samples is None else f"{samples:,.0f}",
        "n/a" if row.forwarded_vs_full is None else f"{row.forwarded_vs_full:.1%}",
        format_stat(row.wall_time_s, 1),
    ]
    return "| " + " | ".join(cells) + " |"


def _table(header: str, lines: list[str]) -> list[str]:
    return [header, "|" + " --- |" * header.count(" | ") + " --- |", *lines, ""]


def _comparison(setting: Setting, rows: Sequence[TableRow], inputs: ReportInputs) -> list[str]:
    """The paired differences and the lossless savings of ``setting``, or why there are none."""
    if not any(r.setting == setting and r.method == FULL_DATA_METHOD for r in rows):
        return [f"No full-data (`{FULL_DATA_METHOD}`) run in this setting: nothing to pair or compare with.", ""]
    lines = []
    paired = [d for d in inputs.paired if d.setting == setting]
    if paired:
        lines += ["### Paired with full data, seed by seed", ""]
        lines += _table(
            PAIRED_HEADER,
            [
                f"| `{d.method}` | {format_ratio(d.prune_ratio_target)} | {len(d.seeds)} | "
                + (format_stat(d.diff, 2, scale=100, sign=True) if d.seeds else "n/a (no seed in common)")
                + " |"
                for d in paired
            ],
        )
    savings = [s for s in inputs.savings if s.setting == setting]
    if savings:
        lines += [
            "### Largest lossless saving",
            "",
            f"Lossless: mean test accuracy ≥ full data's {savings[0].full_acc:.4f} − {inputs.tolerance * 100:.2f} pp.",
            "",
        ]
        lines += _table(SAVING_HEADER, [_saving_line(s) for s in savings])
    return lines


def _saving_line(saving: LosslessSaving) -> str:
    if saving.saving is None or saving.prune_ratio_target is None or saving.test_acc is None:
        return f"| `{saving.method}` | none | — | — |"
    delta = (saving.test_acc - saving.full_acc) * 100
    return (
        f"| `{saving.method}` | {saving.saving:.1%} | {format_ratio(saving.prune_ratio_target)} | "
        f"{saving.test_acc:.4f} ({delta:+.2f} pp) |"
    )


LEGEND = (
    "Test accuracy and wall time: mean ± sample standard deviation (ddof=1) over the seeds of a cell; "
    '"± n/a" where a cell has a single seed. Realised prune ratio and samples forwarded: means. '
    f'"vs full data": mean samples forwarded as a share of the `{FULL_DATA_METHOD}` (full-data) runs of the same '
    'setting ("n/a" without such a run). Paired: per seed, test accuracy minus that of the full-data run of the '
    "same seed, in percentage points; mean ± std over the seeds both ran. Largest lossless saving: among a "
    "method's target ratios whose mean test accuracy is within the tolerance of full data's, the largest "
    '1 − mean samples forwarded / full data\'s ("none": no ratio is). Methods: full data first, then by name.'
)


def render_markdown(rows: Sequence[TableRow], inputs: ReportInputs) -> str:
    """The text of ``report.md``: per setting the table and the comparisons; the skipped runs, notes and plots.

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
        f"settings (dataset / model / epochs / label noise): {len(settings)}",
        "",
    ]
    if len(settings) > 1:
        lines += ["Settings:", *(f"- {setting}" for setting in settings), ""]
    for setting in settings:
        lines += [f"## {setting}", ""]
        lines += _table(TABLE_HEADER, [render_row(row) for row in rows if row.setting == setting])
        lines += _comparison(setting, rows, inputs)
    lines += [LEGEND, ""]
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
    return "\n".join(lines).rstrip() + "\n"
