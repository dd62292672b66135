"""Every config of every group of conf/ composes and instantiates; the configs follow the house rules."""

from __future__ import annotations

import os
import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from fixtures_data import write_image_folder
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from lightning_adapruner import AdaPruner, AdaptiveDatasetPruning, BatchSelection, DataPruning, PruningMethod
from lightning_adapruner.app.data import IndexedDataModule
from lightning_adapruner.app.models import ImageClassifier
from lightning_adapruner.app.train import (
    config_dir,
    instantiate_callbacks,
    instantiate_group,
    instantiate_loggers,
    sync_data_meta,
)

CONF = config_dir()
GROUPS = ("data", "model", "pruning", "pruning/harness", "trainer", "callbacks", "logger", "experiment")
# Files the compose-and-instantiate tests below leave out, and why.
NOT_INSTANTIATED = {
    "hydra/launcher/slurm.yaml": (
        "the opt-in SLURM launcher: it needs sbatch to launch anything; "
        "test_the_slurm_launcher_asks_slurm_for_what_trainer_multinode_runs renders its job script instead"
    ),
}
# Trainer settings that run on this CPU-only machine; the GPU configs are checked before these are applied.
ON_CPU = ["trainer.accelerator=cpu", "trainer.devices=1", "trainer.precision=32-true", "trainer.sync_batchnorm=false"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_train(tmp_path: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={tmp_path}", *overrides])


# ------------------------------------------------------------------------------------ the tree
def test_the_groups_and_their_options():
    assert (CONF / "train.yaml").is_file() and CONF.name == "conf"
    assert options("data") == ["cifar10", "cifar100", "fashion_mnist", "imagefolder", "mnist", "synthetic"]
    assert options("model") == ["lenet", "mlp", "resnet18", "resnet50", "small_cnn", "torchvision"]
    assert options("pruning") == [
        "adapruner",
        "adapruner_paper",
        "adapruner_soft",
        "batch",
        "el2n",
        "forgetting",
        "infobatch",
        "none",
        "random",
        "random_dynamic",
        "rs2",
        "seta",
        "shorter",
    ]
    assert options("pruning/harness") == ["default"]
    assert options("trainer") == ["cpu", "ddp", "ddp_cpu", "default", "gpu", "multinode"]
    assert {"paper_cifar10_resnet18", "paper_cifar100_resnet18", "fashion_mnist_quick"} <= set(options("experiment"))
    assert {"csv", "none", "tensorboard"} <= set(options("logger"))
    assert {"default", "none"} <= set(options("callbacks"))


def test_every_config_file_is_covered():
    """A new file in a group is composed by the parametrised tests below, or listed with a reason."""
    covered = {f"{group}/{name}.yaml" for group in GROUPS for name in options(group)} | {"train.yaml"}
    files = {str(p.relative_to(CONF)) for p in CONF.rglob("*.yaml")}
    assert files - covered == set(NOT_INSTANTIATED)


def test_every_argument_has_a_comment():
    """The house rule: a comment on every argument (``key: value`` line; ``_target_``/``_partial_`` apart)."""
    argument = re.compile(r"^\s*(?P<key>[\w@./-]+):\s*(?P<value>[^#\s].*)$")
    for path in sorted(CONF.rglob("*.yaml")):
        bare = []
        for line in path.read_text().splitlines():
            match = argument.match(line)
            if match and match["key"] not in ("_target_", "_partial_") and " # " not in line:
                bare.append(line.strip())
        assert not bare, f"{path.relative_to(CONF)}: arguments without a comment: {bare}"


def test_the_default_is_the_main_job(tmp_path):
    cfg = compose_train(tmp_path)
    assert (cfg.data._target_, cfg.model.net._target_) == (
        "lightning_adapruner.app.data.FashionMNISTDataModule",
        "lightning_adapruner.app.models.SmallCNN",
    )
    pruning = cfg.pruning
    assert (pruning.name, pruning.prune_ratio, pruning.callback.method.mode) == ("adapruner", 0.2, "sampler")
    callback = instantiate(cfg.pruning.callback)
    assert (callback.budget, callback.prune_ratio, callback.method.selection) == (None, 0.2, "dynamic")
    with_budget = instantiate(compose_train(tmp_path, "pruning.budget=0.6").pruning.callback)
    assert (with_budget.budget, with_budget.target.prune_ratio) == (0.6, None)  # a budget replaces the ratio
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.seed, cfg.test_after_fit) == ("cpu", 1, 0, True)
    assert list(cfg.logger) == ["csv"] and cfg.data.seed == cfg.pruning.callback.seed == 0
    assert cfg.pruning.callback.export_dir == str(tmp_path)


# ------------------------------------------------------------------------------------ groups
@pytest.mark.parametrize("name", options("data"))
def test_data_configs_instantiate(tmp_path, name):
    overrides = [f"data={name}"]
    if name == "imagefolder":
        write_image_folder(tmp_path / "images", ["a", "b", "c"], per_class=2)
        overrides.append(f"data.root={tmp_path / 'images'}")
    cfg = compose_train(tmp_path, *overrides)
    assert cfg.data.meta.name == name and "label_noise" in cfg.data or name == "synthetic"
    assert OmegaConf.select(cfg, "data.seed") == cfg.seed
    dm = instantiate_group(cfg, "data")
    assert isinstance(dm, IndexedDataModule) and type(dm).__name__ == cfg.data._target_.rsplit(".", 1)[1]
    sync_data_meta(cfg, dm)  # the facts in data.meta agree with the datamodule (and fill the ??? ones)
    assert cfg.data.meta.num_classes == dm.num_classes
    if len(dm.input_shape) == 3:
        assert cfg.data.meta.in_channels == dm.input_shape[0]
    if name not in ("synthetic", "imagefolder"):
        assert cfg.data.data_dir == "data"  # relative to the launch directory (hydra.job.chdir=false)


@pytest.mark.parametrize("name", options("model"))
def test_model_configs_instantiate(tmp_path, name):
    cfg = compose_train(tmp_path, f"model={name}")
    model = instantiate_group(cfg, "model")
    assert isinstance(model, ImageClassifier) and model.hparams.num_classes == 10
    assert cfg.model.optimizer._partial_ and cfg.model.scheduler in ("onecycle", "cosine", "none")
    optimizer = model.optimizer_factory(model.parameters())
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 1, 28, 28))  # Fashion-MNIST inputs (the default data)
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("name", options("pruning"))
def test_pruning_configs_instantiate(tmp_path, name):
    """Every pruning config has the keys the app and the sweep report read; its callback instantiates."""
    cfg = compose_train(tmp_path, f"pruning={name}")
    assert {"name", "prune_ratio", "budget", "retrain", "callback"} <= set(cfg.pruning) and cfg.pruning.name == name
    ratio, budget = cfg.pruning.prune_ratio, cfg.pruning.budget
    if name == "shorter":
        assert ratio is None and 0.0 < budget <= 1.0 and cfg.pruning.shorten_epochs
    elif name == "batch":  # batch selection: a compute budget, 1:1 onto BatchSelection
        selection = instantiate(cfg.pruning.callback)
        assert ratio is None and isinstance(selection, BatchSelection) and selection.rule == "loss"
        assert selection.keep == pytest.approx(budget - 1 / 3) and cfg.pruning.retrain is False
        return
    else:
        assert 0.0 <= ratio < 1.0 and budget is None
    callback = None if cfg.pruning.callback is None else instantiate(cfg.pruning.callback)
    assert (callback is None) == (name in ("none", "shorter"))
    if callback is not None:  # the shared harness, 1:1 onto DataPruning, with the method 1:1 onto its class
        assert isinstance(callback, DataPruning) and isinstance(callback.method, PruningMethod)
        assert callback.prune_ratio == ratio and callback.budget is None and callback.export_dir == str(tmp_path)
        assert cfg.pruning.callback.seed == cfg.seed
        assert callback.method.name == name or name.startswith("adapruner")
    expected = {
        "adapruner": ("sampler", False),
        "adapruner_soft": ("soft", True),
        "adapruner_paper": ("sampler", False),
    }
    if name in expected:
        assert isinstance(callback.method, AdaPruner)
        assert (callback.method.mode, cfg.pruning.retrain) == expected[name]


