"""Loading a sweep: every run directory's ``metrics.json`` as a :class:`Run`, and the run directories skipped."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from lightning_adapruner.app.summary import FULL_DATA_METHOD, METRICS_FILE

log = logging.getLogger(__name__)

MAX_DEPTH = 3  # run directories lie at most this many levels below the sweep directory


class Setting(NamedTuple):
    """What runs must share to be compared: the dataset, the model, the number of epochs and the label noise.

    Example::

        >>> str(Setting("cifar10", "resnet18", 200)), str(Setting("cifar10", "resnet18", 200, 0.2))
        ('cifar10 / resnet18, 200 epochs', 'cifar10 / resnet18, 200 epochs, label noise 0.2')
    """

    dataset: str
    model: str
    epochs: int | None
    label_noise: float = 0.0

    def __str__(self) -> str:
        epochs = "? epochs" if self.epochs is None else f"{self.epochs} epochs"
        noise = f", label noise {self.label_noise:g}" if self.label_noise else ""
        return f"{self.dataset} / {self.model}, {epochs}{noise}"


@dataclass(frozen=True)
class Run:
    """One run's ``metrics.json``; ``name`` is its directory relative to the sweep, paths are resolved."""

    name: str
    method: str
    prune_ratio_target: float
    test_acc: float
    seed: int | None = None
    dataset: str = "?"
    model: str = "?"
    epochs: int | None = None
    label_noise: float = 0.0
    prune_ratio_realised: float | None = None
    samples_forwarded: float | None = None
    wall_time_s: float | None = None
    subset_path: Path | None = None
    metrics_csv: Path | None = None

    @property
    def setting(self) -> Setting:
        return Setting(self.dataset, self.model, self.epochs, self.label_noise)

    @property
    def ratio_key(self) -> float:
        """The target prune ratio the run is grouped under; every full-data run is grouped at 0."""
        return 0.0 if self.method == FULL_DATA_METHOD else round(self.prune_ratio_target, 6)


class Skipped(NamedTuple):
    """A run directory that holds no usable ``metrics.json``, and why."""

    name: str
    reason: str


def _number(data: Mapping[str, Any], key: str, *, required: bool = False) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ValueError(f"missing required key {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key!r} must be a number, got {value!r}")
    return float(value)


def _path(value: Any, run_dir: Path) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else run_dir / path


def parse_run(data: Any, name: str, run_dir: Path) -> Run:
    """A :class:`Run` from the decoded ``metrics.json`` of the run in ``run_dir``.

    ``method`` and ``test_acc`` are required, and ``prune_ratio_target`` for every method but the full-data one;
    all other keys are optional (``label_noise`` defaults to 0.0, clean labels). Relative ``subset_path`` and
    ``metrics_csv`` are taken relative to ``run_dir``.

    Args:
        data: the decoded JSON.
        name: the run's name in the report (its directory relative to the sweep).
        run_dir: the run's directory.

    Raises:
        ValueError: if ``data`` is not an object, a required key is missing or a value has the wrong type.

    Example::

        >>> run = parse_run({"method": "random", "prune_ratio_target": 0.3, "test_acc": 0.9}, "0", Path("s/0"))
        >>> run.setting, run.ratio_key
        (Setting(dataset='?', model='?', epochs=None, label_noise=0.0), 0.3)
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise ValueError(f"missing required key 'method' (a non-empty string), got {method!r}")
    ratio = _number(data, "prune_ratio_target", required=method != FULL_DATA_METHOD)
    seed, epochs, noise = _number(data, "seed"), _number(data, "epochs"), _number(data, "label_noise")
    return Run(
        name=name,
        method=method,
        prune_ratio_target=0.0 if ratio is None else ratio,
        test_acc=_number(data, "test_acc", required=True),  # type: ignore[arg-type]
        seed=None if seed is None else int(seed),
        dataset=str(data.get("dataset") or "?"),
        model=str(data.get("model") or "?"),
        epochs=None if epochs is None else int(epochs),
        label_noise=0.0 if noise is None else noise,
        prune_ratio_realised=_number(data, "prune_ratio_realised"),
        samples_forwarded=_number(data, "samples_forwarded"),
        wall_time_s=_number(data, "wall_time_s"),
        subset_path=_path(data.get("subset_path"), run_dir),
        metrics_csv=_path(data.get("metrics_csv"), run_dir),
    )


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


def find_runs(sweep_dir: Path, exclude: Path | None = None) -> tuple[list[Run], list[Skipped]]:
    """The runs at most :data:`MAX_DEPTH` levels below ``sweep_dir``, and the run directories skipped.

    A directory with a ``metrics.json`` is a run (its subdirectories are not searched); a Hydra run directory
    (one with ``.hydra/``) without it is reported as skipped. ``exclude`` (the report's own folder) and hidden
    directories are not searched.

    Args:
        sweep_dir: the folder to search.
        exclude: a folder not to search.
    """
    runs: list[Run] = []
    skipped: list[Skipped] = []
    excluded = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(sweep_dir):
        here = Path(dirpath)
        name = _display(here, sweep_dir)
        depth = 0 if name == "." else len(Path(name).parts)
        if METRICS_FILE in filenames:
            dirnames[:] = []
            try:
                data = json.loads((here / METRICS_FILE).read_text())
                runs.append(parse_run(data, name, here))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                skipped.append(Skipped(name, f"unreadable {METRICS_FILE} ({type(err).__name__}: {err})"))
            except ValueError as err:
                skipped.append(Skipped(name, f"invalid {METRICS_FILE}: {err}"))
            continue
        if ".hydra" in dirnames:
            skipped.append(Skipped(name, f"no {METRICS_FILE} (the run failed, is still running, or predates it)"))
        dirnames[:] = sorted(
            d for d in dirnames if depth < MAX_DEPTH and not d.startswith(".") and (here / d).resolve() != excluded
        )
    return runs, skipped
