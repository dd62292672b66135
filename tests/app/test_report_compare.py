"""``adapruner-report``'s comparisons against full data and its grouping, on hand-made runs (no files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_adapruner.app.report import (
    FULL_DATA_METHOD,
    LOSSLESS_TOLERANCE,
    ReportInputs,
    Run,
    Setting,
    Stat,
    aggregate,
    largest_lossless,
    lossless_savings,
    method_order,
    paired_differences,
    pareto_panels,
    parse_run,
    render_markdown,
)

CLEAN = {"dataset": "d", "model": "m", "epochs": 5}
NOISY = {**CLEAN, "label_noise": 0.2}
SEED_SHIFTS = ((0, -0.02), (1, 0.02))  # a method's accuracy per seed around its mean


def _run(method: str, ratio: float, seed: int | None, acc: float, forwarded: float | None = None, **kw) -> Run:
    name = f"{method}-{ratio}-{seed}-{kw.get('label_noise', 0.0)}-{acc}"
    return Run(name, method, ratio, acc, seed=seed, samples_forwarded=forwarded, **kw)


def _full(seed: int, acc: float, forwarded: float = 1000.0, **kw) -> Run:
    return _run(FULL_DATA_METHOD, 0.0, seed, acc, forwarded, **kw)


# ------------------------------------------------------------------------------------ settings and order
def test_label_noise_splits_the_setting_and_defaults_to_clean(tmp_path):
    runs = [_full(0, 0.90, **CLEAN), _full(0, 0.80, **NOISY)]
    runs += [_run("random", 0.3, 0, 0.88, **CLEAN), _run("random", 0.3, 0, 0.70, **NOISY)]
    rows = aggregate(runs)
    clean, noisy = Setting("d", "m", 5, 0.0), Setting("d", "m", 5, 0.2)
    assert [(r.setting, r.method) for r in rows] == [(clean, "none"), (clean, "random"), (noisy, "none")] + [
        (noisy, "random")
    ]
    assert [r.test_acc.mean for r in rows] == [0.90, 0.88, 0.80, 0.70]  # never averaged across noise levels
    assert str(noisy) == "d / m, 5 epochs, label noise 0.2" and str(clean) == "d / m, 5 epochs"
    diffs = {d.setting: d.diff.mean for d in paired_differences(runs)}
    assert diffs == {clean: pytest.approx(-0.02), noisy: pytest.approx(-0.10)}
    metrics = {"method": "random", "prune_ratio_target": 0.3, "test_acc": 0.9}
    assert parse_run(metrics, "0", tmp_path).label_noise == 0.0  # metrics.json written before the key existed
    assert parse_run({**metrics, "label_noise": 0.4}, "0", tmp_path).setting.label_noise == 0.4
    with pytest.raises(ValueError, match="'label_noise' must be a number"):
        parse_run({**metrics, "label_noise": "0.4"}, "0", Path("."))


def test_methods_are_ordered_full_data_first_then_by_name():
    names = ["random", "el2n", FULL_DATA_METHOD, "adapruner_soft", "adapruner", "forgetting"]
    assert sorted(names, key=method_order) == [FULL_DATA_METHOD, "adapruner", "adapruner_soft"] + [
        "el2n",
        "forgetting",
        "random",
    ]
    runs = [_run(m, 0.3, 0, 0.8) for m in names]
    assert [r.method for r in aggregate(runs)] == sorted(names, key=method_order)


# ------------------------------------------------------------------------------------ paired differences
def test_paired_differences_pair_by_seed():
    runs = [
        _full(0, 0.90),
        _full(1, 0.80),
        _full(1, 0.82),  # a copy of the full-data run of seed 1: the first by name counts (0.80)
        _full(2, 0.85),
        _run("random", 0.3, 0, 0.88),
        _run("random", 0.3, 1, 0.80),
        _run("random", 0.3, 3, 0.99),  # no full-data run of seed 3: left out of the pairing
        _run("random", 0.3, None, 0.10),  # no seed: cannot be paired
        _run("el2n", 0.5, 7, 0.70),  # no seed in common
    ]
    (el2n, random) = paired_differences(runs)
    assert (random.method, random.prune_ratio_target, random.seeds) == ("random", 0.3, (0, 1))
    expected = [0.88 - 0.90, 0.80 - 0.80]
    assert random.diff.mean == pytest.approx(np.mean(expected))
    assert random.diff.std == pytest.approx(np.std(expected, ddof=1)) and random.diff.n == 2
    half = 12.706205 * np.std(expected, ddof=1) * 100 / np.sqrt(2)  # t(1) 0.975
    assert (random.ci.mean, random.ci.low, random.ci.high) == pytest.approx((-1.0, -1.0 - half, -1.0 + half))
    assert (el2n.method, el2n.seeds, el2n.diff) == ("el2n", (), Stat(None, None, 0))


def test_paired_differences_need_full_data_in_the_setting():
    runs = [_run("random", 0.3, 0, 0.88), _full(0, 0.9, dataset="other")]
    assert paired_differences(runs) == []


# ------------------------------------------------------------------------------------ lossless saving
def _sweep(accs: dict[float, float], full_acc: float = 0.90) -> list[Run]:
    """Full data at ``full_acc`` over two seeds, and ``random`` at each ratio, forwarding ``1 - ratio`` of it."""
    runs = [_full(0, full_acc - 0.01), _full(1, full_acc + 0.01)]
    for ratio, acc in accs.items():
        runs += [
            _run("random", ratio, seed, acc + delta, 1000 * (1 - ratio)) for seed, delta in ((0, -0.02), (1, 0.02))
        ]
    return runs


def test_lossless_saving_is_the_largest_saving_within_the_tolerance():
    runs = _sweep({0.1: 0.905, 0.3: 0.8995, 0.5: 0.89})  # 0.5 loses 1 pp
    rows = aggregate([*runs, _run("random", 0.7, 0, 0.95)])  # accurate, but its samples forwarded are unknown
    (saving,) = lossless_savings(rows)
    assert (saving.method, saving.prune_ratio_target) == ("random", 0.3)
    assert saving.saving == pytest.approx(0.3) and saving.test_acc == pytest.approx(0.8995)
    assert saving.full_acc == pytest.approx(0.90)
    (wider,) = lossless_savings(rows, tolerance=0.02)
    assert wider.prune_ratio_target == 0.5 and wider.saving == pytest.approx(0.5)


def test_lossless_saving_tolerance_edge_and_none():
    at_edge = aggregate(_sweep({0.4: 0.90 - LOSSLESS_TOLERANCE}))
    assert lossless_savings(at_edge)[0].prune_ratio_target == 0.4  # exactly full - 0.1 pp counts
    below = aggregate(_sweep({0.4: 0.90 - LOSSLESS_TOLERANCE - 1e-6}))
    (none,) = lossless_savings(below)
    assert (none.method, none.saving, none.prune_ratio_target, none.test_acc) == ("random", None, None, None)
    assert lossless_savings(below, tolerance=0.0011)[0].saving == pytest.approx(0.4)
    assert lossless_savings(aggregate([_run("random", 0.3, 0, 0.9, 500)])) == []  # no full data: nothing to say
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        lossless_savings(at_edge, tolerance=-0.001)


# ------------------------------------------------------------------------------------ Pareto points
def test_pareto_panels_are_relative_to_full_data():
    runs = [
        _full(0, 0.90, 1000, wall_time_s=100.0),
        _full(1, 0.92, 1000, wall_time_s=120.0),
        _run("random", 0.5, 0, 0.85, 500, wall_time_s=66.0),
        _run("random", 0.3, 0, 0.88, 700),  # no wall time: only in the samples view
        _run("adapruner", 0.5, 0, 0.89, 520, wall_time_s=77.0),
        _run("el2n", 0.5, 0, 0.80, dataset="no-full-data"),
    ]
    (samples,) = pareto_panels(aggregate(runs), "samples_forwarded")
    assert samples.full.cost == 1.0 and samples.full.acc == pytest.approx(0.91)
    assert samples.full.acc_std == pytest.approx(np.std([0.90, 0.92], ddof=1))
    assert list(samples.lines) == ["adapruner", "random"]
    assert [(p.cost, p.prune_ratio_target) for p in samples.lines["random"]] == [(0.5, 0.5), (0.7, 0.3)]
    (wall,) = pareto_panels(aggregate(runs), "wall_time_s")
    assert [p.cost for p in wall.lines["random"]] == [pytest.approx(0.6)]
    assert wall.lines["adapruner"][0].cost == pytest.approx(0.7) and wall.lines["adapruner"][0].acc_std == 0.0
    with pytest.raises(ValueError, match="cost must be one of"):
        pareto_panels(aggregate(runs), "test_acc")


# ------------------------------------------------------------------------------------ rendering
def test_render_markdown_shows_the_comparisons_per_setting():
    runs = _sweep({0.3: 0.8995, 0.5: 0.85}) + [_run("el2n", 0.3, 0, 0.5, 700, dataset="other")]
    runs += [_full(2, 0.90), _run("random", 0.3, 2, 0.8995, 700), _run("random", 0.5, 2, 0.85, 500)]
    rows = aggregate(runs)
    inputs = ReportInputs("/s", len(runs), paired=paired_differences(runs), savings=largest_lossless(rows))
    text = render_markdown(rows, inputs)
    # paired, 3 seeds: 0.8795 - 0.89, 0.9195 - 0.91, 0.8995 - 0.90 -> -1.05, +0.95, -0.05 pp
    diffs = [-1.05, 0.95, -0.05]
    half = 4.302653 * np.std(diffs, ddof=1) / np.sqrt(3)
    interval = f"[{-0.05 - half:+.2f}, {-0.05 + half:+.2f}]".replace("-", "−")
    assert f"| `random` | 0.3 | 3 | −0.05 | {interval} | no |" in text  # [−2.53, +2.43]: not shown lossless
    assert "| `random` | none | — | — |" in text
    assert "*Lossless at a budget*: non-inferior at a 0.3 pp margin: the interval's lower bound ≥ −0.3 pp." in text
    other = text.split("## other")[1]
    assert "No full-data (`none`) run in this setting" in other and "### Largest lossless saving" not in other
    tight = [_full(s, 0.90 + 0.01 * s) for s in range(3)] + [
        _run("random", 0.3, s, 0.90 + 0.01 * s + d, 700) for s, d in enumerate((-0.001, 0.0, -0.0015))
    ]
    rows = aggregate(tight)
    text = render_markdown(
        rows, ReportInputs("/s", 6, paired=paired_differences(tight), savings=largest_lossless(rows))
    )
    assert "| `random` | 30.0% | 0.3 | 0.9092 (−0.08 pp [−0.27, +0.11]) |" in text  # lower bound ≥ −0.3 pp
