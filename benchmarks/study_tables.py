"""The study's tables for README.md and BENCHMARKS.md, and its report, computed from the one-line-per-run results.

``python benchmarks/study.py`` calls :func:`write_outputs` at its end; on its own::

    python benchmarks/study_tables.py                                # results/study.jsonl into both docs
    python benchmarks/study_tables.py --part variants                # the variants' selection table
    python benchmarks/study_tables.py --results <file> --print       # print instead of writing

Each doc holds the generated text between ``<!-- <name>:start -->`` and ``<!-- <name>:end -->`` and is rewritten
there only. The statistics are the report's (:mod:`lightning_adapruner.app.report`): the mean paired difference
with its 95% t interval; "lossless" = the interval's lower bound >= -0.3 pp against full data; "A beats B" = the
paired interval of A - B excludes 0.
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from lightning_adapruner.app.report import (
    FEWER_EPOCHS_METHOD,
    FULL_DATA_METHOD,
    LOSSLESS_MARGIN_PP,
    PairedCI,
    acc_by_seed,
    budget_verdicts,
    build_report,
    dedupe_runs,
    load_runs_jsonl,
    method_order,
    paired_ci,
)
from lightning_adapruner.app.report.runs import Run, Setting

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT = "adapruner"
RULE = (
    f"Cells: test accuracy minus the reference's, percentage points, mean of the paired differences over the seeds "
    f"[95% t interval] (n seeds). **Lossless**: the interval's lower bound >= -{LOSSLESS_MARGIN_PP:g} pp against full "
    "data (non-inferior at that margin). **A beats B**: the paired interval of A - B excludes 0; otherwise a tie."
)


def _ci(ci: PairedCI, bold: bool = False) -> str:
    if ci.mean is None:
        return "-"
    text = f"{ci.mean:+.2f} (n=1)" if ci.low is None else f"{ci.mean:+.2f} [{ci.low:+.2f}, {ci.high:+.2f}]"
    return f"**{text}**" if bold else text


def _by_arm(runs: Sequence[Run]) -> dict[tuple[str, float], list[Run]]:
    cells: dict[tuple[str, float], list[Run]] = defaultdict(list)
    for run in runs:
        budget = 1.0 if run.method == FULL_DATA_METHOD else round(float(run.budget_target or 0.0), 4)
        cells[(run.method, budget)].append(run)
    return cells


def _settings(runs: Sequence[Run]) -> list[Setting]:
    return sorted({r.setting for r in runs}, key=lambda s: (s.dataset, s.model, s.epochs or 0, s.label_noise))


def setting_tables(setting: Setting, runs: Sequence[Run]) -> list[str]:
    """Two tables for one setting: every arm against full data, and every method against fewer epochs."""
    here = [r for r in runs if r.setting == setting]
    cells = _by_arm(here)
    full = acc_by_seed(cells.get((FULL_DATA_METHOD, 1.0), []))
    budgets = sorted({b for (m, b) in cells if m != FULL_DATA_METHOD})
    methods = sorted({m for (m, _) in cells if m not in (FULL_DATA_METHOD, FEWER_EPOCHS_METHOD)}, key=method_order)
    if not full or not budgets:
        return []
    shorter = {b: acc_by_seed(cells.get((FEWER_EPOCHS_METHOD, b), [])) for b in budgets}
    full_acc = statistics.fmean(full.values()) * 100
    epochs = setting.epochs
    lines = [
        f"**{setting}**: full data {full_acc:.2f}% test accuracy ({len(full)} seeds).",
        "",
        "Against full data (" + ", ".join(f"budget {b:g} = {round(b * (epochs or 0))} epochs" for b in budgets) + "):",
        "",
        "| arm | " + " | ".join(f"budget {b:g}" for b in budgets) + " | largest lossless saving |",
        "|---" * (len(budgets) + 2) + "|",
    ]
    rows = [(FEWER_EPOCHS_METHOD, "fewer epochs (`shorter`)"), *((m, f"`{m}`") for m in methods)]
    best = {}
    for b in budgets:
        means = {m: paired_ci(acc_by_seed(cells.get((m, b), [])), full).mean for m, _ in rows}
        means = {m: v for m, v in means.items() if v is not None}
        best[b] = max(means, key=means.get) if means else None
    for method, label in rows:
        parts, lossless = [], []
        for b in budgets:
            ci = paired_ci(acc_by_seed(cells.get((method, b), [])), full)
            mark = " ✓" if ci.low is not None and ci.low >= -LOSSLESS_MARGIN_PP else ""
            parts.append(_ci(ci, best[b] == method) + mark if ci.mean is not None else "-")
            if mark:
                lossless.append(b)
        saving = f"{1 - min(lossless):.0%} (budget {min(lossless):g})" if lossless else "none"
        lines.append(f"| {label} | " + " | ".join(parts) + f" | {saving} |")
    lines += [
        "",
        "Against fewer epochs at the same budget (method minus `shorter`, paired by seed; ▲ beats it, ▼ loses):",
        "",
        "| method | " + " | ".join(f"budget {b:g}" for b in budgets) + " |",
        "|---" * (len(budgets) + 1) + "|",
    ]
    for method in methods:
        parts = []
        for b in budgets:
            ci = paired_ci(acc_by_seed(cells.get((method, b), [])), shorter[b])
            mark = "" if ci.low is None or ci.low <= 0 <= ci.high else (" ▲" if ci.low > 0 else " ▼")
            parts.append(_ci(ci) + mark)
        lines.append(f"| `{method}` | " + " | ".join(parts) + " |")
    realised = [abs(r.budget_realised - r.budget_target) for r in here if r.budget_target and r.budget_realised]
    if realised:
        lines += ["", f"Realised budgets: every run within {max(realised):.4f} of its target (samples forwarded over "
                  "full data's at the setting's epochs)."]  # fmt: skip
    return lines


def convergence_line(runs: Sequence[Run]) -> list[str]:
    """Full data at twice a recipe's epochs against its own length, paired by seed (clean labels)."""
    out = []
    full = [r for r in runs if r.method == FULL_DATA_METHOD and not r.label_noise]
    by_recipe: dict[tuple[str, str], dict[int, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in full:
        recipe = run.name.split("_e", 1)[0]
        by_recipe[(recipe, run.model)][run.epochs or 0].append(run)
    for (recipe, _), lengths in sorted(by_recipe.items()):
        if len(lengths) < 2:
            continue
        short, long = min(lengths), max(lengths)
        ci = paired_ci(acc_by_seed(lengths[long]), acc_by_seed(lengths[short]))
        level = ci.low is not None and ci.low >= -LOSSLESS_MARGIN_PP and ci.high <= LOSSLESS_MARGIN_PP
        verdict = "within" if level else "NOT within"
        out.append(
            f"Convergence check, `{recipe}` (clean labels, full data): {long} epochs minus {short} epochs "
            f"{_ci(ci)} pp over {ci.n} seeds: {verdict} ±{LOSSLESS_MARGIN_PP:g} pp, so the recipe is "
            + ("converged at its length." if level else "not converged at its length (read its cells with that).")
        )
    return out


def study_text(results: Path, verdict_lines: bool = True) -> str:
    """The study's tables per setting; ``verdict_lines=False`` leaves out the per-budget sentences (the README's
    shorter copy: the tables hold the same numbers)."""
    runs, notes = dedupe_runs(load_runs_jsonl(results))
    main = [r for r in runs if not (r.method == FULL_DATA_METHOD and r.reference_epochs != r.epochs)]
    settings = [s for s in _settings(main) if any(r.setting == s and r.method != FULL_DATA_METHOD for r in main)]
    lines = [f"Generated by `python benchmarks/study_tables.py` from `{results.relative_to(ROOT)}`.", "", RULE, ""]
    lines += [*convergence_line(runs), ""]
    verdicts = budget_verdicts(main)
    for setting in settings:
        lines += setting_tables(setting, main)
        if verdict_lines and verdicts.get(setting):
            lines += ["", "Per budget:", "", *verdicts[setting]]
        lines.append("")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def variants_text(results: Path) -> str:
    """The selection table: every arm's validation accuracy minus fewer epochs' at the same budget (and minus full
    data's), paired by seed, per setting; the default is chosen on these, never on the test set."""
    runs, _ = dedupe_runs(load_runs_jsonl(results))
    lines = [f"Generated by `python benchmarks/study_tables.py --part variants` from `{results.relative_to(ROOT)}`.",
             "", "Validation accuracy (selection only), pp, mean [95% t interval] over the seeds:", ""]  # fmt: skip
    for setting in _settings(runs):
        here = [r for r in runs if r.setting == setting]
        cells = _by_arm(here)
        full = {r.seed: r.val_acc for r in cells.get((FULL_DATA_METHOD, 1.0), []) if r.val_acc is not None}
        for budget in sorted({b for (m, b) in cells if m not in (FULL_DATA_METHOD,)}):
            shorter = {r.seed: r.val_acc for r in cells.get((FEWER_EPOCHS_METHOD, budget), []) if r.val_acc is not None}
            lines += [f"**{setting}, budget {budget:g}**", "", "| arm | minus full data | minus fewer epochs |",
                      "|---|---|---|"]  # fmt: skip
            arms = sorted({m for (m, b) in cells if b == budget}, key=method_order)
            scored = []
            for arm in arms:
                val = {r.seed: r.val_acc for r in cells[(arm, budget)] if r.val_acc is not None}
                a, b = paired_ci(val, full), paired_ci(val, shorter)
                scored.append((b.mean if b.mean is not None else float("-inf"), arm, a, b))
            for _, arm, a, b in sorted(scored, key=lambda t: -t[0]):
                lines.append(f"| `{arm}` | {_ci(a)} | {_ci(b) if arm != FEWER_EPOCHS_METHOD else '0'} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def batch_text(results: Path) -> str:
    """Batch selection against full data and fewer epochs (the study's tables), and what each arm's fit took in
    wall time beside the compute share it claims (a scored sample counted as a third of training on it)."""
    runs, notes = dedupe_runs(load_runs_jsonl(results))
    lines = [f"Generated by `python benchmarks/study_tables.py --part batch` from `{results.relative_to(ROOT)}`.", "",
             RULE, ""]  # fmt: skip
    for setting in _settings(runs):
        here = [r for r in runs if r.setting == setting]
        lines += [*setting_tables(setting, here), ""]
        cells = _by_arm(here)
        full = statistics.fmean(r.time_s for r in cells.get((FULL_DATA_METHOD, 1.0), []) if r.time_s)
        lines += [
            "Fit wall time, mean over the seeds (runs two at a time on the 2-core machine, one thread each):",
            "",
            "| arm | budget | fit time | against full data | compute share claimed |",
            "|---|---|---|---|---|",
        ]
        for (method, budget), arm_runs in sorted(cells.items(), key=lambda kv: (method_order(kv[0][0]), kv[0][1])):
            seconds = statistics.fmean(r.time_s for r in arm_runs if r.time_s)
            claimed = statistics.fmean(r.budget_realised or 1.0 for r in arm_runs)
            lines.append(f"| `{method}` | {budget:g} | {seconds:.1f} s | {seconds / full:.3f} | {claimed:.3f} |")
        lines.append("")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def fill(doc: Path, name: str, text: str) -> None:
    """Replace the block ``<!-- name:start -->`` ... ``<!-- name:end -->`` of ``doc`` with ``text``."""
    source = doc.read_text()
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(source):
        raise ValueError(f"{doc} has no <!-- {name}:start --> ... <!-- {name}:end --> block")
    doc.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), source))