@pytest.mark.parametrize("name", options("pruning/harness"))
def test_harness_configs_compose_into_every_pruning_config(tmp_path, name):
    for pruning in (p for p in options("pruning") if p not in ("none", "shorter", "batch")):
        cfg = compose_train(tmp_path, f"pruning={pruning}", f"pruning/harness@pruning.callback={name}")
        assert cfg.pruning.callback._target_ == "lightning_adapruner.DataPruning" and "method" in cfg.pruning.callback


@pytest.mark.parametrize("name", options("trainer"))
def test_trainer_configs_instantiate(tmp_path, name):
    cfg = compose_train(tmp_path, f"trainer={name}")
    expected = {
        "cpu": ("cpu", 1, "auto", 1),
        "default": ("cpu", 1, "auto", 1),
        "gpu": ("gpu", 1, "auto", 1),
        "ddp": ("gpu", -1, "ddp", 1),
        "ddp_cpu": ("cpu", 2, "ddp_spawn", 1),
        "multinode": ("gpu", 4, "ddp", 2),
    }[name]
    t = cfg.trainer
    assert (t.accelerator, t.devices, t.strategy, t.num_nodes) == expected
    assert "precision" in t and t.max_epochs >= 1 and t.default_root_dir == str(tmp_path)
    on_cpu = ON_CPU if t.accelerator == "gpu" else []  # this machine has no GPU
    cfg = compose_train(tmp_path, f"trainer={name}", *on_cpu)
    trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert isinstance(trainer, pl.Trainer) and trainer.max_epochs == t.max_epochs
    assert trainer.num_nodes == t.num_nodes


