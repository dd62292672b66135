"""``adapruner-report``: pure aggregation/rendering, and the CLI end to end on a sweep built in tmp_path."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

import lightning_adapruner.app.report
from lightning_adapruner import METRIC_NAMES, SUBSET_FILE
from lightning_adapruner.app.report import (
    PLOT_FILES,
    ReportInputs,
    Run,
    Setting,
    Stat,
    aggregate,
    duplicate_seed_notes,
    format_ratio,
    format_stat,
    main,
    mean_per_epoch,
    mean_std,
    parse_metrics_csv,
    parse_run,
    per_class_share,
    render_markdown,
)
from lightning_adapruner.app.report.markdown import TABLE_HEADER
from lightning_adapruner.app.summary import METRICS_FILE
from lightning_adapruner.core.export import write_pruned_subset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N, EPOCHS, CLASSES = 60, 4, 3
METHODS, RATIOS, SEEDS = ("adapruner", "random"), (0.3, 0.5), (0, 1)


def _acc(method: str, ratio: float, seed: int) -> float:
    return 0.9 - 0.2 * ratio - (0.03 if method == "random" else 0.0) + 0.0123 * (seed + 1) * (1 + ratio)


def _metrics(method: str, ratio: float, seed: int, **extra) -> dict:
    forwarded = int(N * EPOCHS * (1 - ratio / 2)) + 7 * seed
    return {
        "method": method,
        "prune_ratio_target": ratio,
        "prune_ratio_realised": ratio + 0.01 * seed,
        "seed": seed,
        "dataset": "synthetic",
        "model": "mlp",
        "epochs": EPOCHS,
        "test_acc": _acc(method, ratio, seed),
        "test_loss": 0.5,
        "val_acc": 0.8,
        "samples_forwarded": forwarded,
        "saved_share": 1 - forwarded / (N * EPOCHS),
        "wall_time_s": 10.0 + 3.1 * seed + 5 * ratio,
        "num_train_samples": N,
        "subset_path": None,
        "metrics_csv": None,
        **extra,
    }


def _write_csv_log(run_dir: Path, ratio: float, seed: int) -> Path:
    """A real CSVLogger ``metrics.csv``: train, ADP and val rows interleaved, each filling only some columns."""
    logger = CSVLogger(run_dir, name="csv", version=0)
    for epoch in range(EPOCHS):
        share = 1 - ratio * epoch / (EPOCHS - 1)
        logger.log_metrics({"train/loss": 1.0 / (epoch + 1), "epoch": epoch}, step=10 * epoch + 4)
        adp = {METRIC_NAMES.samples_forwarded: float(N * (epoch + 1)), "adp/lambda": 1.0}
        adp |= {METRIC_NAMES.keep_share: share + 0.01 * seed, METRIC_NAMES.keep_share_target: share, "epoch": epoch}
        logger.log_metrics(adp, step=10 * epoch + 9)
        logger.log_metrics({"val/acc": 0.5 + 0.1 * epoch, "epoch": epoch}, step=10 * epoch + 9)
    logger.save()
    return Path(logger.experiment.metrics_file_path)


def _write_subset(run_dir: Path, ratio: float, seed: int) -> Path:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, generator=g)
    labels = torch.arange(N) % CLASSES
    kept = torch.sort(torch.topk(logits, int(N * (1 - ratio))).indices).values
    total = torch.bincount(labels)
    meta = {
        "num_samples": N,
        "num_kept": kept.numel(),
        "prune_ratio_target": ratio,
        "prune_ratio_realised": 1 - kept.numel() / N,
        "per_class_kept": torch.bincount(labels[kept], minlength=CLASSES).tolist(),
        "per_class_total": total.tolist(),
    }
    return write_pruned_subset(run_dir / "pruned_subset", kept, logits, meta)


def _write_metrics(run_dir: Path, metrics: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / METRICS_FILE).write_text(json.dumps(metrics))


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Path, list[dict]]:
    """2 methods x 2 ratios x 2 seeds + a full-data run, in Hydra's numbered run dirs (some one level deeper),
    plus two broken run dirs and a metrics.json too deep to be found."""
    root = tmp_path / "multirun" / "2024-05-01" / "12-00-00"
    written = []
    job = 0
    for method in METHODS:
        for ratio in RATIOS:
            for seed in SEEDS:
                run_dir = root / (str(job) if job % 2 else f"seed{seed}/{job}")
                run_dir.mkdir(parents=True)
                extra = {}
                if method == "adapruner":
                    subset = _write_subset(run_dir, ratio, seed)
                    csv_path = _write_csv_log(run_dir, ratio, seed)
                    # run-relative for seed 0, absolute for seed 1: both are allowed
                    extra["subset_path"] = SUBSET_FILE if seed == 0 else str(subset)
                    extra["metrics_csv"] = str(csv_path.relative_to(run_dir)) if seed == 0 else str(csv_path)
                metrics = _metrics(method, ratio, seed, **extra)
                _write_metrics(run_dir, metrics)
                written.append(metrics)
                job += 1
    full = _metrics("none", 0.0, 0, samples_forwarded=N * EPOCHS, prune_ratio_realised=0.0)
    _write_metrics(root / str(job), full)
    written.append(full)
    (root / "crashed" / ".hydra").mkdir(parents=True)
    (root / "garbled").mkdir()
    (root / "garbled" / "metrics.json").write_text('{"method": "adapruner", ')
    _write_metrics(root / "a" / "b" / "c" / "too_deep", _metrics("el2n", 0.3, 0))
    return root, written


def _table_row(report: str, method: str, ratio: str, header: str = TABLE_HEADER) -> list[str]:
    """The cells of the row of ``method`` at ``ratio`` in the tables with ``header`` (the main table by default)."""
    prefix, width = f"| `{method}` | {ratio} |", header.count("|")
    matches = [line for line in report.splitlines() if line.startswith(prefix) and line.count("|") == width]
    assert len(matches) == 1, f"expected one table row {prefix!r} in:\n{report}"
    return [cell.strip() for cell in matches[0].strip("|").split("|")]


def _expected_stat(values: list[float], digits: int) -> str:
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def test_report_end_to_end(sweep, tmp_path, capsys):
    root, written = sweep
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    assert str(out / "report.md") in capsys.readouterr().out
    report = (out / "report.md").read_text()

    assert f"Runs found: {len(written)}; skipped: 2" in report
    assert "Sweep: `multirun/2024-05-01/12-00-00`" in report and str(tmp_path) not in report  # no machine paths
    assert "- `crashed`: no metrics.json" in report
    assert "- `garbled`: unreadable metrics.json (JSONDecodeError" in report
    assert "el2n" not in report  # deeper than 3 levels below the sweep

    full = next(m for m in written if m["method"] == "none")
    for method in METHODS:
        for ratio in RATIOS:
            runs = [m for m in written if m["method"] == method and m["prune_ratio_target"] == ratio]
            cells = _table_row(report, method, format_ratio(ratio))
            forwarded = np.mean([m["samples_forwarded"] for m in runs])
            assert cells[2] == str(len(SEEDS))
            assert cells[3] == _expected_stat([m["test_acc"] for m in runs], 4)
            assert cells[4] == f"{np.mean([m['prune_ratio_realised'] for m in runs]):.4f}"
            assert cells[5] == f"{forwarded:,.0f}"
            assert cells[6] == f"{forwarded / full['samples_forwarded']:.1%}"
            assert cells[7] == _expected_stat([m["wall_time_s"] for m in runs], 1)
    cells = _table_row(report, "none", "0 (full data)")
    assert cells[2:4] == ["1", f"{full['test_acc']:.4f} ± n/a"]
    assert cells[6] == "100.0%"

    for file_name in PLOT_FILES.values():
        png = (out / file_name).read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 1000, file_name
        assert f"]({file_name})" in report
    assert "skipped:" not in report.split("## Plots")[1]


def test_default_out_dir_is_excluded_from_the_next_search(sweep):
    root, written = sweep
    assert main([str(root)]) == 0
    (root / "report" / "metrics.json").write_text("{}")  # would be skipped as invalid if it were searched
    assert main([str(root)]) == 0
    report = (root / "report" / "report.md").read_text()
    assert f"Runs found: {len(written)}; skipped: 2" in report


def test_plots_without_inputs_are_skipped_and_said_so(tmp_path):
    root = tmp_path / "sweep"
    _write_metrics(root / "0", _metrics("random", 0.3, 0))
    _write_metrics(root / "1", _metrics("none", 0.0, 0, metrics_csv="csv/missing.csv"))
    assert main([str(root)]) == 0
    report = (root / "report" / "report.md").read_text()
    assert (root / "report" / PLOT_FILES["accuracy"]).read_bytes().startswith(PNG_MAGIC)
    for key in ("keep_share", "logits", "per_class"):
        assert f"- `{PLOT_FILES[key]}` skipped:" in report
        assert not (root / "report" / PLOT_FILES[key]).exists()
    assert f"metrics_csv {root / '1' / 'csv' / 'missing.csv'} not found" in report
    forwarded = _metrics("random", 0.3, 0)["samples_forwarded"]
    assert _table_row(report, "random", "0.3")[6] == f"{forwarded / _metrics('none', 0.0, 0)['samples_forwarded']:.1%}"
    assert "synthetic (60 samples) / mlp, 4 epochs" in report


def test_several_settings_get_a_section_and_a_panel_each(tmp_path):
    root = tmp_path / "sweep"
    job = 0
    for dataset in ("synthetic", "mnist"):
        for method, ratio in (("none", 0.0), ("adapruner", 0.3), ("random", 0.3)):
            for seed in SEEDS:
                run_dir = root / str(job)
                run_dir.mkdir(parents=True)
                extra = {"dataset": dataset}
                if method == "adapruner":
                    extra["subset_path"] = str(_write_subset(run_dir, ratio, seed))
                    extra["metrics_csv"] = str(_write_csv_log(run_dir, ratio, seed))
                _write_metrics(run_dir, _metrics(method, ratio, seed, **extra))
                job += 1
    assert main([str(root)]) == 0
    report = (root / "report" / "report.md").read_text()
    assert "settings (dataset and samples / model / epochs / label noise): 2" in report
    assert report.index("## mnist (60 samples) / mlp, 4 epochs") < report.index(
        "## synthetic (60 samples) / mlp, 4 epochs"
    )
    assert report.count("| `none` | 0 (full data) | 2 |") == 2
    for file_name in PLOT_FILES.values():
        assert (root / "report" / file_name).read_bytes().startswith(PNG_MAGIC), file_name


def test_empty_or_missing_sweep_dir_fails_with_the_path_and_the_fix(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "0" / ".hydra").mkdir(parents=True)
    assert main([str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "no usable metrics.json" in err and "pass the sweep directory" in err
    assert "0: no metrics.json" in err  # the skipped run dir is named
    assert not (empty / "report").exists()

    missing = tmp_path / "nope"
    assert main([str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err


# --------------------------------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------------------------------


def _run(method: str, ratio: float, seed: int | None, acc: float, **kw) -> Run:
    return Run(name=f"{method}-{ratio}-{seed}", method=method, prune_ratio_target=ratio, test_acc=acc, seed=seed, **kw)


def test_mean_std_is_the_sample_std_of_the_values_present():
    values = [0.81, 0.84, 0.9]
    stat = mean_std([*values, None])
    assert stat.n == 3
    assert stat.mean == pytest.approx(np.mean(values))
    assert stat.std == pytest.approx(np.std(values, ddof=1))
    assert mean_std([0.5]) == Stat(0.5, None, 1)
    assert mean_std([None]) == Stat(None, None, 0)


def test_aggregate_groups_sorts_and_relates_to_the_full_data_run():
    setting = {"dataset": "d", "model": "m", "epochs": 5}
    runs = [
        _run("random", 0.5, 0, 0.70, samples_forwarded=300, **setting),
        _run("adapruner", 0.5, 1, 0.76, samples_forwarded=290, **setting),
        _run("adapruner", 0.3, 0, 0.80, samples_forwarded=400, wall_time_s=2.0, **setting),
        _run("adapruner", 0.5, 0, 0.74, samples_forwarded=310, **setting),
        _run("none", 0.3, 0, 0.85, samples_forwarded=500, **setting),  # a full-data run's ratio is ignored
        _run("none", 0.0, 1, 0.87, samples_forwarded=500, **setting),
        _run("adapruner", 0.3, 0, 0.60, samples_forwarded=100, dataset="d", model="m", epochs=1),
    ]
    rows = aggregate(runs)
    keys = [(r.setting.epochs, r.method, r.prune_ratio_target, r.n) for r in rows]
    assert keys == [(1, "adapruner", 0.3, 1), (5, "none", 0.0, 2), (5, "adapruner", 0.3, 1)] + [
        (5, "adapruner", 0.5, 2),
        (5, "random", 0.5, 1),
    ]
    assert rows[0].forwarded_vs_full is None  # no full-data run with 1 epoch
    cell = rows[3]
    assert cell.seeds == (0, 1)
    assert cell.test_acc.mean == pytest.approx(0.75)
    assert cell.test_acc.std == pytest.approx(np.std([0.74, 0.76], ddof=1))
    assert cell.forwarded_vs_full == pytest.approx(300 / 500)
    assert rows[2].wall_time_s == Stat(2.0, None, 1)
    assert rows[3].wall_time_s == Stat(None, None, 0)


def test_render_markdown_table_and_sections():
    a, b = Setting("cifar10", "resnet18", 10), Setting("mnist", "mlp", 3)
    runs = [
        _run("adapruner", 0.3, 0, 0.91, dataset="cifar10", model="resnet18", epochs=10, wall_time_s=4.0),
        _run("adapruner", 0.3, 0, 0.93, dataset="cifar10", model="resnet18", epochs=10, wall_time_s=6.0),
        _run("el2n", 0.3, 0, 0.97, dataset="mnist", model="mlp", epochs=3),
    ]
    rows = aggregate(runs)
    notes = duplicate_seed_notes(rows)
    assert len(notes) == 1 and "seed(s) [0] appear more than once" in notes[0]
    inputs = ReportInputs("/s", 3, notes=notes, plots={"a.png": None, "b.png": "no inputs"})
    text = render_markdown(rows, inputs)
    assert text.index(f"## {a}") < text.index(f"## {b}")
    assert f"- {a}\n- {b}" in text  # several combinations are listed
    assert "| `adapruner` | 0.3 | 2 | 0.9200 ± 0.0141 | n/a | n/a | n/a | 5.0 ± 1.4 |" in text
    assert "| `el2n` | 0.3 | 1 | 0.9700 ± n/a | n/a | n/a | n/a | n/a |" in text
    assert "![a](a.png)" in text and "- `b.png` skipped: no inputs" in text


def test_format_helpers():
    assert [format_ratio(r) for r in (0.3, 0.125, 0.0, 0.30000000000000004)] == ["0.3", "0.125", "0", "0.3"]
    assert format_stat(Stat(0.5, 0.01234, 2), 3) == "0.500 ± 0.012"
    assert format_stat(Stat(None, None, 0), 3) == "n/a"


def test_parse_run_resolves_paths_and_rejects_bad_files(tmp_path):
    data = _metrics("adapruner", 0.3, 2, subset_path=SUBSET_FILE, metrics_csv="/abs/metrics.csv")
    del data["wall_time_s"], data["dataset"]  # optional keys may be missing
    run = parse_run(data, "3", tmp_path)
    assert run.subset_path == tmp_path / SUBSET_FILE and run.metrics_csv == Path("/abs/metrics.csv")
    assert (run.seed, run.dataset, run.wall_time_s, run.epochs) == (2, "?", None, EPOCHS)
    assert parse_run({"method": "none", "test_acc": 0.9}, "n", tmp_path).prune_ratio_target == 0.0
    for bad, message in [
        ([], "expected a JSON object"),
        ({"test_acc": 0.9}, "'method'"),
        ({"method": "random", "test_acc": 0.9}, "'prune_ratio_target'"),
        ({"method": "random", "prune_ratio_target": 0.3}, "'test_acc'"),
        ({"method": "random", "prune_ratio_target": "0.3", "test_acc": 0.9}, "must be a number"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_run(bad, "x", tmp_path)


def test_parse_metrics_csv_skips_empty_and_nan_cells():
    text = (
        "epoch,step,adp/keep_share,val/acc\n"
        "0,4,,0.5\n"
        "0,9,1.0,nan\n"
        "1,14,NaN,0.6\n"
        "1,19,0.8,\n"
        ",20,0.1,\n"  # no epoch: passed over
        "2,29,0.7,\n"
    )
    series = parse_metrics_csv(text, ["adp/keep_share", "val/acc", "absent"])
    assert series == {"adp/keep_share": {0: 1.0, 1: 0.8, 2: 0.7}, "val/acc": {0: 0.5, 1: 0.6}, "absent": {}}


def test_mean_per_epoch_and_per_class_share():
    assert mean_per_epoch([{0: 1.0, 1: 0.8}, {0: 1.0, 1: 0.6, 2: 0.5}]) == [(0, 1.0), (1, pytest.approx(0.7)), (2, 0.5)]
    shares = per_class_share([3, 0, 1], [4, 0, 2])
    assert shares[0] == 0.75 and math.isnan(shares[1]) and shares[2] == 0.5
    with pytest.raises(ValueError, match="classes"):
        per_class_share([1], [1, 2])


def test_noisy_and_clean_runs_are_reported_apart_with_their_comparisons(tmp_path, capsys):
    """A small sweep on disk, clean and with label noise: each setting gets its table, pairing and saving."""
    root = tmp_path / "sweep"
    job = 0
    for noise in (0.0, 0.2):
        for method, ratio in (("none", 0.0), ("el2n", 0.3), ("random", 0.5)):
            for seed in SEEDS:
                run_dir = root / str(job)
                run_dir.mkdir(parents=True)
                acc = 0.9 - noise - (0.0005 if method == "el2n" else 0.05 * ratio) + 0.01 * seed
                extra = {"label_noise": noise, "test_acc": acc, "samples_forwarded": int(1000 * (1 - ratio))}
                if method == "el2n":  # any method that exports a subset gets a score histogram
                    extra["subset_path"] = str(_write_subset(run_dir, ratio, seed))
                    extra["metrics_csv"] = str(_write_csv_log(run_dir, ratio, seed))
                _write_metrics(run_dir, _metrics(method, ratio, seed, **extra))
                job += 1
    assert main([str(root), "--tolerance", "0.001"]) == 0
    report = (root / "report" / "report.md").read_text()
    clean, noisy = report.split("## synthetic (60 samples) / mlp, 4 epochs, label noise 0.2")
    assert (
        "## synthetic (60 samples) / mlp, 4 epochs\n" in clean
        and "settings (dataset and samples / model / epochs / label noise): 2" in clean
    )
    for section in (clean, noisy.split("Test accuracy and wall time:")[0]):
        assert section.count("| `none` | 0 (full data) | 2 |") == 1
        assert "| `el2n` | 0.3 | 2 | −0.05 | [−0.05, −0.05] | yes |" in section  # paired seed by seed, 95% CI
        assert "| `el2n` | 30.0% | 0.3 |" in section and "| `random` | none | — | — |" in section
    for file_name in PLOT_FILES.values():
        assert (root / "report" / file_name).read_bytes().startswith(PNG_MAGIC), file_name
        assert f"]({file_name})" in report
    assert main([str(root), "--tolerance", "-1"]) == 2
    assert "tolerance must be >= 0" in capsys.readouterr().err


def test_matplotlib_is_imported_only_inside_the_plotting_functions():
    """Loading, aggregating and rendering never need matplotlib: no module of the report imports it at the top."""
    package = Path(lightning_adapruner.app.report.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(name.startswith("matplotlib") for name in names), f"{path.name} imports {names} at the top"
