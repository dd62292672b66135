"""``adapruner-train``: the Hydra app that trains a model with a pruning method and writes ``metrics.json``.

The app only instantiates and wires (lightning-hydra-template style); every choice lives in the configs
under ``conf/`` (shipped inside the package as ``lightning_adapruner/conf``)::

    adapruner-train                                    # AdaPruner p=0.2, Fashion-MNIST, small CNN, CPU
    adapruner-train data=cifar10 model=resnet18 trainer=gpu pruning.prune_ratio=0.3
    adapruner-train -m pruning=adapruner,none seed=0,1,2   # a sweep; then adapruner-report <sweep dir>
    python -m lightning_adapruner.app.train --cfg job      # print the composed config

One run: seed -> datamodule -> model -> callbacks (+ the pruning callback) -> loggers -> trainer -> fit ->
(``pruning.retrain``: a fresh model fit on the exported subset) -> test of the last epoch's weights ->
summary printed and written to ``<run dir>/metrics.json``.
"""

from __future__ import annotations

import atexit
import copy
import functools
import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger
from torch.utils.data import Subset

from lightning_adapruner.app import missing_extra

try:
    import hydra
    from omegaconf import DictConfig, OmegaConf, open_dict
    from omegaconf.errors import InterpolationToMissingValueError
except ImportError as err:  # pragma: no cover - exercised by tests/app/test_train.py in a subprocess
    raise missing_extra(err, "adapruner-train") from None

from lightning_adapruner import BatchSelection, functional, load_pruned_subset, read_pruned_subset
from lightning_adapruner.app.summary import METRICS_FILE
from lightning_adapruner.core import _lightning

log = logging.getLogger(__name__)

CONFIG_NAME = "train"
META_KEY = "meta"  # a group's facts for the other groups and the summary; never passed to the constructor
# `${ratio_unless_budget:${pruning.prune_ratio},${pruning.budget}}`: the harness takes one of the two, and a pruning
# config's default prune_ratio gives way to a budget given on the command line
OmegaConf.register_new_resolver(
    "ratio_unless_budget", lambda ratio, budget: None if budget is not None else ratio, replace=True
)
# `${target_tag:...}` in a sweep's run directory names: b<budget> for a budget run, else p<prune_ratio>
OmegaConf.register_new_resolver(
    "target_tag", lambda ratio, budget: f"b{budget}" if budget is not None else f"p{ratio}", replace=True
)
# `${batch_keep:${pruning.budget}}`: the share of each batch BatchSelection trains on so that the fit costs `budget`
# of full data's compute (every sample scored by a forward, the kept ones forwarded and back-propagated)
OmegaConf.register_new_resolver("batch_keep", lambda budget: batch_keep(float(budget)), replace=True)


def batch_keep(budget: float) -> float:
    """The keep share of :class:`~lightning_adapruner.BatchSelection` whose compute is ``budget`` of full data's:
    a scored sample costs a forward (1/3 of training on it, backward = 2 forwards), a kept one a training step, so
    the share is ``1/3 + keep`` and a budget must exceed 1/3.

    Example::

        >>> round(batch_keep(0.6), 4), round(batch_keep(1.0), 4)
        (0.2667, 0.6667)
    """
    scoring = functional.compute_share(1, 0)  # a forward per sample, nothing trained: 1/3
    if not scoring < budget <= 1.0:
        raise ValueError(
            f"pruning.budget={budget}: batch selection scores every sample (1/3 of training on it), so its budget "
            "must be in (1/3, 1]"
        )
    return budget - scoring


def fewer_epochs(budget: float, epochs: int) -> int:
    """The epochs of full data that forward ``budget`` of ``epochs`` epochs' samples: ``round(budget * epochs)``
    with halves rounded up, at least one (``pruning=shorter``).

    Example::

        >>> fewer_epochs(0.6, 20), fewer_epochs(0.625, 20), fewer_epochs(0.01, 20)
        (12, 13, 1)
    """
    return max(1, math.floor(budget * epochs + 0.5 + 1e-9))