@pytest.mark.parametrize("name", options("callbacks"))
def test_callback_configs_instantiate(tmp_path, name):
    cfg = compose_train(tmp_path, f"callbacks={name}")
    callbacks = instantiate_callbacks(cfg, with_logger=True)
    kinds = {type(c) for c in callbacks}
    if name == "default":
        assert kinds == {ModelCheckpoint, LearningRateMonitor, TQDMProgressBar}
        checkpoint = next(c for c in callbacks if isinstance(c, ModelCheckpoint))
        assert checkpoint.monitor == "val/acc" and checkpoint.mode == "max" and checkpoint.save_last
        without_logger = instantiate_callbacks(cfg, with_logger=False)
        assert LearningRateMonitor not in {type(c) for c in without_logger}
    elif name == "none":
        assert callbacks == []
    elif name == "adaptive_pruning":  # the drop-in config for template projects: seed and export dir of the run
        (callback,) = callbacks
        assert isinstance(callback, AdaptiveDatasetPruning) and callback.seed == cfg.seed
        assert callback.export_dir == str(tmp_path)


@pytest.mark.parametrize("name", options("logger"))
def test_logger_configs_instantiate(tmp_path, name):
    cfg = compose_train(tmp_path, f"logger={name}")
    loggers = instantiate_loggers(cfg)
    if name == "none":
        assert loggers == []
    else:
        assert len(loggers) == 1 and Path(loggers[0].save_dir) == tmp_path
    if name == "csv":
        assert isinstance(loggers[0], CSVLogger) and Path(loggers[0].log_dir) == tmp_path / "csv"


@pytest.mark.parametrize("name", options("experiment"))
def test_experiment_configs_instantiate(tmp_path, name):
    cfg = compose_train(tmp_path, f"experiment={name}")
    assert cfg.task_name == name
    on_cpu = ON_CPU if cfg.trainer.accelerator == "gpu" else []
    cfg = compose_train(tmp_path, f"experiment={name}", *on_cpu)
    dm = instantiate_group(cfg, "data")
    sync_data_meta(cfg, dm)
    model = instantiate_group(cfg, "model")
    callback = instantiate(cfg.pruning.callback) if cfg.pruning.callback is not None else None
    trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert isinstance(dm, IndexedDataModule) and isinstance(model, ImageClassifier) and isinstance(trainer, pl.Trainer)
    assert callback is None or isinstance(callback, DataPruning)


@pytest.mark.parametrize(("name", "cutout"), [("paper_cifar10_resnet18", 16), ("paper_cifar100_resnet18", 8)])
def test_paper_presets_match_the_paper(tmp_path, name, cutout):
    cfg = compose_train(tmp_path, f"experiment={name}")
    assert cfg.data.meta.name == name.split("_")[1] and cfg.model.net._target_.endswith("cifar_resnet18")
    assert (cfg.data.batch_size, cfg.data.augment, cfg.data.cutout) == (256, True, cutout)
    opt = cfg.model.optimizer
    assert (opt._target_, opt.lr, opt.momentum, opt.weight_decay) == ("torch.optim.SGD", 0.1, 0.9, 5e-4)
    assert (cfg.trainer.max_epochs, cfg.trainer.accelerator) == (200, "gpu")
    assert (cfg.pruning.callback.method.mode, cfg.pruning.retrain) == ("soft", True)


def test_the_slurm_launcher_asks_slurm_for_what_trainer_multinode_runs(tmp_path, monkeypatch):
    """``-m hydra/launcher=slurm trainer=multinode``: the plugin's own launch path, stopped where submitit would
    call sbatch, renders a job script asking for the trainer's nodes and one task per device (the tasks that
    ``tests/core/test_multinode.py`` runs under SLURM's environment)."""
    import shutil

    import submitit
    from hydra.core.hydra_config import HydraConfig

    assert "hydra/launcher" not in (CONF / "train.yaml").read_text()  # the basic launcher stays the default
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit only checks that srun exists
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    assert shutil.which("srun")
    overrides = [
        "hydra/launcher=slurm",
        "trainer=multinode",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.launcher.partition=gpu",
    ]
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.config = cfg
    executors = []

    def stop_before_sbatch(executor, *args):
        executors.append(executor)
        raise InterruptedError

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", stop_before_sbatch)
    with pytest.raises(InterruptedError):
        launcher.launch([["seed=0"]], 0)
    script = executors[0]._executor._make_submission_file_text("python -m lightning_adapruner.app.train", "job")
    nodes, devices = cfg.trainer.num_nodes, cfg.trainer.devices
    assert (nodes, devices) == (2, 4)
    for line in (f"--nodes={nodes}", f"--ntasks-per-node={devices}", f"--gpus-per-node={devices}", "--partition=gpu"):
        assert f"#SBATCH {line}\n" in script, script
