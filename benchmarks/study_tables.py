"""The study's tables for README.md and BENCHMARKS.md, computed from the runs' ``metrics.json`` files.

``python benchmarks/study.py`` calls :func:`write_docs` at its end; on its own::

    python benchmarks/study_tables.py                       # from benchmarks/results/study into both docs
    python benchmarks/study_tables.py --out <dir> --print   # print the tables instead of writing them

Each doc holds the generated text between ``<!-- <name>:start -->`` and ``<!-- <name>:end -->`` and is rewritten
there only. Every number comes from :mod:`lightning_adapruner.app.report` (paired differences with full data seed
by seed, the largest lossless saving, the realised prune ratio) and the goal of the study is checked here, by
the same rule every time: at one prune ratio the default ``adapruner`` is compared with every method that
forwards the same number of samples (within 1%; ``adapruner_soft`` forwards every sample and retrains, so it is
not among them), on clean labels.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

from lightning_adapruner.app.report import (
    FULL_DATA_METHOD,
    PairedDiff,
    TableRow,
    aggregate,
    find_runs,
    format_ratio,
    lossless_savings,
    method_order,
    paired_differences,
)
from lightning_adapruner.app.report.runs import Run, Setting

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = "adapruner"
TOLERANCE_PP = 0.1  # the goal's "lossless": at most 0.1 pp below full data
SAVING_GOAL = 0.45
SAME_SETTINGS = ("adapruner_paper",)  # the default's own settings under another name: not a rival
EQUAL_FORWARDED = 0.01  # relative difference in samples forwarded that still counts as "equal"


def _pp(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "-"
    text = f"{value * 100:+.2f}"
    return text if std is None else f"{text} ± {std * 100:.2f}"


def _main_settings(runs: Sequence[Run]) -> list[Setting]:
    """The settings with pruned runs (the convergence check's longer full-data runs are not one)."""
    pruned = {r.setting for r in runs if r.method != FULL_DATA_METHOD}
    return sorted(pruned, key=lambda s: (s.label_noise, s.dataset, s.model, s.epochs or 0))


def convergence_line(runs: Sequence[Run]) -> str:
    """Full data at the study's epochs against full data at twice them, paired by seed (clean labels)."""
    full = [r for r in runs if r.method == FULL_DATA_METHOD and not r.label_noise]
    epochs = sorted({r.epochs for r in full if r.epochs})
    if len(epochs) < 2:
        return "Convergence check: not run (no full-data runs at two lengths)."
    short, long = epochs[0], epochs[-1]
    by = {e: {r.seed: r.test_acc for r in full if r.epochs == e} for e in (short, long)}
    seeds = sorted(set(by[short]) & set(by[long]))
    diffs = [by[long][s] - by[short][s] for s in seeds]
    mean_short = statistics.fmean(by[short][s] for s in seeds)
    mean_long = statistics.fmean(by[long][s] for s in seeds)
    verdict = "within" if abs(statistics.fmean(diffs)) <= 0.002 else "NOT within"
    return (
        f"Convergence check (clean labels, full data, seeds {', '.join(map(str, seeds))}): {short} epochs "
        f"{mean_short * 100:.2f}%, {long} epochs {mean_long * 100:.2f}%, paired difference "
        f"{_pp(statistics.fmean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else None)} pp: {verdict} "
        "0.2 pp, so the recipe is converged at its length."
        if verdict == "within"
        else f"{short} epochs is {verdict} 0.2 pp of {long} epochs: the recipe is not converged."
    )


def accuracy_table(setting: Setting, rows: Sequence[TableRow], diffs: Sequence[PairedDiff]) -> list[str]:
    """Methods x prune ratios: test accuracy minus full data's, paired by seed (pp, mean ± std); the best
    method at each ratio among those forwarding as many samples as the default is in bold."""
    here = [r for r in rows if r.setting == setting]
    full = next(r for r in here if r.method == FULL_DATA_METHOD)
    ratios = sorted({r.prune_ratio_target for r in here if r.method != FULL_DATA_METHOD})
    methods = sorted({r.method for r in here if r.method != FULL_DATA_METHOD}, key=method_order)
    diff = {(d.method, d.prune_ratio_target): d for d in diffs if d.setting == setting}
    best = {p: _peers(here, p) for p in ratios}
    best = {p: max(peers, key=lambda r: r.test_acc.mean).method if peers else None for p, peers in best.items()}
    savings = {s.method: s for s in lossless_savings(here, TOLERANCE_PP / 100) if s.setting == setting}
    head = " | ".join(f"p = {format_ratio(p)}" for p in ratios)
    lines = [
        f"**{setting}** — full data {full.test_acc.mean * 100:.2f} ± {full.test_acc.std * 100:.2f}% test accuracy "
        f"({full.n} seeds). Cells: test accuracy minus full data's, pp, paired by seed, mean ± std over seeds; "
        "bold: the best at that ratio among the methods forwarding as many samples as `adapruner`.",
        "",
        f"| method | {head} | largest lossless saving |",
        "|---" * (len(ratios) + 2) + "|",
    ]
    for method in methods:
        cells = []
        for p in ratios:
            d = diff.get((method, p))
            cell = "-" if d is None else _pp(d.diff.mean, d.diff.std)
            cells.append(f"**{cell}**" if best[p] == method else cell)
        s = savings.get(method)
        saving = "none"
        ratios_fwd = [r.forwarded_vs_full for r in here if r.method == method and r.forwarded_vs_full is not None]
        if ratios_fwd and min(ratios_fwd) >= 1.0:
            saving = f"none (forwards {min(ratios_fwd):.2f}-{max(ratios_fwd):.2f}x full data's samples)"
        if s is not None and s.saving is not None:
            saving = f"{s.saving:.1%} (p = {format_ratio(s.prune_ratio_target)})"
        lines.append(f"| `{method}` | " + " | ".join(cells) + f" | {saving} |")
    return lines


def _peers(rows: Sequence[TableRow], ratio: float) -> list[TableRow]:
    """The rows at ``ratio`` forwarding as many samples as the default (within :data:`EQUAL_FORWARDED`)."""
    at = [r for r in rows if r.prune_ratio_target == ratio and r.method != FULL_DATA_METHOD]
    ours = next((r for r in at if r.method == DEFAULT), None)
    if ours is None or ours.samples_forwarded.mean is None:
        return at
    return [
        r
        for r in at
        if r.samples_forwarded.mean is not None
        and abs(r.samples_forwarded.mean / ours.samples_forwarded.mean - 1) <= EQUAL_FORWARDED
    ]


def budget_table(setting: Setting, rows: Sequence[TableRow]) -> list[str]:
    """Per method and ratio the realised prune ratio, the samples forwarded and the wall time against full data's."""
    here = [r for r in rows if r.setting == setting]
    full = next(r for r in here if r.method == FULL_DATA_METHOD)
    ratios = sorted({r.prune_ratio_target for r in here if r.method != FULL_DATA_METHOD})
    cell = {(r.method, r.prune_ratio_target): r for r in here}
    head = " | ".join(f"p = {format_ratio(p)}" for p in ratios)
    lines = [
        f"**{setting}** — realised prune ratio / samples forwarded vs full data / wall time vs full data "
        f"(full data: {full.samples_forwarded.mean:,.0f} samples, {full.wall_time_s.mean:.0f} s).",
        "",
        f"| method | {head} |",
        "|---" * (len(ratios) + 1) + "|",
    ]
    for method in sorted({r.method for r in here if r.method != FULL_DATA_METHOD}, key=method_order):
        parts = []
        for p in ratios:
            r = cell.get((method, p))
            if r is None:
                parts.append("-")
                continue
            wall = r.wall_time_s.mean / full.wall_time_s.mean if r.wall_time_s.mean and full.wall_time_s.mean else None
            parts.append(
                f"{r.prune_ratio_realised.mean:.3f} / {r.forwarded_vs_full:.1%} / "
                + ("-" if wall is None else f"{wall:.2f}x")
            )
        lines.append(f"| `{method}` | " + " | ".join(parts) + " |")
    return lines


def goal_lines(setting: Setting, rows: Sequence[TableRow], diffs: Sequence[PairedDiff]) -> list[str]:
    """The study's goal (issue 10, item 4) checked on ``setting``: one line per part, met or not, with numbers."""
    here = [r for r in rows if r.setting == setting]
    full = next(r for r in here if r.method == FULL_DATA_METHOD)
    diff = {(d.method, d.prune_ratio_target): d.diff.mean for d in diffs if d.setting == setting}
    lines = []
    for p in sorted({r.prune_ratio_target for r in here if r.method == DEFAULT}):
        peers = _peers(here, p)
        ours = next(r for r in peers if r.method == DEFAULT)
        rivals = [r for r in peers if r.method not in (DEFAULT, *SAME_SETTINGS)]
        top = max(rivals, key=lambda r: r.test_acc.mean, default=None)
        beats = top is None or ours.test_acc.mean >= top.test_acc.mean
        gap = diff.get((DEFAULT, p))
        lossless = gap is not None and gap >= -TOLERANCE_PP / 100 - 1e-12
        need_lossless = p <= 0.5
        met = beats and (lossless or not need_lossless)
        rival = "no other method" if top is None else f"best other `{top.method}` {top.test_acc.mean * 100:.2f}%"
        lines.append(
            f"- p = {format_ratio(p)}: `{DEFAULT}` {ours.test_acc.mean * 100:.2f}% ({_pp(gap)} pp vs full data), "
            f"{rival} — {'met' if met else 'NOT met'}"
            + ("" if beats else f" (`{top.method}` is higher)")
            + ("" if lossless or not need_lossless else f" (more than {TOLERANCE_PP} pp below full data)")
            + "."
        )
    saving = next((s for s in lossless_savings(here, TOLERANCE_PP / 100) if s.method == DEFAULT), None)
    got = None if saving is None else saving.saving
    lines.append(
        f"- largest lossless saving of `{DEFAULT}`: "
        + ("none (no ratio within 0.1 pp of full data)" if got is None else f"{got:.1%}")
        + f" against the goal of {SAVING_GOAL:.0%} — {'met' if got is not None and got >= SAVING_GOAL else 'NOT met'}."
    )
    best_saving = max(
        (s for s in lossless_savings(here, TOLERANCE_PP / 100) if s.saving is not None),
        key=lambda s: s.saving,
        default=None,
    )
    if best_saving is not None:
        lines.append(
            f"- the largest lossless saving of any method: `{best_saving.method}`, {best_saving.saving:.1%} at "
            f"p = {format_ratio(best_saving.prune_ratio_target)} ({best_saving.test_acc * 100:.2f}% against "
            f"{full.test_acc.mean * 100:.2f}%)."
        )
    return lines


def tables(out: Path) -> dict[str, str]:
    """The generated blocks: ``"results"`` for the README, ``"study"`` for BENCHMARKS.md."""
    runs, _ = find_runs(out, exclude=out / "report")
    if not runs:
        raise SystemExit(f"no metrics.json below {out}: run python benchmarks/study.py first")
    rows, diffs = aggregate(runs), paired_differences(runs)
    settings = _main_settings(runs)
    clean = [s for s in settings if not s.label_noise]
    readme: list[str] = [convergence_line(runs), ""]
    bench: list[str] = [convergence_line(runs), ""]
    for setting in settings:
        table = accuracy_table(setting, rows, diffs)
        readme += [*table, ""]
        bench += [*table, "", *budget_table(setting, rows), ""]
    for setting in clean:
        goal = [f"The goal on {setting} (issue 10): at equal samples forwarded `{DEFAULT}` at least every other "
                "method at every ratio and within 0.1 pp of full data at p ≤ 0.5, and a lossless saving of 45%:",
                "", *goal_lines(setting, rows, diffs), ""]  # fmt: skip
        readme += goal
        bench += goal
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    source = f"Generated by `python benchmarks/study_tables.py` from `{shown}`."
    return {"results": "\n".join([source, "", *readme]).rstrip() + "\n",
            "study": "\n".join([source, "", *bench]).rstrip() + "\n"}  # fmt: skip


def fill(doc: Path, name: str, text: str) -> None:
    """Replace what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``doc`` with ``text``."""
    content = doc.read_text()
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(content):
        raise SystemExit(f"{doc} has no <!-- {name}:start --> ... <!-- {name}:end --> block to fill")
    doc.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), content))