@functools.lru_cache(maxsize=1)
def auto_threads() -> int:
    """Torch threads for one CPU run: the cores this process may use that other work leaves free (the 1-minute
    load average), at least one. Small models on a busy CPU run many times slower with a thread per core.
    Decided once per process, so the jobs of a sweep run in one process (Hydra's basic launcher) all get the same
    count, not one that the sweep's own previous job pushed down."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, math.floor(cores - busy + 0.5)))


def config_dir() -> Path:
    """The directory holding ``train.yaml``.

    Installed from a wheel, the configs live inside the package (``lightning_adapruner/conf``); in a
    source checkout (editable install) they are the repository's top-level ``conf/``.
    """
    package = Path(__file__).resolve().parents[1]  # lightning_adapruner/
    candidates = (package / "conf", package.parent / "conf")
    for candidate in candidates:
        if (candidate / f"{CONFIG_NAME}.yaml").is_file():
            return candidate
    return candidates[0]  # Hydra then reports the missing primary config with this path


# ----------------------------------------------------------------------------------------- instantiation
def instantiate_group(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """Instantiate the group config ``cfg[key]`` without its ``meta`` node.

    Raises:
        ValueError: if a mandatory value (``???``) the group needs was not given.
    """
    try:
        node = OmegaConf.to_container(cfg[key], resolve=True, throw_on_missing=False)  # ??? stays "???"
    except InterpolationToMissingValueError as err:  # `${data.meta.x}` where data.meta.x is ???
        missing = re.search(r"Missing mandatory value: ([\w.\[\]]+)", str(err))
        raise ValueError(_missing_value_message(missing.group(1) if missing else str(err), err.full_key)) from None
    assert isinstance(node, dict)
    node.pop(META_KEY, None)
    missing_keys = _missing_keys(node, key)
    if missing_keys:
        raise ValueError(_missing_value_message(missing_keys[0]))
    return hydra.utils.instantiate(node, **kwargs)


def _missing_keys(node: Any, prefix: str) -> list[str]:
    if isinstance(node, dict):
        return [m for k, v in node.items() for m in _missing_keys(v, f"{prefix}.{k}")]
    if isinstance(node, list):
        return [m for i, v in enumerate(node) for m in _missing_keys(v, f"{prefix}[{i}]")]
    return [prefix] if node == "???" else []


def _missing_value_message(key: str, needed_by: str | None = None) -> str:
    via = f" (needed by `{needed_by}`)" if needed_by else ""
    msg = f"the config value `{key}`{via} is mandatory (??? in its config file) but was not given: add `{key}=...`"
    if key == f"data.{META_KEY}.in_channels":
        msg += (
            ". This dataset yields flat vectors, not images, so networks taking image channels cannot read it: "
            "use model=mlp"
        )
    return msg


def sync_data_meta(cfg: DictConfig, datamodule: pl.LightningDataModule) -> None:
    """Check ``data.meta`` against the datamodule; fill in the facts left at ``???``.

    Raises:
        ValueError: if a given fact (number of classes, channels, input size) disagrees with the data.
    """
    meta = cfg.data.get(META_KEY)
    if meta is None:
        return
    shape = tuple(int(s) for s in datamodule.input_shape)
    facts: dict[str, int] = {"num_classes": int(datamodule.num_classes), "in_features": math.prod(shape)}
    if len(shape) == 3:
        facts["in_channels"] = shape[0]
    given = set(meta.keys())  # (`key in meta` is false for a ??? value)
    for key, value in facts.items():
        if key not in given:
            continue
        if OmegaConf.is_missing(meta, key):
            meta[key] = value
        elif meta[key] != value:
            raise ValueError(
                f"data.{META_KEY}.{key}={meta[key]} but {type(datamodule).__name__} has {key}={value} "
                f"(input shape {shape}); set data.{META_KEY}.{key}={value}, or ??? to take the datamodule's value"
            )


def instantiate_callbacks(cfg: DictConfig, with_logger: bool, with_progress_bar: bool = True) -> list[Callback]:
    """The callbacks of ``cfg.callbacks`` (a mapping of named callback configs)."""
    callbacks = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        if "_target_" not in node:
            raise ValueError(f"callbacks.{name} has no _target_: every entry of `callbacks` must be a callback config")
        callback = hydra.utils.instantiate(node)
        if isinstance(callback, LearningRateMonitor) and not with_logger:
            log.info("no logger configured: leaving out callbacks.%s (LearningRateMonitor needs a logger)", name)
            continue
        if isinstance(callback, ProgressBar) and not with_progress_bar:
            log.info("trainer.enable_progress_bar=false: leaving out callbacks.%s", name)
            continue
        callbacks.append(callback)
    return callbacks


def instantiate_loggers(cfg: DictConfig) -> list[Logger]:
    """The loggers of ``cfg.logger`` (a mapping of named logger configs; empty for none)."""
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        if "_target_" not in node:
            raise ValueError(f"logger.{name} has no _target_: every entry of `logger` must be a logger config")
        loggers.append(hydra.utils.instantiate(node))
    return loggers


class DestroyProcessGroupAtExit(Callback):
    """Destroys the process group when each process of a distributed run exits, as Lightning does for NCCL only.

    A gloo run (DDP on CPU) left to the interpreter's shutdown can abort a process that trained to the end: gloo's
    threads still hold work whose tensors need the interpreter ("terminate called without an active exception",
    exit status 134), which fails the job and, under Lightning's launcher, every rank with it. Registered in
    ``setup``, so it also runs in ranks that ``ddp_spawn`` started; ranks that ``ddp_fork`` forked end by
    ``os._exit``, without the interpreter's shutdown where the abort happens (and without exit handlers)."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            _destroy_process_group_at_exit()


