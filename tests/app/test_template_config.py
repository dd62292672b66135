"""conf/callbacks/adaptive_pruning.yaml composed the way lightning-hydra-template composes callbacks."""

import shutil
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lightning_adapruner import AdaptiveDatasetPruning
from lightning_adapruner.app.train import config_dir

# the shape of the template's configs: train.yaml with a `callbacks` group whose default.yaml lists several
# files, each holding one named callback, plus `seed` and `paths.output_dir`
TEMPLATE_TRAIN = """
defaults:
  - _self_
  - callbacks: default
  - debug: null
seed: 12345
paths:
  output_dir: /runs/2026-12-01
trainer:
  max_epochs: 10
"""
# the template's debug group: every debug config starts from default.yaml, which drops the callbacks
TEMPLATE_DEBUG = {
    "default.yaml": "# @package _global_\ncallbacks: null\nlogger: null\ntrainer:\n  max_epochs: 1\n",
    "fdr.yaml": "# @package _global_\ndefaults:\n  - default\ntrainer:\n  fast_dev_run: true\n",
}
DEBUG_PRUNING = Path(__file__).resolve().parents[2] / "examples" / "lightning_hydra_template" / "configs" / "debug"
TEMPLATE_CALLBACKS = {
    "default.yaml": "defaults:\n  - model_checkpoint\n  - _self_\n",
    "model_checkpoint.yaml": (
        "model_checkpoint:\n  _target_: lightning.pytorch.callbacks.ModelCheckpoint\n"
        "  dirpath: ${paths.output_dir}/checkpoints\n"
    ),
}


def template_tree(root: Path) -> Path:
    configs = root / "configs"
    (configs / "callbacks").mkdir(parents=True)
    (configs / "train.yaml").write_text(TEMPLATE_TRAIN)
    for name, text in TEMPLATE_CALLBACKS.items():
        (configs / "callbacks" / name).write_text(text)
    shutil.copy(config_dir() / "callbacks" / "adaptive_pruning.yaml", configs / "callbacks")  # the user's one copy
    (configs / "debug").mkdir()
    for name, text in TEMPLATE_DEBUG.items():
        (configs / "debug" / name).write_text(text)
    shutil.copy(DEBUG_PRUNING / "pruning.yaml", configs / "debug")  # the README's debug recipe
    return configs


def instantiate_callbacks(cfg):
    """What the template's src/utils/instantiators.py does with cfg.callbacks."""
    return [instantiate(node) for node in cfg.callbacks.values() if node is not None and "_target_" in node]


def test_the_callback_config_drops_into_a_template_project(tmp_path):
    configs = template_tree(tmp_path)
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("train", overrides=["callbacks=[default,adaptive_pruning]"])
        plain = compose("train")
    callbacks = instantiate_callbacks(cfg)
    (pruning,) = [c for c in callbacks if isinstance(c, AdaptiveDatasetPruning)]
    assert len(callbacks) == 2  # the template's own callbacks are still there
    assert pruning.seed == 12345 and pruning.export_dir == "/runs/2026-12-01" and pruning.prune_ratio == 0.3
    assert not any(isinstance(c, AdaptiveDatasetPruning) for c in instantiate_callbacks(plain))


def test_the_debug_recipe_adds_the_callback_the_template_debug_configs_drop(tmp_path):
    configs = template_tree(tmp_path)
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        dropped = compose("train", overrides=["debug=fdr", "callbacks=[default,adaptive_pruning]"])
        debug = compose("train", overrides=["debug=pruning"])
    assert dropped.callbacks is None  # the template's own debug configs: the callback is gone, pruning silently off
    (pruning,) = instantiate_callbacks(debug)
    assert isinstance(pruning, AdaptiveDatasetPruning) and debug.trainer.max_epochs == 1