def write_outputs(results: Path, part: str = "study") -> None:
    """The report of ``results`` beside it, and its tables into README.md and BENCHMARKS.md."""
    report = build_report(results, results.parent / f"{results.stem}_report")
    print(f"report: {report}")
    if part == "variants":
        fill(ROOT / "BENCHMARKS.md", "variants", variants_text(results))
    elif part == "batch":
        fill(ROOT / "BENCHMARKS.md", "batch", batch_text(results))
    else:
        fill(ROOT / "BENCHMARKS.md", "study", study_text(results))
        fill(ROOT / "README.md", "results", study_text(results, verdict_lines=False))
    print("BENCHMARKS.md" + ("" if part in ("variants", "batch") else " and README.md") + ": tables rewritten")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("study", "variants", "batch"), default="study")
    parser.add_argument("--results", type=Path, default=None, help="default: benchmarks/results/<part>.jsonl")
    parser.add_argument("--print", action="store_true", help="print the tables instead of writing the docs")
    args = parser.parse_args()
    results = (args.results or RESULTS / f"{args.part}.jsonl").resolve()
    if args.print:
        text = {"variants": variants_text, "batch": batch_text}.get(args.part, study_text)
        print(text(results))
    else:
        write_outputs(results, args.part)


if __name__ == "__main__":
    main()