@functools.cache
def _destroy_process_group_at_exit() -> None:  # once per process, however many fits it runs
    atexit.register(lambda: torch.distributed.is_initialized() and torch.distributed.destroy_process_group())


def build_trainer(cfg: DictConfig, pruning_callback: Callback | None) -> pl.Trainer:
    """A Trainer from ``cfg.trainer`` with the configured loggers and callbacks plus ``pruning_callback`` (and
    :class:`DestroyProcessGroupAtExit`)."""
    loggers = instantiate_loggers(cfg)
    callbacks = instantiate_callbacks(
        cfg, with_logger=bool(loggers), with_progress_bar=cfg.trainer.get("enable_progress_bar", True) is not False
    )
    callbacks.append(DestroyProcessGroupAtExit())
    if pruning_callback is not None:
        callbacks.append(pruning_callback)
    return hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


# ----------------------------------------------------------------------------------------- the run
def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one job of the app: fit (and retrain), test, write ``metrics.json``; returns the summary.

    Raises:
        ValueError: for an inconsistent config (a missing mandatory value, data facts that disagree with
            the datamodule, ``pruning.retrain`` without a pruning callback).
    """
    start, started_at = time.perf_counter(), time.time()
    out = Path(cfg.paths.output_dir)
    retrain = bool(cfg.pruning.get("retrain", False))
    if retrain and cfg.pruning.get("callback") is None:
        raise ValueError(
            f"pruning.retrain=true needs a pruning callback that exports a kept subset, but pruning "
            f"{cfg.pruning.name!r} has callback=null; set pruning.retrain=false"
        )
    reference_epochs = int(cfg.trainer.max_epochs)
    budget = cfg.pruning.get("budget")
    if cfg.pruning.get("shorten_epochs"):
        if budget is None:
            raise ValueError(f"pruning={cfg.pruning.name} trains fewer epochs by pruning.budget: give pruning.budget=")
        with open_dict(cfg):
            cfg.trainer.max_epochs = fewer_epochs(float(budget), reference_epochs)

    threads = cfg.get("num_threads")
    if threads is not None:
        torch.set_num_threads(auto_threads() if threads == "auto" else int(threads))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate_group(cfg, "data")
    sync_data_meta(cfg, datamodule)
    model = instantiate_group(cfg, "model")
    callback = hydra.utils.instantiate(cfg.pruning.callback) if cfg.pruning.get("callback") is not None else None
    trainer = build_trainer(cfg, callback)
    log.info(
        "fitting %s on %s with pruning=%s (%d torch threads)",
        _name(cfg, "model"), _name(cfg, "data"), cfg.pruning.name, torch.get_num_threads(),
    )  # fmt: skip
    fit_start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_time = time.perf_counter() - fit_start

    datamodule.setup("fit")  # idempotent; with ddp_spawn only the workers had set it up
    num_train = len(datamodule.train_dataset)
    epochs = int(trainer.max_epochs or 0)
    full_epoch = _full_epoch_samples(trainer, datamodule, num_train)
    pruning = _pruning_outcome(trainer, callback, datamodule, full_epoch)
    fit_val_acc = _final_val_acc(trainer, model, datamodule)
    fit_metrics_csv = _metrics_csv(trainer)
    final_trainer, final_model = trainer, model
    extra: dict[str, Any] = {}

    if retrain:
        subset = _kept_subset(trainer, callback, pruning["subset_path"], datamodule)
        log.info("retraining a fresh %s on the %d kept samples", _name(cfg, "model"), len(subset))
        retrain_cfg = copy.deepcopy(cfg)
        with open_dict(retrain_cfg):
            retrain_cfg.paths.output_dir = str(out / "retrain")  # logs and checkpoints of the second fit
        pl.seed_everything(cfg.seed, workers=True)  # the same initial weights as a full-data run of this seed
        final_model = instantiate_group(retrain_cfg, "model")
        datamodule.train_dataset = subset
        final_trainer = build_trainer(retrain_cfg, None)
        fit_start = time.perf_counter()
        final_trainer.fit(final_model, datamodule=datamodule)
        fit_time += time.perf_counter() - fit_start
        retrained = _full_epoch_samples(final_trainer, datamodule, len(subset)) * _epochs_done(final_trainer)
        pruning["samples_forwarded"] += retrained
        pruning["num_kept"] = len(subset)
        extra = {"pruning_val_acc": fit_val_acc, "retrain_metrics_csv": _metrics_csv(final_trainer)}

    val_acc = fit_val_acc if final_trainer is trainer else _final_val_acc(final_trainer, final_model, datamodule)
    test_acc = test_loss = None
    if cfg.test_after_fit:
        # The loggers keep the training curves; the test numbers go to metrics.json. (A spawning strategy would
        # re-create the CSV writer in its workers, which deletes the fit's metrics.csv.)
        final_trainer.loggers = []
        results = final_trainer.test(final_model, datamodule=datamodule)  # last epoch's weights, not the best
        test_acc, test_loss = (results[0].get(k) if results else None for k in ("test/acc", "test/loss"))

    samples = int(pruning["samples_forwarded"])
    full = full_epoch * reference_epochs  # full data over the setting's epochs: what every budget is a share of
    ratio = getattr(callback, "prune_ratio", 0.0)  # the one given, or the one a budget solved (none: 0)
    # the share of full data's samples forwarded, or with batch selection of its compute (it forwards every sample)
    realised = round(pruning.get("compute_share", 1.0) * samples / full, 6) if full else None
    summary: dict[str, Any] = {
        "method": str(cfg.pruning.name),
        "prune_ratio_target": float(ratio or 0.0),
        "prune_ratio_realised": round((num_train - pruning["num_kept"]) / num_train, 6),
        "seed": int(cfg.seed),
        "dataset": _name(cfg, "data"),
        "model": _name(cfg, "model"),
        "epochs": epochs,
        "reference_epochs": reference_epochs,
        "label_noise": float(cfg.data.get("label_noise", 0.0) or 0.0),
        "test_acc": _float(test_acc),
        "test_loss": _float(test_loss),
        "val_acc": val_acc,
        "samples_forwarded": samples,
        "samples_full_data": full,
        "saved_share": round(1.0 - realised, 6) if realised is not None else 0.0,
        "budget_target": _budget_target(cfg, callback),
        "budget_realised": realised,
        "wall_time_s": time.perf_counter() - start,
        "fit_time_s": fit_time,
        "started_at": started_at,
        "finished_at": time.time(),
        "num_train_samples": num_train,
        "subset_path": pruning["subset_path"],
        "metrics_csv": fit_metrics_csv,
        # extras
        "num_kept": int(pruning["num_kept"]),
        "samples_trained": pruning.get("samples_trained"),  # batch selection: the samples back-propagated
        "compute_share": pruning.get("compute_share"),  # batch selection: scoring + training against full data's
        "retrain": retrain,
        "world_size": trainer.world_size,
        "num_threads": torch.get_num_threads(),
        "output_dir": str(out),
        **extra,
    }
    if trainer.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        (out / METRICS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        log.info("summary (%s):\n%s", out / METRICS_FILE, _format_summary(summary))
    return summary


def _pruning_outcome(trainer: pl.Trainer, callback: Any, datamodule: Any, full_epoch: int) -> dict[str, Any]:
    """What the pruning fit trained on: samples forwarded, kept count, exported subset.

    Read from the callback (also in the launching process of a spawned fit) and the subset file it exported;
    without a callback every sample was forwarded in every epoch the fit ran.
    """
    num_train = len(datamodule.train_dataset)
    if callback is None or isinstance(callback, BatchSelection):  # every sample forwarded (and scored) every epoch
        forwarded = full_epoch * _epochs_done(trainer)
        outcome: dict[str, Any] = {"samples_forwarded": forwarded, "num_kept": num_train, "subset_path": None}
        if isinstance(callback, BatchSelection):  # what it saves is compute, not samples: say which
            # rank 0's logged shares: they also reach the process that launched a ddp_spawn fit, unlike its counters
            logged = trainer.callback_metrics
            trained = float(logged["adp/trained_share"]) if "adp/trained_share" in logged else 1.0
            share = float(logged["adp/compute_share"]) if "adp/compute_share" in logged else 1.0
            outcome.update(samples_trained=round(trained * forwarded), compute_share=round(share, 6))
        return outcome
    path = getattr(callback, "export_path", None)
    meta: dict[str, Any] = {}
    if path is not None and Path(path).is_file():
        meta = read_pruned_subset(path).metadata
    else:
        path = None
    forwarded = getattr(callback, "forwarded_samples", None) or meta.get("samples_forwarded")
    if forwarded is None:
        log.warning("%s reported no forwarded-sample count; assuming full epochs", type(callback).__name__)
        forwarded = full_epoch * _epochs_done(trainer)
    kept = getattr(callback, "kept_indices", None)
    num_kept = kept.numel() if kept is not None else num_train - int(meta.get("num_pruned", 0))
    if _sharded(callback):  # each rank holds its part of the kept set: the count is the fit's
        num_kept = functional.num_kept(num_train, float(callback.keep_fraction))
    subset_path = None if path is None else str(path)
    return {"samples_forwarded": int(forwarded), "num_kept": num_kept, "subset_path": subset_path}


def _full_epoch_samples(trainer: pl.Trainer, datamodule: Any, num_samples: int) -> int:
    """Samples full data forwards in one epoch, under the fit's ``limit_train_batches`` and processes."""
    return functional.full_epoch_samples(
        num_samples, trainer.world_size, int(datamodule.batch_size), False, trainer.limit_train_batches or 1.0
    )


