"""Loading a sweep: every run directory's ``metrics.json`` as a :class:`Run`, and the run directories skipped; or
the runs of a JSONL file (one ``metrics.json`` object per line, plus its ``name``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from lightning_adapruner.app.summary import FULL_DATA_METHOD, METRICS_FILE

MAX_DEPTH = 3  # run directories lie at most this many levels below the sweep directory
FEWER_EPOCHS_METHOD = "shorter"  # the ``method`` of a run on all the data for fewer epochs (``pruning=shorter``)


class Setting(NamedTuple):
    """What runs must share to be compared: the dataset, the model, the number of epochs, the label noise and the
    number of training samples (``train_samples``, when known: a draw of 6 000 and of 24 000 samples of one dataset
    are two settings).

    ``epochs`` is the setting's epoch count: what a full-data run of the setting trains (a run's
    ``reference_epochs`` when it has one, so a fewer-epochs run shares the setting of its full-data run).

    Example::

        >>> str(Setting("cifar10", "resnet18", 200)), str(Setting("cifar10", "resnet18", 200, 0.2))
        ('cifar10 / resnet18, 200 epochs', 'cifar10 / resnet18, 200 epochs, label noise 0.2')
        >>> str(Setting("fashion_mnist", "lenet", 20, 0.0, 6000))
        'fashion_mnist (6,000 samples) / lenet, 20 epochs'
    """

    dataset: str
    model: str
    epochs: int | None
    label_noise: float = 0.0
    train_samples: int | None = None

    def __str__(self) -> str:
        epochs = "? epochs" if self.epochs is None else f"{self.epochs} epochs"
        noise = f", label noise {self.label_noise:g}" if self.label_noise else ""
        samples = "" if self.train_samples is None else f" ({self.train_samples:,} samples)"
        return f"{self.dataset}{samples} / {self.model}, {epochs}{noise}"


@dataclass(frozen=True)
class Run:
    """One run's ``metrics.json``; ``name`` is its directory relative to the sweep, paths are resolved.

    The keys of a budget (``reference_epochs``, ``budget_target``, ``budget_realised``, ``samples_full_data``) and
    of the timing (``fit_time_s``, ``started_at``, ``finished_at``) are optional: older runs lack them.
    """

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
    reference_epochs: int | None = None
    budget_target: float | None = None
    budget_realised: float | None = None
    samples_full_data: float | None = None
    fit_time_s: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    val_acc: float | None = None  # the last validation accuracy: what choices between variants are made on
    train_samples: int | None = None  # ``num_train_samples``: the training set's size

    @property
    def setting(self) -> Setting:
        epochs = self.reference_epochs if self.reference_epochs is not None else self.epochs
        return Setting(self.dataset, self.model, epochs, self.label_noise, self.train_samples)

    @property
    def ratio_key(self) -> float:
        """The target prune ratio the run is grouped under; every full-data run is grouped at 0."""
        return 0.0 if self.method == FULL_DATA_METHOD else round(self.prune_ratio_target, 6)

    @property
    def realised_budget(self) -> float | None:
        """Samples forwarded as a share of full data's at the setting's epochs: ``budget_realised``, else
        ``samples_forwarded / samples_full_data``; ``None`` when neither is known."""
        if self.budget_realised is not None:
            return self.budget_realised
        if self.samples_forwarded is not None and self.samples_full_data:
            return self.samples_forwarded / self.samples_full_data
        return None

    @property
    def budget_key(self) -> float | None:
        """The budget the run is grouped and plotted at: ``budget_target`` when set, else the realised budget
        rounded to 3 decimals (:attr:`realised_budget`); a full-data run is at 1.0 (``None``: no budget known).

        Example::

            >>> Run("a", "rs2", 0.4, 0.9, budget_target=0.6, budget_realised=0.6012).budget_key
            0.6
            >>> Run("b", "el2n", 0.3, 0.9, budget_realised=0.65237).budget_key
            0.652
            >>> Run("c", "el2n", 0.3, 0.9, samples_forwarded=700, samples_full_data=1000).budget_key
            0.7
            >>> Run("d", FULL_DATA_METHOD, 0.0, 0.9).budget_key, Run("e", "el2n", 0.3, 0.9).budget_key
            (1.0, None)
        """
        if self.method == FULL_DATA_METHOD:
            return 1.0
        if self.budget_target is not None:
            return round(self.budget_target, 6)
        realised = self.realised_budget
        return None if realised is None else round(realised, 3)

    @property
    def has_budget_keys(self) -> bool:
        """Whether the run was written with the budget keys (``budget_target`` or ``budget_realised``)."""
        return self.budget_target is not None or self.budget_realised is not None

    @property
    def time_s(self) -> float | None:
        """The training's own time: ``fit_time_s`` when the run has it, else the whole job's ``wall_time_s``."""
        return self.fit_time_s if self.fit_time_s is not None else self.wall_time_s


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


def _path(value: Any, run_dir: Path | None) -> Path | None:
    if value in (None, "") or run_dir is None:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else run_dir / path


def parse_run(data: Any, name: str, run_dir: Path | None) -> Run:
    """A :class:`Run` from the decoded ``metrics.json`` of the run in ``run_dir``.

    ``method`` and ``test_acc`` are required, and ``prune_ratio_target`` for a pruning run configured by prune
    ratio (every method but the full-data and the fewer-epochs one, without ``budget_target``); all other keys
    are optional (``label_noise`` defaults to 0.0, clean labels). Relative ``subset_path`` and ``metrics_csv`` are
    taken relative to ``run_dir``; with ``run_dir=None`` (a JSONL file: no run directory) both are dropped.

    Args:
        data: the decoded JSON.
        name: the run's name in the report (its directory relative to the sweep).
        run_dir: the run's directory, or ``None`` when the run has none (read from a JSONL file).

    Raises:
        ValueError: if ``data`` is not an object, a required key is missing or a value has the wrong type.

    Example::

        >>> run = parse_run({"method": "random", "prune_ratio_target": 0.3, "test_acc": 0.9}, "0", Path("s/0"))
        >>> run.setting, run.ratio_key
        (Setting(dataset='?', model='?', epochs=None, label_noise=0.0, train_samples=None), 0.3)
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise ValueError(f"missing required key 'method' (a non-empty string), got {method!r}")
    budget = _number(data, "budget_target")
    by_ratio = method not in (FULL_DATA_METHOD, FEWER_EPOCHS_METHOD) and budget is None
    ratio = _number(data, "prune_ratio_target", required=by_ratio)
    seed, epochs, noise = _number(data, "seed"), _number(data, "epochs"), _number(data, "label_noise")
    reference, samples = _number(data, "reference_epochs"), _number(data, "num_train_samples")
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
        reference_epochs=None if reference is None else int(reference),
        budget_target=budget,
        budget_realised=_number(data, "budget_realised"),
        samples_full_data=_number(data, "samples_full_data"),
        fit_time_s=_number(data, "fit_time_s"),
        started_at=_number(data, "started_at"),
        finished_at=_number(data, "finished_at"),
        val_acc=_number(data, "val_acc"),
        train_samples=None if samples is None else int(samples),
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


