"""``adapruner-report``'s pictures: the Pareto views sit on the band that matters and pin the outliers at the edge,
the wall-time view warns in its title, the score histogram tells early cuts (frozen scores) from the final cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from matplotlib.collections import PolyCollection

from lightning_adapruner.app.report import (
    FEWER_EPOCHS_METHOD,
    FULL_DATA_METHOD,
    PLOT_FILES,
    Run,
    aggregate,
    find_runs,
    main,
)
from lightning_adapruner.app.report.aggregation import group_runs
from lightning_adapruner.app.report.artefacts import EARLIER, FINAL_CUT, KEPT, load_run_files, score_panels
from lightning_adapruner.app.report.compare import pareto_panels
from lightning_adapruner.app.report.layout import limits, place
from lightning_adapruner.app.report.plots import SCORE_CAPTION_SPLIT, plot_logit_histograms, plot_pareto
from lightning_adapruner.app.report.timing import TITLE_WARNING
from lightning_adapruner.app.summary import METRICS_FILE
from lightning_adapruner.core.export import write_pruned_subset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEEDS = (0, 1, 2)
# (method, budget, epochs, test acc minus full data's per seed in pp, fit time in s)
CELLS = [
    (FEWER_EPOCHS_METHOD, 0.4, 8, (-1.5, -1.3, -1.7), 40.0),
    (FEWER_EPOCHS_METHOD, 0.7, 14, (-0.4, -0.2, -0.3), 70.0),
    ("rs2", 0.4, 20, (-1.0, -1.2, -0.9), 45.0),
    ("rs2", 0.7, 20, (-0.3, -0.1, -0.2), 75.0),
    ("el2n", 0.4, 20, (-17.4, -17.6, -17.5), 46.0),  # far below: pinned, not stretching the axis
    ("adapruner_soft", 1.7, 20, (0.2, 0.1, 0.3), 420.0),  # more samples and time than full data: pinned right
]


def _runs() -> list[Run]:
    runs = []
    for seed in SEEDS:
        acc = 0.9 + 0.01 * seed
        runs.append(Run(f"n{seed}", FULL_DATA_METHOD, 0.0, acc, seed=seed, epochs=20, budget_target=1.0,
                        budget_realised=1.0, fit_time_s=100.0))  # fmt: skip
        for method, budget, epochs, offsets, fit in CELLS:
            runs.append(Run(f"{method}{budget}-{seed}", method, 0.0, acc + offsets[seed] / 100, seed=seed,
                            epochs=epochs, reference_epochs=20, budget_target=budget, budget_realised=budget,
                            fit_time_s=fit))  # fmt: skip
    return runs


def test_samples_pareto_sits_on_the_fewer_epochs_band_and_pins_the_outliers(tmp_path):
    (panel,) = pareto_panels(aggregate(_runs()), "samples_forwarded")
    assert [p.cost for p in panel.reference] == pytest.approx([0.4, 0.7]) and (panel.full.cost, panel.full.diff) == (
        1.0,
        None,
    )
    assert list(panel.lines) == ["adapruner_soft", "el2n", "rs2"]
    fig = plot_pareto([panel], tmp_path / "pareto.png", cost="samples forwarded")
    assert (tmp_path / "pareto.png").read_bytes().startswith(PNG_MAGIC)
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    band_low = panel.reference[0].diff.low  # fewer epochs at 0.4: -1.5 pp, CI about [-2.0, -1.0]
    assert band_low < -1.9 and low < band_low  # the fewer-epochs band is inside...
    assert low > -3.0 and high < 1.0  # ...and -17.5 pp is not: it does not stretch the axis
    assert ax.get_xlim() == pytest.approx((0.35, 1.05))  # a bit under the smallest budget to 1.05
    texts = [t.get_text() for t in ax.texts]
    assert "el2n −17.5 ↓" in texts and "adapruner_soft 1.70x →" in texts
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]  # the shaded fewer-epochs interval
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(band_low) and ys.max() == pytest.approx(panel.reference[1].diff.high)
    labels = ax.get_legend_handles_labels()[1]
    assert "fewer epochs (shorter), 95% CI band" in labels and "el2n (off the axes)" in labels


def test_limits_and_pins_are_pure():
    (panel,) = pareto_panels(aggregate(_runs()), "samples_forwarded")
    box = limits(panel.reference, panel.lines, x_cap=1.0)
    inside, pins = place("el2n", panel.lines["el2n"], box)
    assert inside == [] and [p.text for p in pins] == ["el2n −17.5 ↓"]
    assert box.y_lo < pins[0].y < box.y_lo + 0.1 * (box.y_hi - box.y_lo)  # at the lower edge
    inside, pins = place("rs2", panel.lines["rs2"], box)
    assert len(inside) == 2 and pins == []


def test_wall_time_pareto_caps_at_3x_and_warns_in_its_title(tmp_path):
    (panel,) = pareto_panels(aggregate(_runs()), "fit_time_s")
    assert panel.lines["adapruner_soft"][0].cost == pytest.approx(4.2)
    fig = plot_pareto([panel], tmp_path / "wall.png", cost="fit time", x_cap=3.0, warning=TITLE_WARNING)
    ax = fig.axes[0]
    assert ax.get_xlim()[1] <= 3.05 and "adapruner_soft 4.20x →" in [t.get_text() for t in ax.texts]
    assert fig.get_suptitle() == f"⚠ {TITLE_WARNING}"
    assert "not measured side by side" in TITLE_WARNING and "machine load" in TITLE_WARNING
    quiet = plot_pareto([panel], tmp_path / "quiet.png", cost="fit time", x_cap=3.0)
    assert quiet.get_suptitle() == ""


# ------------------------------------------------------------------------------------ scores: early cuts
N, LAST = 12, 9


def _subset_run(root: Path, last_epoch: torch.Tensor | None) -> Path:
    """A pruning run whose exported subset keeps samples 0-3; ``last_epoch`` added to its tensors file."""
    run_dir = root / "1"
    scores = torch.arange(N, dtype=torch.float32)  # sample i scores i: the pruned 8-11 score above the kept
    json_path = write_pruned_subset(run_dir / "pruned_subset", torch.arange(4), scores, {"num_samples": N})
    if last_epoch is not None:
        tensors = torch.load(json_path.with_suffix(".pt"), weights_only=True)
        torch.save({**tensors, "last_epoch": last_epoch}, json_path.with_suffix(".pt"))
    metrics = {"method": "adapruner", "prune_ratio_target": 0.66, "test_acc": 0.8, "seed": 0,
               "subset_path": str(json_path.relative_to(run_dir))}  # fmt: skip
    (run_dir / METRICS_FILE).write_text(json.dumps(metrics))
    (root / "0").mkdir()
    (root / "0" / METRICS_FILE).write_text(json.dumps({"method": FULL_DATA_METHOD, "test_acc": 0.81, "seed": 0}))
    return root


def test_score_histogram_tells_early_cuts_from_the_final_cut(tmp_path):
    last = torch.tensor([LAST] * 4 + [LAST, LAST, 3, 3, -1, 2, 5, 5])  # kept; final cut 4, 5; earlier 6-11
    root = _subset_run(tmp_path / "sweep", last)
    runs, _ = find_runs(root)
    notes: list[str] = []
    files = load_run_files(runs, notes)
    (panel,) = score_panels(group_runs(runs), files)
    assert panel.groups == {
        KEPT: [0.0, 1.0, 2.0, 3.0],
        FINAL_CUT: [4.0, 5.0],
        EARLIER: [6.0, 7.0, 8.0, 9.0, 10.0, 11.0],
    }
    assert panel.frozen_known and notes == []
    fig = plot_logit_histograms([panel], tmp_path / "scores.png")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["kept (4)", "pruned at the final cut (2)", "pruned earlier (score frozen when cut) (6)"]

    assert main([str(root)]) == 0
    report = (root / "report" / "report.md").read_text()
    assert f"![logit histogram]({PLOT_FILES['logits']})\n*{SCORE_CAPTION_SPLIT}*" in report
    assert (root / "report" / PLOT_FILES["logits"]).read_bytes().startswith(PNG_MAGIC)


def test_score_histogram_without_last_epoch_says_scores_are_frozen(tmp_path):
    root = _subset_run(tmp_path / "old", None)
    assert main([str(root)]) == 0
    report = (root / "report" / "report.md").read_text()
    caption = report.split(f"![logit histogram]({PLOT_FILES['logits']})\n")[1].splitlines()[0]
    assert "kept against pruned" in caption and "cut early are frozen and can sit above kept ones" in caption
    bad = _subset_run(tmp_path / "bad", torch.zeros(N - 1, dtype=torch.long))  # the wrong size: a damaged subset
    assert main([str(bad)]) == 0
    report = (bad / "report" / "report.md").read_text()
    assert "`1`: cannot read subset_path" in report and "last_epoch is not one epoch per sample" in report
    assert f"- `{PLOT_FILES['logits']}` skipped" in report