def _budget_target(cfg: DictConfig, callback: Any) -> float | None:
    """The budget the run was given: the callback's (``None`` when it was given a prune ratio); fewer epochs' own;
    1.0 for full data."""
    if isinstance(callback, BatchSelection):
        return None if cfg.pruning.get("budget") is None else float(cfg.pruning.budget)
    if callback is not None:
        retrained = bool(cfg.pruning.get("retrain", False))  # samples_forwarded then counts the retrain's too
        return None if retrained else getattr(callback, "budget", None)
    if cfg.pruning.get("shorten_epochs"):
        return float(cfg.pruning.budget)
    return 1.0


def _final_val_acc(trainer: pl.Trainer, model: Any, datamodule: Any) -> float | None:
    """The validation accuracy of the fit's final weights: the logged one when the last epoch validated, else one
    more validation pass (with ``check_val_every_n_epoch=5`` a 12-epoch fit last validated after epoch 10)."""
    every, epochs = trainer.check_val_every_n_epoch, _epochs_done(trainer)
    if every is None or (epochs and epochs % every == 0) or trainer.limit_val_batches == 0:
        return _metric(trainer, "val/acc")
    loggers, trainer.loggers = trainer.loggers, []  # the curves keep their validations; this one is for selection
    try:
        results = trainer.validate(model, datamodule=datamodule, verbose=False)
    finally:
        trainer.loggers = loggers
    value = results[0].get("val/acc") if results else None
    return None if value is None else float(value)