def load_runs_jsonl(path: str | Path, skipped: list[Skipped] | None = None) -> list[Run]:
    """The runs of a JSONL file: one ``metrics.json`` object per line, plus a ``name`` key naming the run.

    Blank lines are passed over; a line without ``name`` is named ``<file name>:<line number>``. The runs have
    no run directory, so no artefacts: ``subset_path`` and ``metrics_csv`` are dropped.

    Args:
        path: the ``.jsonl`` file.
        skipped: where to append a :class:`Skipped` for each unusable line; ``None`` raises on the first.

    Raises:
        OSError: if the file cannot be read.
        ValueError: for an unusable line (not JSON, not an object, a required key missing or mistyped), when
            ``skipped`` is ``None``; the message names the file and the line.

    Example::

        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "study.jsonl"
        >>> _ = file.write_text('{"name": "a", "method": "none", "test_acc": 0.9, "seed": 0}\\n\\n'
        ...                     '{"method": "shorter", "budget_target": 0.5, "test_acc": 0.88}\\n')
        >>> [(run.name, run.method, run.budget_key) for run in load_runs_jsonl(file)]
        [('a', 'none', 1.0), ('study.jsonl:3', 'shorter', 0.5)]
    """
    path = Path(path).expanduser()
    runs: list[Run] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        name = f"{path.name}:{number}"
        try:
            data = json.loads(line)
            if isinstance(data, Mapping) and data.get("name") not in (None, ""):
                name = str(data["name"])
            runs.append(parse_run(data, name, None))
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            reason = f"{'not JSON' if isinstance(err, json.JSONDecodeError) else 'invalid run'} ({err})"
            if skipped is None:
                raise ValueError(f"{path}, line {number}: {reason}") from None
            skipped.append(Skipped(name, f"line {number}: {reason}"))
    return runs


def sweep_label(path: str | Path, parts: int = 3) -> str:
    """The sweep as ``report.md`` names it: the last ``parts`` components of its absolute path, so neither
    ``.`` nor ``..`` nor a machine's home folder shows.

    Args:
        path: the sweep directory (or JSONL file) as the user passed it.
        parts: how many trailing components to keep.

    Example::

        >>> sweep_label("/home/me/project/multirun/2026-12-03/10-00-00")
        'multirun/2026-12-03/10-00-00'
        >>> sweep_label("/data/results.jsonl"), sweep_label("/")
        ('data/results.jsonl', '/')
    """
    resolved = Path(path).expanduser().resolve()
    tail = resolved.parts[1:][-parts:]  # parts[0] is the anchor ("/", "C:\\")
    return "/".join(tail) if tail else resolved.anchor
