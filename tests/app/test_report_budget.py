"""``adapruner-report`` on sweeps with budgets: the fewer-epochs arm, paired 95% intervals, per-budget verdicts,
copies of a full-data run, the sweep's name, JSONL input (a sweep built in tmp_path, numbers worked by hand)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from lightning_adapruner.app.report import (
    BY_BUDGET,
    BY_RATIO,
    FEWER_EPOCHS_METHOD,
    FULL_DATA_METHOD,
    PLOT_FILES,
    PairedCI,
    Run,
    Setting,
    aggregate,
    budget_verdicts,
    dedupe_runs,
    grouping_of,
    is_lossless,
    largest_lossless,
    load_runs_jsonl,
    main,
    paired_ci,
    paired_differences,
    parse_run,
    sweep_label,
    t_quantile_975,
    winner,
)
from lightning_adapruner.app.summary import METRICS_FILE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REF, SEEDS, FULL_SAMPLES = 20, tuple(range(5)), 20_000
T4 = 2.776445  # Student t, 0.975 quantile, 4 degrees of freedom (5 seeds)
# test accuracy minus full data's, pp, for seeds 0..4
OFFSETS = {
    (FEWER_EPOCHS_METHOD, 0.6): [-0.05, 0.10, -0.20, 0.05, -0.10],  # -0.04 [-0.19, +0.11]: lossless
    (FEWER_EPOCHS_METHOD, 0.3): [-1.0, -1.2, -0.8, -1.1, -0.9],  # -1.00 [-1.20, -0.80]: not lossless
    ("rs2", 0.6): [-0.3, 0.1, -0.2, 0.0, -0.1],  # -0.10 [-0.2963, +0.0963]: lossless, just
    ("rs2", 0.3): [-0.5, -0.7, -0.4, -0.6, -0.3],  # beats fewer epochs at 0.3 by +0.50 [+0.41, +0.59]
    ("el2n", 0.6): [-17.3, -17.6, -17.5, -17.4, -17.7],  # the far outlier
}
ADAPRUNER = [0.0, -0.1, 0.1, 0.05, -0.05]  # by prune ratio 0.4, realised budget 0.599..0.603 (mean 0.601)
ADAPRUNER_BUDGETS = [0.599, 0.601, 0.603, 0.602, 0.600]


def _full_acc(seed: int) -> float:
    return 0.90 + 0.004 * seed


def _metrics(method: str, seed: int, offset_pp: float, realised: float, fit: float, **extra) -> dict:
    return {
        "method": method,
        "seed": seed,
        "dataset": "synthetic",
        "model": "mlp",
        "epochs": REF,
        "reference_epochs": REF,
        "prune_ratio_target": 0.0,
        "budget_target": None,
        "budget_realised": realised,
        "test_acc": _full_acc(seed) + offset_pp / 100,
        "samples_forwarded": round(FULL_SAMPLES * realised),
        "samples_full_data": FULL_SAMPLES,
        "fit_time_s": fit,
        "wall_time_s": fit + 5.0,
        **extra,
    }


def budget_sweep_metrics() -> list[dict]:
    """Full data twice per seed (a sweep over two prune ratios trains it once per ratio), fewer epochs at 0.3 and
    0.6 (and one copy), rs2 and el2n by budget, adapruner by prune ratio, adapruner_soft forwarding 1.7x."""
    jobs = []
    for ratio in (0.1, 0.3):
        for seed in SEEDS:  # full data: old-style, without reference_epochs, at 100 s +- 2%
            full = _metrics(FULL_DATA_METHOD, seed, 0.0, 1.0, 100.0 + seed, prune_ratio_target=ratio)
            del full["reference_epochs"]
            jobs.append({**full, "budget_target": 1.0})
    for (method, budget), offsets in OFFSETS.items():
        for seed, offset in zip(SEEDS, offsets):
            fewer = method == FEWER_EPOCHS_METHOD
            extra = {"epochs": round(budget * REF)} if fewer else {"prune_ratio_target": 1 - budget}
            jobs.append(_metrics(method, seed, offset, budget, 100.0 * budget + 5, budget_target=budget, **extra))
    for seed, offset, realised in zip(SEEDS, ADAPRUNER, ADAPRUNER_BUDGETS):
        jobs.append(_metrics("adapruner", seed, offset, realised, 66.0, prune_ratio_target=0.4))
    for seed in SEEDS:
        jobs.append(_metrics("adapruner_soft", seed, 0.1, 1.7, 420.0, prune_ratio_target=0.3))
    copy = next(m for m in jobs if m["method"] == FEWER_EPOCHS_METHOD and m["seed"] == 0 and m["epochs"] == 12)
    jobs.append({**copy, "test_acc": 0.1})  # a copy of the same fewer-epochs run: counted once (the first)
    for i, job in enumerate(jobs):  # one job after the other, 1000 s apart: measured side by side
        job["started_at"], job["finished_at"] = 1000.0 * i, 1000.0 * i + job["wall_time_s"]
    return jobs


def _write(root: Path, jobs: list[dict]) -> Path:
    for i, job in enumerate(jobs):
        (root / str(i) / ".hydra").mkdir(parents=True)
        (root / str(i) / METRICS_FILE).write_text(json.dumps(job))
    return root


def _runs(jobs: list[dict]) -> list[Run]:
    return [parse_run(job, str(i), None) for i, job in enumerate(jobs)]


# ------------------------------------------------------------------------------------ paired statistics
def test_paired_ci_by_hand_for_five_seeds():
    a = {0: 0.912, 1: 0.905, 2: 0.921, 3: 0.899, 4: 0.910, 9: 0.5}  # seed 9 has no partner
    b = {0: 0.910, 1: 0.907, 2: 0.915, 3: 0.900, 4: 0.906}
    diffs = [0.2, -0.2, 0.6, -0.1, 0.4]  # pp
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half = T4 * sd / math.sqrt(5)
    ci = paired_ci(a, b)
    assert ci.n == 5
    assert ci.mean == pytest.approx(0.18)
    assert (ci.low, ci.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert (round(ci.low, 3), round(ci.high, 3)) == (-0.236, 0.596)  # sd 0.3347, t(4) 2.776
    mean_, low, high, n = paired_ci({0: 0.9}, {0: 0.91, 1: 0.8})  # unpacks into its four numbers
    assert (round(mean_, 6), low, high, n) == (-1.0, None, None, 1)
    assert paired_ci({0: 0.9}, {1: 0.9}) == PairedCI(None, None, None, 0)


def test_t_quantile_table_and_beyond():
    assert [t_quantile_975(df) for df in (1, 2, 4, 30)] == [12.706205, 4.302653, 2.776445, 2.042272]
    assert t_quantile_975(40) == pytest.approx(2.021075, abs=2e-5)  # exact values from the t distribution
    assert t_quantile_975(120) == pytest.approx(1.979930, abs=2e-5)
    assert t_quantile_975(31) < t_quantile_975(30)
    with pytest.raises(ValueError, match="df must be >= 1"):
        t_quantile_975(0)


def test_lossless_and_winner_rules():
    assert is_lossless(PairedCI(-0.1, -0.3, 0.1, 5)) and not is_lossless(PairedCI(-0.1, -0.3001, 0.1, 5))
    assert is_lossless(PairedCI(-0.1, -0.45, 0.1, 5), margin_pp=0.5)
    assert is_lossless(PairedCI(1.0, None, None, 1)) is None  # n=1: no interval, no verdict
    assert [winner(PairedCI(0, lo, hi, 3)) for lo, hi in ((0.01, 1), (-1, -0.01), (0.0, 1), (-1, 0.0))] == [1, -1, 0, 0]


# ------------------------------------------------------------------------------------ keys and grouping
def test_draws_of_different_sizes_of_one_dataset_are_different_settings():
    """The study's scarce (6 000 samples) and rich (24 000) recipes share dataset, model and, in the convergence
    check, epochs: mixed, full data read 88.56% for the scarce recipe (86.79% alone) and every interval widened."""
    scarce, rich = (
        {"method": FULL_DATA_METHOD, "test_acc": 0.9, "epochs": 20, "num_train_samples": n} for n in (6000, 24000)
    )
    a, b = parse_run(scarce, "a", None), parse_run(rich, "b", None)
    assert a.setting != b.setting and a.setting.train_samples == 6000
    assert str(a.setting) == "? (6,000 samples) / ?, 20 epochs"
    assert parse_run({"method": FULL_DATA_METHOD, "test_acc": 0.9}, "n", None).setting.train_samples is None


def test_budget_key_and_setting_from_the_new_keys():
    fewer = parse_run(_metrics(FEWER_EPOCHS_METHOD, 0, 0, 0.6, 60.0, epochs=12, budget_target=0.6), "s", None)
    assert fewer.setting == Setting("synthetic", "mlp", REF) and fewer.epochs == 12  # grouped by reference_epochs
    assert fewer.budget_key == 0.6 and fewer.time_s == 60.0
    by_ratio = parse_run(_metrics("el2n", 0, 0, 0.65237, 60.0, prune_ratio_target=0.3), "e", None)
    assert by_ratio.budget_key == 0.652  # budget_realised rounded to 3 decimals
    derived = {"method": "el2n", "prune_ratio_target": 0.3, "test_acc": 0.9, "samples_forwarded": 7_000}
    assert parse_run({**derived, "samples_full_data": 10_000}, "d", None).budget_key == 0.7
    assert parse_run(derived, "d", None).budget_key is None
    assert parse_run({"method": FULL_DATA_METHOD, "test_acc": 0.9}, "n", None).budget_key == 1.0
    assert parse_run({"method": FEWER_EPOCHS_METHOD, "budget_target": 0.5, "test_acc": 0.9}, "s", None).seed is None
    with pytest.raises(ValueError, match="'budget_target' must be a number"):
        parse_run({**derived, "budget_target": "0.5"}, "x", None)


def test_cells_by_budget_and_old_sweeps_by_prune_ratio():
    runs = _runs(budget_sweep_metrics())
    assert grouping_of(runs) == BY_BUDGET
    rows = aggregate(runs)
    assert [(r.method, r.budget, r.n) for r in rows] == [
        (FULL_DATA_METHOD, 1.0, 5),  # ten full-data runs, five seeds
        (FEWER_EPOCHS_METHOD, 0.3, 5),
        (FEWER_EPOCHS_METHOD, 0.6, 5),  # six runs, one a copy
        ("adapruner", 0.601, 5),  # by prune ratio: one cell at the mean realised budget, not one per seed
        ("adapruner_soft", 1.7, 5),
        ("el2n", 0.6, 5),
        ("rs2", 0.3, 5),
        ("rs2", 0.6, 5),
    ]
    assert {r.setting for r in rows} == {Setting("synthetic", "mlp", REF)}
    assert rows[2].epochs.mean == 12 and rows[3].prune_ratio_target == pytest.approx(0.4)
    old = [{k: v for k, v in job.items() if k not in ("budget_target", "budget_realised")} for job in
           budget_sweep_metrics() if job["method"] in (FULL_DATA_METHOD, "rs2")]  # fmt: skip
    old_rows = aggregate(_runs(old))
    assert grouping_of(_runs(old)) == BY_RATIO
    assert [(r.method, r.prune_ratio_target, r.budget) for r in old_rows] == [
        (FULL_DATA_METHOD, 0.0, None),
        ("rs2", 0.4, None),
        ("rs2", 0.7, None),
    ]


def test_copies_of_a_full_data_or_fewer_epochs_run_count_once():
    runs = _runs(budget_sweep_metrics())
    kept, notes = dedupe_runs(runs)
    assert len(runs) - len(kept) == 6  # five full-data copies and one fewer-epochs copy
    assert (
        "synthetic / mlp, 20 epochs: 2 copies of the same full-data run for seed 0 (`0`, `5`) counted once (`0` used)"
        in notes
    )
    fewer = [n for n in notes if "fewer-epochs run (12 epochs) for seed 0" in n]
    assert len(fewer) == 1 and "(`10`, `45`)" in fewer[0]
    other = [parse_run(_metrics(FEWER_EPOCHS_METHOD, 0, 0, 0.4, 3.0, epochs=8), "x", None), *runs]
    assert len(dedupe_runs(other)[0]) == len(kept) + 1  # another epoch count is another run
    (rs2,) = [d for d in paired_differences(runs) if d.method == "rs2" and d.budget == 0.6]
    assert rs2.ci.n == 5  # not ten: the copies are not extra seeds


def test_largest_lossless_uses_the_interval():
    savings = {s.method: s for s in largest_lossless(aggregate(_runs(budget_sweep_metrics())))}
    assert savings[FEWER_EPOCHS_METHOD].saving == pytest.approx(0.4)  # 0.3 is not lossless, 0.6 is
    assert savings["rs2"].saving == pytest.approx(0.4) and savings["rs2"].paired.low == pytest.approx(-0.2963, abs=1e-4)
    assert savings["el2n"].saving is None
    assert savings["adapruner_soft"].saving is None  # lossless, but forwards 1.7x full data's samples
    tight = {s.method: s.saving for s in largest_lossless(aggregate(_runs(budget_sweep_metrics())), margin_pp=0.29)}
    assert tight["rs2"] is None and tight[FEWER_EPOCHS_METHOD] == pytest.approx(0.4)


# ------------------------------------------------------------------------------------ verdicts
def test_verdict_lines_per_budget():
    (lines,) = budget_verdicts(_runs(budget_sweep_metrics())).values()
    assert lines == [
        "- budget 0.30 — fewer epochs (6 of 20): −1.00 pp [−1.20, −0.80] vs full data, not lossless (lower bound "
        "< −0.3 pp); best method `rs2`: −0.50 [−0.70, −0.30]; `rs2` − fewer epochs: +0.50 [+0.41, +0.59]: `rs2` "
        "beats fewer epochs (interval excludes 0)",
        "- budget 0.60 — fewer epochs (12 of 20): −0.04 pp [−0.19, +0.11] vs full data, lossless; best method "
        "`adapruner` (budget 0.601): +0.00 [−0.10, +0.10]; `adapruner` − fewer epochs: +0.04 [−0.18, +0.26]: a tie "
        "(interval includes 0)",
        "  - `rs2`: −0.10 [−0.30, +0.10] vs full data; `rs2` − fewer epochs: −0.06 [−0.19, +0.07]: a tie (interval "
        "includes 0)",
        "  - `el2n`: −17.50 [−17.70, −17.30] vs full data; `el2n` − fewer epochs: −17.46 [−17.70, −17.22]: fewer "
        "epochs beats `el2n` (interval excludes 0)",
        "- `adapruner_soft` at budget 1.70 forwards at least full data's samples: fewer epochs cannot match it.",
    ]


def test_verdicts_without_fewer_epochs_say_how_to_add_them():
    jobs = [j for j in budget_sweep_metrics() if j["method"] != FEWER_EPOCHS_METHOD]
    (lines,) = budget_verdicts(_runs(jobs)).values()
    assert len(lines) == 1 and "No fewer-epochs (`shorter`) runs in this setting" in lines[0]
    assert lines[0].endswith("add them with `pruning=shorter pruning.budget=0.3,0.6`.")
    one = [j for j in budget_sweep_metrics() if j["method"] != FEWER_EPOCHS_METHOD or j["epochs"] == 12]
    (lines,) = budget_verdicts(_runs(one)).values()
    assert (
        "- budget 0.30 (`rs2`): no fewer-epochs run at this budget; add it with `pruning=shorter pruning.budget=0.3`."
        in lines
    )


# ------------------------------------------------------------------------------------ the report end to end
def test_budget_sweep_report_end_to_end(tmp_path, monkeypatch):
    root = _write(tmp_path / "multirun" / "2026-12-03" / "10-00-00", budget_sweep_metrics())
    monkeypatch.chdir(root)
    assert main(["."]) == 0  # the sweep passed as "."
    out = root / "report"
    report = (out / "report.md").read_text()
    assert "Sweep: `multirun/2026-12-03/10-00-00`" in report and "`.`" not in report
    assert "Runs found: 46; skipped: 0" in report and "cells by budget" in report
    assert "| method | budget | epochs | seeds | test acc (mean ± std) |" in report
    assert "| `shorter` | 0.60 | 12 | 5 |" in report and "| `none` | 1 (full data) | 20 | 5 |" in report
    # paired with full data: -0.10 pp, 95% CI by hand, 5 pairs, lossless at 0.3 pp
    diffs = OFFSETS[("rs2", 0.6)]
    half = T4 * statistics.stdev(diffs) / math.sqrt(5)
    low, high = statistics.fmean(diffs) - half, statistics.fmean(diffs) + half
    assert f"| `rs2` | 0.60 | 5 | −0.10 | [{low:.2f}, +{high:.2f}] | yes |".replace("-", "−") in report
    assert "| `rs2` | 0.30 | 5 | −0.50 | [−0.70, −0.30] | no |" in report
    tables = sum(line.startswith("| --- |") for line in report.splitlines())
    assert tables == 3  # the cells, paired with full data, largest lossless saving
    assert report.count("*Lossless at a budget*: non-inferior at a 0.3 pp margin") == tables  # under every table
    assert report.count("*A beats B*: the paired interval of A − B (pairing by seed) excludes 0") == tables
    assert "### Fewer epochs against pruning, per budget" in report
    assert "- budget 0.60 — fewer epochs (12 of 20): −0.04 pp [−0.19, +0.11] vs full data, lossless;" in report
    assert (
        "- synthetic / mlp, 20 epochs: 2 copies of the same full-data run for seed 3 (`3`, `8`) counted once" in report
    )
    assert "Times not measured side by side" not in report  # one job after the other, full data within 10%
    for key in ("accuracy", "pareto_samples", "pareto_wall_time"):
        assert (out / PLOT_FILES[key]).read_bytes().startswith(PNG_MAGIC)
        assert f"]({PLOT_FILES[key]})" in report
    for key in ("keep_share", "logits", "per_class"):  # the runs wrote no metrics.csv and no subset
        assert f"- `{PLOT_FILES[key]}` skipped:" in report and not (out / PLOT_FILES[key]).exists()


def test_sweep_label_never_shows_dots(tmp_path, monkeypatch):
    sweep = tmp_path / "multirun" / "2026-12-03" / "10-00-00"
    (sweep / "0").mkdir(parents=True)
    monkeypatch.chdir(sweep / "0")
    assert sweep_label("..") == "multirun/2026-12-03/10-00-00"
    assert sweep_label(".") == "2026-12-03/10-00-00/0"
    assert sweep_label(str(sweep / "0" / ".." / "results.jsonl")) == "2026-12-03/10-00-00/results.jsonl"


def test_report_warns_when_runs_shared_the_machine(tmp_path):
    jobs = budget_sweep_metrics()
    for job in jobs:  # every job at once
        job["started_at"], job["finished_at"] = 0.0, job["wall_time_s"]
    jobs[0]["fit_time_s"] = 130.0  # full data seed 0 now 30% slower than seed 1...
    root = _write(tmp_path / "sweep", jobs)
    assert main([str(root)]) == 0
    report = (root / "report" / "report.md").read_text()
    assert "> **Warning**: Times not measured side by side: 40 of 40 runs ran at the same time as other runs" in report
    assert "full data's time varies by 29% across seeds in synthetic / mlp, 20 epochs (over 10%)" in report
    assert "Wall-time ratios then include machine load" in report and "`python benchmarks/walltime.py`" in report
    del jobs[3]["started_at"]  # full data, seed 3 (the copy that counts)
    root = _write(tmp_path / "sweep2", jobs)
    assert main([str(root)]) == 0
    report = (root / "report" / "report.md").read_text()
    assert "side by side: 1 of 40 runs lack `started_at`/`finished_at`, so nobody can tell; 39 of 40 runs" in report


# ------------------------------------------------------------------------------------ JSONL input
def test_jsonl_runs_load_and_report(tmp_path, capsys):
    jobs = budget_sweep_metrics()
    path = tmp_path / "results" / "study.jsonl"
    path.parent.mkdir()
    lines = [json.dumps({"name": f"job{i}", **job, "subset_path": "pruned_subset.json"}) for i, job in enumerate(jobs)]
    path.write_text("\n".join([*lines, "", '{"name": "bad", "method": "rs2"}', "not json"]) + "\n")
    skipped: list = []
    runs = load_runs_jsonl(path, skipped)
    assert len(runs) == len(jobs) and runs[7].name == "job7" and runs[7].subset_path is None  # no artefacts
    assert [s.name for s in skipped] == ["bad", "study.jsonl:49"]
    assert "line 48: invalid run" in skipped[0].reason and "'prune_ratio_target'" in skipped[0].reason
    with pytest.raises(ValueError, match="study.jsonl, line 48: invalid run"):
        load_runs_jsonl(path)
    assert budget_verdicts(runs) == budget_verdicts(_runs(jobs))  # the same verdicts for scripts

    assert main([str(path)]) == 0
    report = (tmp_path / "results" / "study_report" / "report.md").read_text()
    assert f"Sweep: `{tmp_path.name}/results/study.jsonl`" in report and "skipped: 2" in report
    assert "- `keep_share_per_epoch.png` skipped: the runs come from a JSONL file: no run directories, so no" in report
    assert "- `logit_histogram.png` skipped: the runs come from a JSONL file" in report
    assert "`rs2` − fewer epochs: +0.50 [+0.41, +0.59]" in report
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main([str(empty)]) == 2
    assert "no usable run in" in capsys.readouterr().err


def test_margin_on_the_command_line(tmp_path, capsys):
    root = _write(tmp_path / "sweep", budget_sweep_metrics())
    row = "| `rs2` | 0.60 | 5 | −0.10 | [−0.30, +0.10] |"  # lower bound -0.2963
    for argv, lossless in ((["--margin", "0.29"], "no"), (["--tolerance", "0.003"], "yes"), ([], "yes")):
        assert main([str(root), *argv]) == 0
        report = (root / "report" / "report.md").read_text()
        assert f"{row} {lossless} |" in report, argv
    assert "non-inferior at a 0.29 pp margin" not in report
    assert main([str(root), "--margin", "0.29"]) == 0
    assert (
        "non-inferior at a 0.29 pp margin: the interval's lower bound ≥ −0.29 pp"
        in (root / "report" / "report.md").read_text()
    )
    assert main([str(root), "--margin", "-1"]) == 2
    assert "margin must be >= 0" in capsys.readouterr().err


def test_public_names_stay_and_grow():
    import lightning_adapruner.app.report as report

    before = {  # the names of the report's API before budgets: none of them goes away
        "FULL_DATA_METHOD", "LOSSLESS_TOLERANCE", "METRICS_FILE", "PLOT_FILES", "LosslessSaving", "PairedDiff",
        "ParetoPanel", "ParetoPoint", "ReportError", "ReportInputs", "Run", "Setting", "Skipped", "Stat", "TableRow",
        "aggregate", "build_report", "duplicate_seed_notes", "find_runs", "format_ratio", "format_stat", "group_runs",
        "lossless_savings", "main", "mean_per_epoch", "mean_std", "method_order", "paired_differences",
        "parse_metrics_csv", "parse_run", "pareto_panels", "per_class_share", "render_markdown",
    }  # fmt: skip
    added = {"FEWER_EPOCHS_METHOD", "LOSSLESS_MARGIN_PP", "PairedCI", "paired_ci", "t_quantile_975",
             "load_runs_jsonl", "budget_verdicts", "dedupe_runs", "largest_lossless", "walltime_warning",
             "sweep_label"}  # fmt: skip
    assert before | added <= set(report.__all__)
    assert all(hasattr(report, name) for name in report.__all__)