def _kept_subset(trainer: pl.Trainer, callback: Any, subset_path: str | None, datamodule: Any) -> Any:
    """The exported kept subset of the datamodule's training set, for the retrain."""
    if _sharded(callback):  # every rank's part: gathered in step (outside every hook), else read from the manifest
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            part = callback.kept_indices.long().to(trainer.strategy.root_device)
            size = int(trainer.strategy.all_gather(torch.tensor(part.numel(), device=part.device)).max())
            padded = torch.cat([part, part.new_full((size - part.numel(),), -1)])
            kept = trainer.strategy.all_gather(padded).flatten().cpu()
            return Subset(datamodule.train_dataset, torch.sort(kept[kept >= 0]).values.tolist())
    elif trainer.world_size > 1 and getattr(callback, "kept_indices", None) is not None:
        # rank 0's kept set on every rank (ddp, torchrun, SLURM: other nodes may not see rank 0's file); broadcast
        # here, after fit and outside every hook, where all ranks are in step
        kept = trainer.strategy.broadcast(callback.kept_indices, src=0)
        return Subset(datamodule.train_dataset, kept.tolist())
    if subset_path is None:
        raise RuntimeError("the pruning fit exported no subset to retrain on (is the callback's export_dir false?)")
    return load_pruned_subset(subset_path, datamodule.train_dataset)