def write_docs(out: Path) -> None:
    """Fill README.md's results block and BENCHMARKS.md's study block from the study in ``out``."""
    blocks = tables(out)
    fill(ROOT / "README.md", "results", blocks["results"])
    fill(ROOT / "BENCHMARKS.md", "study", blocks["study"])


def seed_spread(out: Path) -> str:
    """How far two seeds of one method-cell (setting, method, ratio) lie apart in validation accuracy: the noise
    the ablation's ranking is read against (BENCHMARKS.md)."""
    cells: dict[tuple[str, str, float], dict[int, float]] = {}
    for path in sorted(out.rglob("metrics.json")):
        if "report" in path.relative_to(out).parts or "retrain" in path.parts:
            continue
        m = json.loads(path.read_text())
        if m.get("val_acc") is not None and m.get("seed") is not None:
            key = (path.parent.parent.name, m["method"], m["prune_ratio_target"])
            cells.setdefault(key, {})[m["seed"]] = m["val_acc"]
    gaps = sorted(abs(a - b) for v in cells.values() if len(v) == 2 for a, b in [tuple(v.values())])
    if not gaps:
        return "no method-cell with exactly two seeds"
    median = (gaps[(len(gaps) - 1) // 2] + gaps[len(gaps) // 2]) / 2
    return (
        f"{len(gaps)} method-cells with two seeds: |seed a - seed b| in validation accuracy, mean "
        f"{100 * sum(gaps) / len(gaps):.2f} pp, median {100 * median:.2f} pp"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "study")
    parser.add_argument("--print", action="store_true", help="print the blocks instead of writing the docs")
    parser.add_argument("--seed-spread", action="store_true", help="print the two-seed spread of --out's runs")
    args = parser.parse_args()
    if args.seed_spread:
        print(seed_spread(args.out.resolve()))
    elif args.print:
        for name, text in tables(args.out.resolve()).items():
            print(f"<!-- {name} -->\n{text}")
    else:
        write_docs(args.out.resolve())


if __name__ == "__main__":
    main()
