"""The Hydra app end to end: every data and model config runs, sweeps, DDP, soft mode + retrain, packaging."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fixtures_data import write_cifar, write_image_folder, write_mnist_like
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lightning_adapruner import read_pruned_subset
from lightning_adapruner.app.data import DatasetNotFoundError
from lightning_adapruner.app.summary import SUMMARY_KEYS
from lightning_adapruner.app.train import config_dir, train

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
# one batch of train, val and test, as fast_dev_run runs them (fast_dev_run itself exports no subset)
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.num_sanity_val_steps=0",
    *QUIET,
]
SYNTHETIC = ["data=synthetic", "model=mlp", "data.num_samples=300", "data.num_test_samples=60", "data.batch_size=32"]
# FAST trains one epoch, which the pruning callback's warm-up takes; the subset is still exported
pytestmark = pytest.mark.filterwarnings("ignore:max_epochs=1 <= warmup_epochs=1")
SUMMARY_TYPES = {
    "method": str,
    "prune_ratio_target": float,
    "prune_ratio_realised": float,
    "seed": int,
    "dataset": str,
    "model": str,
    "epochs": int,
    "test_acc": float,
    "test_loss": float,
    "val_acc": float,
    "samples_forwarded": int,
    "saved_share": float,
    "reference_epochs": int,
    "budget_target": (float, type(None)),
    "budget_realised": float,
    "wall_time_s": float,
    "fit_time_s": float,
    "started_at": float,
    "finished_at": float,
    "num_train_samples": int,
    "subset_path": (str, type(None)),
    "metrics_csv": (str, type(None)),
}


def compose_train(out: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={out}", *overrides])


def read_metrics(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(SUMMARY_KEYS) <= set(metrics)
    for key, kind in SUMMARY_TYPES.items():
        assert isinstance(metrics[key], kind), (key, metrics[key])
    return metrics


def run_app(*args: str, cwd: Path, timeout: int = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m lightning_adapruner.app.train <args>`` in a fresh process, as a user would start it."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_adapruner.app.train", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


# ------------------------------------------------------------------------------------ every data config
def _data_overrides(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    files = tmp_path / "files"
    if name == "fashion_mnist":
        if not DEBIAN_FASHION_MNIST.is_file():
            pytest.skip("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")
        return [f"data.data_dir={files}", "data.download=false"]  # read from the Debian package
    if name == "mnist":
        write_mnist_like(files / "MNIST" / "raw", n_train=60, n_test=20, gz=True)
        return [f"data.data_dir={files}", "data.download=false", "data.batch_size=8"]
    if name in ("cifar10", "cifar100"):
        write_cifar(monkeypatch, files, hundred=name == "cifar100")
        return [f"data.data_dir={files}", "data.download=false", "data.batch_size=4", "data.num_workers=0"]
    if name == "imagefolder":
        write_image_folder(files / "train", ["cat", "dog", "frog"], per_class=6, size=12)
        write_image_folder(files / "test", ["cat", "dog", "frog"], per_class=2, size=12, seed=1)
        return [f"data.root={files}", "data.image_size=8", "data.batch_size=4", "data.num_workers=0"]
    assert name == "synthetic"
    return SYNTHETIC[1:]  # model=mlp and a small pool


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10", "cifar100", "imagefolder", "synthetic"])
def test_every_data_config_runs(tmp_path, monkeypatch, name):
    cfg = compose_train(tmp_path / "run", f"data={name}", *_data_overrides(name, tmp_path, monkeypatch), *FAST)
    summary = train(cfg)
    metrics = read_metrics(tmp_path / "run")
    assert metrics == json.loads(json.dumps(summary))
    assert (metrics["dataset"], metrics["method"], metrics["prune_ratio_target"]) == (name, "adapruner", 0.2)
    assert 0.0 <= metrics["test_acc"] <= 1.0 and 0.0 <= metrics["val_acc"] <= 1.0
    subset = read_pruned_subset(metrics["subset_path"])
    kept, meta = subset.kept_indices, subset.metadata
    assert meta["num_samples"] == metrics["num_train_samples"] and len(kept) == round(0.8 * meta["num_samples"])


# ------------------------------------------------------------------------------------ every model config
@pytest.mark.parametrize("name", ["small_cnn", "lenet", "mlp", "resnet18", "resnet50", "torchvision"])
def test_every_model_config_runs(tmp_path, monkeypatch, name):
    """On a few 32x32 CIFAR-10 images in the real file format: one batch of train, val and test."""
    cfg = compose_train(
        tmp_path / "run", "data=cifar10", f"model={name}", *_data_overrides("cifar10", tmp_path, monkeypatch), *FAST
    )
    train(cfg)
    metrics = read_metrics(tmp_path / "run")
    assert metrics["model"] == ("resnet18" if name == "torchvision" else name)  # torchvision: the model's name
    assert metrics["dataset"] == "cifar10" and metrics["num_train_samples"] == 36


# ------------------------------------------------------------------------------------ errors
def test_missing_fashion_mnist_is_one_clear_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "system").mkdir()
    cfg = compose_train(
        tmp_path / "run",
        f"data.data_dir={tmp_path / 'data'}",
        f"data.system_dir={tmp_path / 'system'}",
        "data.download=false",
        *FAST,
    )
    with pytest.raises(DatasetNotFoundError) as info:
        train(cfg)
    msg = str(info.value)
    assert "Fashion-MNIST not found" in msg and str(tmp_path / "data" / "FashionMNIST" / "raw") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "download=False" in msg
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["data=imagefolder"], r"`data\.root` is mandatory .* add `data\.root=\.\.\.`"),
        (["data=synthetic"], r"`data\.meta\.in_channels` \(needed by `model\.net\.in_channels`\).*use model=mlp"),
        ([*SYNTHETIC, "data.meta.num_classes=7"], r"data\.meta\.num_classes=7 but PlantedDataModule has num_classes=4"),
        ([*SYNTHETIC, "pruning=none", "pruning.retrain=true"], r"pruning\.retrain=true needs a pruning callback"),
    ],
    ids=["missing-root", "vectors-into-a-cnn", "wrong-num-classes", "retrain-without-pruning"],
)
def test_bad_configs_fail_before_training_with_a_clear_error(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        train(compose_train(tmp_path, *overrides, *FAST))


# ------------------------------------------------------------------------------------ full runs
@pytest.mark.slow
def test_soft_mode_retrains_a_fresh_model_on_the_subset(tmp_path):
    run = tmp_path / "run"
    run_app(
        "pruning=adapruner_soft",
        *SYNTHETIC,
        "trainer.max_epochs=3",
        "pruning.prune_ratio=0.3",
        f"hydra.run.dir={run}",
        *QUIET,
        cwd=tmp_path,
    )
    m = read_metrics(run)
    n, epochs = m["num_train_samples"], 3
    kept = round(0.7 * n)
    assert (m["method"], m["retrain"], m["epochs"], n) == ("adapruner_soft", True, epochs, 270)
    assert m["num_kept"] == kept and m["prune_ratio_realised"] == pytest.approx(1 - kept / n)
    # soft mode forwards everything (N per epoch), then the retrain forwards the kept subset only
    assert m["samples_forwarded"] == n * epochs + kept * epochs
    assert m["saved_share"] == pytest.approx(1 - (n + kept) / n)
    assert Path(m["subset_path"]) == run / "pruned_subset.json"
    assert (run / "retrain" / "csv" / "metrics.csv").is_file() and m["retrain_metrics_csv"]
    assert "adp/keep_share" in Path(m["metrics_csv"]).read_text().splitlines()[0]  # the mask-learning fit
    retrain_header = (run / "retrain" / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "val/acc" in retrain_header and "adp/keep_share" not in retrain_header  # a plain fit
    assert 0.0 <= m["pruning_val_acc"] <= 1.0 and (run / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_multirun_over_prune_ratios(tmp_path):
    sweep = tmp_path / "sweep"
    run_app(
        "-m",
        "pruning.prune_ratio=0.1,0.3",
        *SYNTHETIC,
        "trainer.max_epochs=3",
        f"hydra.sweep.dir={sweep}",
        *QUIET,
        cwd=tmp_path,
    )
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert [r.name for r in runs] == ["adapruner_p0.1_seed0_0", "adapruner_p0.3_seed0_1"]
    for run, ratio in zip(runs, (0.1, 0.3)):
        m = read_metrics(run)
        n = m["num_train_samples"]
        assert (m["prune_ratio_target"], m["seed"], m["epochs"], m["dataset"]) == (ratio, 0, 3, "synthetic")
        assert m["prune_ratio_realised"] == pytest.approx(1 - round((1 - ratio) * n) / n)
        assert m["num_kept"] == round((1 - ratio) * n) and m["saved_share"] > 0  # pruned epochs forwarded less
        header = Path(m["metrics_csv"]).read_text().splitlines()[0].split(",")
        assert {"adp/keep_share", "adp/keep_share_target", "val/acc", "epoch"} <= set(header)
        assert Path(m["subset_path"]).parent == run


@pytest.mark.slow
def test_two_process_cpu_ddp(tmp_path):
    run = tmp_path / "run"
    run_app("trainer=ddp_cpu", *SYNTHETIC, "trainer.max_epochs=3", f"hydra.run.dir={run}", *QUIET, cwd=tmp_path)
    m = read_metrics(run)
    n = m["num_train_samples"]
    assert m["world_size"] == 2 and m["num_kept"] == round(0.8 * n)
    subset = read_pruned_subset(run / "pruned_subset.json")
    kept, meta = subset.kept_indices, subset.metadata
    assert len(kept) == round(0.8 * n) and meta["samples_forwarded"] == m["samples_forwarded"]
    # the fit's curves survive the spawned test run (the test numbers are in metrics.json)
    rows = Path(m["metrics_csv"]).read_text().splitlines()
    assert "adp/keep_share" in rows[0] and len(rows) > 3


@pytest.mark.slow
def test_batch_selection_reports_its_compute_from_spawned_processes(tmp_path):
    """pruning=batch under ddp_spawn: the launching process writes metrics.json, and the compute it reports is the
    fit's (rank 0's logged shares travel back), not the untouched counters of its own callback."""
    run = tmp_path / "run"
    args = ("trainer=ddp_cpu", *SYNTHETIC, "pruning=batch", "pruning.budget=0.6", "trainer.max_epochs=2")
    run_app(*args, f"hydra.run.dir={run}", *QUIET, cwd=tmp_path)
    m = read_metrics(run)
    assert m["world_size"] == 2 and m["method"] == "batch" and m["budget_target"] == 0.6
    # small batches round their kept count up a little (7 samples keep 2, not 1.87): near the budget, not on it
    assert m["compute_share"] == m["budget_realised"] == pytest.approx(0.6, abs=0.03)
    assert (
        m["saved_share"] == pytest.approx(1 - m["compute_share"]) and m["samples_forwarded"] == m["samples_full_data"]
    )
    trained_share = m["samples_trained"] / m["samples_forwarded"]
    assert m["compute_share"] == pytest.approx(1 / 3 + trained_share, abs=1e-3)  # a scored sample: a third of a step


@pytest.mark.slow
def test_ddp_config_relaunches_itself_and_retrains_on_every_rank(tmp_path):
    """trainer=ddp (Lightning re-runs the command per process) on 2 CPU processes, with soft mode + retrain."""
    run = tmp_path / "run"
    cpu = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true", "trainer.sync_batchnorm=false"]
    settings = ["pruning=adapruner_soft", *SYNTHETIC, "trainer.max_epochs=2", f"hydra.run.dir={run}", *QUIET]
    run_app("trainer=ddp", *cpu, *settings, cwd=tmp_path)
    m = read_metrics(run)  # written once, by rank 0
    n, kept = m["num_train_samples"], round(0.8 * m["num_train_samples"])
    assert (m["world_size"], m["num_kept"], m["samples_forwarded"]) == (2, kept, 2 * n + 2 * kept)
    assert (run / "train_ddp_process_1.log").is_file()  # the second process ran the app too
    assert "val/acc" in (run / "retrain" / "csv" / "metrics.csv").read_text().splitlines()[0]


@pytest.mark.slow
def test_full_data_run(tmp_path):
    run = tmp_path / "run"
    run_app("pruning=none", *SYNTHETIC, "trainer.max_epochs=2", f"hydra.run.dir={run}", *QUIET, cwd=tmp_path)
    m = read_metrics(run)
    assert (m["method"], m["prune_ratio_target"], m["prune_ratio_realised"]) == ("none", 0.0, 0.0)
    assert m["samples_forwarded"] == 2 * m["num_train_samples"] and m["saved_share"] == 0.0
    assert m["subset_path"] is None and not (run / "pruned_subset.json").exists()


# ------------------------------------------------------------------------------------ packaging
@pytest.mark.slow
def test_the_wheel_ships_the_configs(tmp_path):
    """A non-editable install runs from any directory: the configs travel inside the wheel."""
    wheels, target, elsewhere, source = (tmp_path / d for d in ("wheels", "site", "elsewhere", "source"))
    elsewhere.mkdir()
    # build from a copy, as from a fresh clone: no stale build/ or egg-info of this checkout can leak in
    shutil.copytree(ROOT, source, ignore=_not_in_a_clone)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], check=True)
    (wheel,) = wheels.glob("lightning_adapruner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    plain = sorted(r.split(">")[0].split("=")[0].split("<")[0] for r in requires if "extra ==" not in r)
    assert plain == ["lightning", "torch", "torchmetrics"]  # the plugin alone; the app and the tests are extras
    assert any("hydra-core" in r and 'extra == "app"' in r for r in requires)
    configs = {str(p.relative_to(ROOT)) for p in (ROOT / "conf").rglob("*.yaml")}
    assert {f"lightning_adapruner/{c}" for c in configs} <= names
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "lightning_adapruner").rglob("*.py")}
    assert modules <= names, f"modules missing from the wheel: {modules - names}"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_adapruner.app.train", "--cfg", "job", "experiment=paper_cifar10_resnet18"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "_target_: lightning_adapruner.app.models.cifar_resnet18" in proc.stdout and "batch_size: 256" in proc.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import lightning_adapruner.app.train as t; print(t.__file__, t.config_dir())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(target) for p in where)  # the installed copy, not this checkout


def _not_in_a_clone(directory: str, names: list[str]) -> set[str]:
    local = {"build", "dist", "outputs", "multirun", "data", "lightning_logs"} if Path(directory) == ROOT else set()
    return {n for n in names if n in local or n.startswith(".") or n.endswith(".egg-info") or n == "__pycache__"}


def test_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'adapruner-train = "lightning_adapruner.app.train:main"' in text


# ------------------------------------------------------------------------------------ examples
@pytest.mark.slow
def test_retrain_subset_example_reuses_a_subset_across_architectures(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "retrain_subset.py"),
            "--data",
            "synthetic",
            "--epochs",
            "3",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "retrain_subset.json").read_text())
    assert result["exporter"] != result["reuser"]
    assert set(result["test_acc"]) == {"full data", "pruned subset", "random subset"}
    subset = read_pruned_subset(tmp_path / "pruned_subset.json")
    kept, meta = subset.kept_indices, subset.metadata
    assert result["num_kept"] == len(kept) == round(0.7 * meta["num_samples"])


def test_sweep_script_is_valid_bash():
    script = ROOT / "examples" / "sweep.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "adapruner-train -m" in text and "adapruner-report" in text and os.access(script, os.X_OK)


def test_fewer_epochs_and_budgets_are_written_as_shares_of_full_data(tmp_path):
    """pruning=shorter trains round(budget * max_epochs) epochs of full data; a method given the same budget
    forwards the same samples; full data is budget 1. Validation every 3 epochs never runs in 2: the final weights
    are validated once more, so val_acc is theirs."""
    common = (*SYNTHETIC, "trainer.max_epochs=4", "trainer.check_val_every_n_epoch=3", *QUIET)
    runs = {}
    for name, extra in {
        "none": ["pruning=none"],
        "shorter": ["pruning=shorter", "pruning.budget=0.5"],
        "rs2": ["pruning=rs2", "pruning.budget=0.5"],
        "rs2_ratio": ["pruning=rs2", "pruning.prune_ratio=0.3"],
    }.items():
        train(compose_train(tmp_path / name, *common, *extra))
        runs[name] = read_metrics(tmp_path / name)
    none, shorter, rs2, ratio = runs["none"], runs["shorter"], runs["rs2"], runs["rs2_ratio"]
    assert (none["epochs"], none["budget_target"], none["budget_realised"]) == (4, 1.0, 1.0)
    assert (shorter["epochs"], shorter["reference_epochs"], shorter["budget_target"]) == (2, 4, 0.5)
    assert shorter["budget_realised"] == 0.5 and shorter["samples_full_data"] == none["samples_forwarded"]
    assert shorter["val_acc"] is not None  # validated after its last epoch, though none was due
    assert (rs2["budget_target"], rs2["budget_realised"]) == (0.5, 0.5) and 0 < rs2["prune_ratio_target"] < 1
    assert rs2["samples_forwarded"] == shorter["samples_forwarded"]  # equal compute, to the sample
    assert ratio["budget_target"] is None and ratio["prune_ratio_target"] == 0.3  # by ratio: its budget follows
    assert 0.5 < ratio["budget_realised"] < 1.0


def test_the_app_says_which_extra_it_needs_when_it_is_missing(tmp_path):
    """Without hydra (the [app] extra), adapruner-train fails with the install command, not a bare ImportError."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "hydra.py").write_text("raise ImportError('blocked for the test', name='hydra')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_adapruner.app.train", "--help"], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "pip install 'lightning-adapruner[app]'" in proc.stderr
    plugin = subprocess.run(
        [sys.executable, "-c", "import lightning_adapruner; print(lightning_adapruner.DataPruning.__name__)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert plugin.stdout.strip() == "DataPruning"  # the plugin itself imports no app dependency


@pytest.mark.slow
@pytest.mark.parametrize(
    "trainer",
    [
        ["trainer=ddp_cpu"],  # spawned ranks: the launcher reads the manifest
        ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
         "trainer.sync_batchnorm=false"],  # every process runs the app: the ranks gather their parts
    ],
    ids=["ddp_spawn", "ddp"],
)  # fmt: skip
def test_two_process_cpu_ddp_with_sharded_state_exports_and_retrains_on_the_whole_subset(tmp_path, trainer):
    run = tmp_path / "run"
    args = (*trainer, *SYNTHETIC, "pruning=el2n", "pruning.callback.sharded=true", "pruning.retrain=true")
    run_app(*args, "trainer.max_epochs=3", f"hydra.run.dir={run}", *QUIET, cwd=tmp_path)
    m = read_metrics(run)
    n = m["num_train_samples"]
    subset = read_pruned_subset(run / "pruned_subset.json")
    assert m["world_size"] == 2 and subset.metadata["shards"] == [f"pruned_subset.rank{r}-of-2.pt" for r in (0, 1)]
    assert m["num_kept"] == len(subset.kept_indices) == round(0.8 * n)
    # the retrain ran on the whole subset (the launcher read the manifest after the spawned fit), not rank 0's part
    kept = m["num_kept"]
    assert m["samples_forwarded"] - subset.metadata["samples_forwarded"] == 3 * (-(-kept // 2) * 2)