def _sharded(callback: Any) -> bool:
    """Whether the pruning callback held sharded per-sample state (``DataPruning(sharded=True)``)."""
    return bool(getattr(getattr(callback, "session", None), "sharded", False))


def _epochs_done(trainer: pl.Trainer) -> int:
    """Epochs the last fit completed; ``max_epochs`` after a spawning strategy, whose loop ran in the workers."""
    return _lightning.epochs_completed(trainer) or int(trainer.max_epochs or 0)


def _name(cfg: DictConfig, group: str) -> str:
    """``<group>.meta.name``, else the short name of the group's ``_target_``."""
    name = OmegaConf.select(cfg, f"{group}.{META_KEY}.name", default=None)
    return str(name) if name is not None else str(cfg[group]._target_).rsplit(".", 1)[-1]


def _metric(trainer: pl.Trainer, name: str) -> float | None:
    value = trainer.callback_metrics.get(name)
    return None if value is None else float(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _metrics_csv(trainer: pl.Trainer) -> str | None:
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger):
            path = Path(logger.log_dir) / "metrics.csv"
            return str(path) if path.is_file() else None
    return None


def _format_summary(summary: dict[str, Any]) -> str:
    width = max(len(k) for k in summary)
    lines = []
    for key, value in summary.items():
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {text}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> float | None:
    """The ``adapruner-train`` entry point; returns the final validation accuracy (for optimising sweepers)."""
    return train(cfg)["val_acc"]


if __name__ == "__main__":
    main()
