"""The study: every pruning method against full data for fewer epochs, at equal compute, on two recipes.

One command regenerates it; it is resumable (a run already in the results file is not run again)::

    python benchmarks/study.py                     # the study (results/study.jsonl), report and doc tables
    python benchmarks/study.py --part variants     # the AdaPruner variants the default was chosen from
    python benchmarks/study.py --part batch        # batch selection (BatchSelection) against fewer epochs
    python benchmarks/study.py --dry-run           # list what is left to run and its estimated time

**The question.** A user who wants to save training compute has a free alternative to pruning: train on all the
data for fewer epochs, with the learning-rate schedule fitted to the shorter run (``pruning=shorter``). So every
method runs at a *budget* ``b`` (``pruning.budget=b``: the fit forwards exactly ``b`` times full data's samples;
``DataPruning(budget=b)``) beside full data for ``round(b * epochs)`` epochs, paired by seed: a seed fixes the
weights, the training subsample, the validation split and the label noise for every arm.

**The recipes.** ``scarce``: 6 000 Fashion-MNIST training samples (drawn per seed from the 54 000-sample train
split), validated on the 6 000 held out, tested on the 10 000 test images; a LeNet-size CNN (62k parameters),
one-cycle SGD (peak lr 0.1, momentum 0.9, weight decay 5e-4), batch 128, 20 epochs; clean labels and 20%
symmetric label noise; ``noisy``: the same with 40% noise, at one budget. ``rich``: 24 000 training samples, 10
epochs, clean labels (redundancy exists there: a full-data epoch is four times the scarce one). Each recipe is
checked for convergence: full data at twice the epochs, paired, within the margin below (``--part convergence``).

**Statistics.** Five seeds per cell; a cell is the mean paired difference of test accuracy against full data (or
against fewer epochs at the same budget), in percentage points, with its 95% t interval. "Lossless at a budget":
non-inferior at a 0.3 pp margin (the interval's lower bound >= -0.3 pp). "A beats B": the paired interval of
A - B excludes 0. The test set is read once per run, with the last epoch's weights; choices (the default AdaPruner
variant) are made on validation accuracy only.

**Storage.** Every finished run appends one line to ``benchmarks/results/<part>.jsonl``: its ``metrics.json``
plus ``name`` (``<setting>/<arm>_b<budget>_seed<seed>``), ``setting`` and ``overrides``; that file alone rebuilds
every table (``benchmarks/study_tables.py``) and the report (``adapruner-report <file>.jsonl``). Run directories
(logs, subsets) go to ``benchmarks/results/runs/`` and stay out of git. Each run is ``adapruner-train`` in its own
process with one torch thread, ``--jobs`` at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEEDS = (0, 1, 2, 3, 4)
BASE = (
    "data=fashion_mnist",
    "model=lenet",
    "data.batch_size=128",
    "trainer.check_val_every_n_epoch=5",
    "num_threads=1",
    "callbacks=none",
    "logger=csv",
    "trainer.enable_checkpointing=false",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
)


@dataclass(frozen=True)
class Recipe:
    """A training recipe of the study: its overrides, epochs, label-noise levels and budgets."""

    name: str
    overrides: tuple[str, ...]
    epochs: int
    noise: tuple[float, ...]
    budgets: tuple[float, ...]
    methods: tuple[str, ...]
    seconds_per_epoch: float  # a full-data epoch on one thread of the 2-core machine, for the estimate


SCARCE = (*BASE, "data.train_size=6000")
RECIPES = {
    "scarce": Recipe(
        "scarce",
        SCARCE,
        20,
        (0.0, 0.2),
        (0.5, 0.6, 0.75),
        ("adapruner", "adapruner_paper", "rs2", "random_dynamic", "infobatch"),
        seconds_per_epoch=2.2,
    ),
    "noisy": Recipe(  # where choosing samples should matter most: 40% of the labels flipped
        "noisy", SCARCE, 20, (0.4,), (0.6,), ("adapruner", "adapruner_paper", "rs2"), seconds_per_epoch=2.2
    ),
    "rich": Recipe(  # four times the samples, where redundancy exists; clean labels
        "rich",
        (*BASE, "data.train_size=24000"),
        10,
        (0.0,),
        (0.5, 0.8),  # whole epochs of the 10: fewer epochs forwards exactly the budget
        ("adapruner", "rs2"),
        seconds_per_epoch=8.6,
    ),
}
CONVERGENCE = ("scarce", "rich")  # (the noisy recipe is the scarce one with more noise)
CONVERGENCE_SEEDS = (0, 1, 2)
STARTUP_SECONDS = 12.0  # importing torch and Lightning, the data, the test pass


@dataclass(frozen=True)
class Job:
    """One ``adapruner-train`` run."""

    setting: str
    arm: str
    budget: float
    seed: int
    overrides: tuple[str, ...]
    seconds: float  # the estimate

    @property
    def name(self) -> str:
        return f"{self.setting}/{self.arm}_b{self.budget:g}_seed{self.seed}"


def _setting(recipe: Recipe, noise: float, epochs: int | None = None) -> tuple[str, tuple[str, ...]]:
    epochs = epochs or recipe.epochs
    name = f"{recipe.name}_e{epochs}_noise{noise:g}"
    return name, (*recipe.overrides, f"trainer.max_epochs={epochs}", f"data.label_noise={noise}")


def _cost(recipe: Recipe, budget: float) -> float:
    return STARTUP_SECONDS + budget * recipe.epochs * recipe.seconds_per_epoch


def study_jobs(recipes: tuple[str, ...], seeds: tuple[int, ...]) -> Iterator[Job]:
    """Per recipe, label noise and seed: full data, fewer epochs at every budget, every method at every budget."""
    for recipe in (RECIPES[r] for r in recipes):
        for noise in recipe.noise:
            setting, common = _setting(recipe, noise)
            for seed in seeds:
                run = (*common, f"seed={seed}")
                yield Job(setting, "none", 1.0, seed, (*run, "pruning=none"), _cost(recipe, 1.0))
                for budget in recipe.budgets:
                    over = (*run, "pruning=shorter", f"pruning.budget={budget}")
                    yield Job(setting, "shorter", budget, seed, over, _cost(recipe, budget))
                    for method in recipe.methods:
                        over = (*run, f"pruning={method}", f"pruning.budget={budget}")
                        yield Job(setting, method, budget, seed, over, _cost(recipe, budget))


def convergence_jobs(recipes: tuple[str, ...], seeds: tuple[int, ...]) -> Iterator[Job]:
    """Full data at twice each recipe's epochs on clean labels: the recipe is converged if it is level."""
    for recipe in (RECIPES[r] for r in recipes):
        setting, common = _setting(recipe, 0.0, 2 * recipe.epochs)
        for seed in seeds:
            over = (*common, f"seed={seed}", "pruning=none")
            yield Job(setting, "none", 1.0, seed, over, _cost(recipe, 2.0))


# The AdaPruner variants the default was chosen from, at one budget, on validation accuracy (``--part variants``).
UNWEIGHTED = "pruning.callback.method.network_weights=none"
VARIANTS: dict[str, tuple[str, ...]] = {
    "paper": ("pruning=adapruner_paper",),
    "unweighted": ("pruning=adapruner_paper", UNWEIGHTED),
    "unweighted_step": ("pruning=adapruner_paper", UNWEIGHTED, "pruning.callback.schedule=step"),
    "unweighted_dynamic": ("pruning=adapruner_paper", UNWEIGHTED, "pruning.callback.method.selection=dynamic"),
    "unweighted_anneal": ("pruning=adapruner_paper", UNWEIGHTED, "pruning.callback.method.anneal=0.125"),
}
VARIANT_REFERENCES = ("shorter", "rs2", "random_dynamic", "infobatch")


def variant_jobs(seeds: tuple[int, ...], budget: float, variants: tuple[str, ...]) -> Iterator[Job]:
    recipe = RECIPES["scarce"]
    for noise in recipe.noise:
        setting, common = _setting(recipe, noise)
        for seed in seeds:
            run = (*common, f"seed={seed}")
            yield Job(setting, "none", 1.0, seed, (*run, "pruning=none"), _cost(recipe, 1.0))
            for arm in VARIANT_REFERENCES:
                over = (*run, f"pruning={arm}", f"pruning.budget={budget}")
                yield Job(setting, arm, budget, seed, over, _cost(recipe, budget))
            for variant in variants:
                name = f"adapruner-{variant}"
                over = (*run, *VARIANTS[variant], f"pruning.name={name}", f"pruning.budget={budget}")
                yield Job(setting, name, budget, seed, over, _cost(recipe, budget))


# Batch selection against fewer epochs at equal compute (``--part batch``): the scarce recipe, clean labels. A
# batch-selection run reads and scores every sample every epoch and trains on the highest-loss share of each batch;
# its budget is a share of full data's compute (a scored sample costs 1/3 of training on it), the random rule is
# the control at the same compute. Full data and fewer epochs run again in the same sweep, so wall times compare.
BATCH_BUDGETS = (0.6, 0.75)


def batch_jobs(seeds: tuple[int, ...]) -> Iterator[Job]:
    recipe = RECIPES["scarce"]
    setting, common = _setting(recipe, 0.0)
    for seed in seeds:
        run = (*common, f"seed={seed}")
        yield Job(setting, "none", 1.0, seed, (*run, "pruning=none"), _cost(recipe, 1.0))
        for budget in BATCH_BUDGETS:
            over = (*run, "pruning=shorter", f"pruning.budget={budget}")
            yield Job(setting, "shorter", budget, seed, over, _cost(recipe, budget))
            for rule in ("loss", "random"):
                arm = "batch" if rule == "loss" else "batch_random"
                over = (*run, "pruning=batch", f"pruning.name={arm}", f"pruning.callback.rule={rule}")
                yield Job(setting, arm, budget, seed, (*over, f"pruning.budget={budget}"), _cost(recipe, budget))


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def finished(results: Path) -> set[str]:
    """Names of the runs already in ``results``."""
    if not results.is_file():
        return set()
    return {json.loads(line)["name"] for line in results.read_text().splitlines() if line.strip()}


def run_job(job: Job, results: Path, runs_dir: Path, progress: Progress) -> None:
    run_dir = runs_dir / job.name
    cmd = [sys.executable, "-m", "lightning_adapruner.app.train", *job.overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    metrics_file = run_dir / "metrics.json"
    with progress.lock:
        if proc.returncode != 0 or not metrics_file.is_file():
            progress.failed.append(job.name)
            log = runs_dir / "failed" / f"{job.name.replace('/', '__')}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(proc.stdout[-5000:] + proc.stderr[-20000:])
            print(f"FAILED {job.name} (log: {log})", flush=True)
            return
        metrics = json.loads(metrics_file.read_text())
        for key in ("subset_path", "metrics_csv", "output_dir", "retrain_metrics_csv"):
            metrics.pop(key, None)  # machine paths: the run directory is not kept in git
        line = {"name": job.name, "setting": job.setting, "overrides": list(job.overrides), **metrics}
        with results.open("a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
        progress.done += 1
        minutes = (time.perf_counter() - progress.started) / 60
        print(
            f"[{progress.done}/{progress.total}, {minutes:.0f} min] {job.name}: test {metrics['test_acc']:.4f}, "
            f"val {metrics['val_acc']:.4f}, budget {metrics['budget_realised']:.4f}, {metrics['fit_time_s']:.0f} s",
            flush=True,
        )


def _converged(recipes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(r for r in recipes if r in CONVERGENCE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("study", "convergence", "variants", "batch"), default="study")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--budget", type=float, default=0.6, help="the variants' budget")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    parser.add_argument("--results", type=Path, default=None, help="default: benchmarks/results/<part>.jsonl")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    seeds = tuple(args.seeds)
    recipes = tuple(args.recipes)
    jobs = {
        "study": lambda: [*convergence_jobs(_converged(recipes), CONVERGENCE_SEEDS), *study_jobs(recipes, seeds)],
        "convergence": lambda: list(convergence_jobs(_converged(recipes), CONVERGENCE_SEEDS)),
        "variants": lambda: list(variant_jobs(seeds, args.budget, tuple(args.variants))),
        "batch": lambda: list(batch_jobs(seeds)),
    }[args.part]()
    results = args.results or RESULTS / f"{'study' if args.part == 'convergence' else args.part}.jsonl"
    done = finished(results)
    todo = [j for j in dict.fromkeys(jobs) if j.name not in done]  # (a run listed twice is one run)
    hours = sum(j.seconds for j in todo) / 3600 / max(args.jobs, 1)
    print(f"{args.part}: {len(jobs)} runs, {len(jobs) - len(todo)} done, {len(todo)} to run (about {hours:.1f} h "
          f"at {args.jobs} jobs) -> {results}")  # fmt: skip
    if args.dry_run:
        for job in todo:
            print("  ", job.name)
        return
    results.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress(len(todo))
    runs_dir = RESULTS / "runs" / args.part
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(lambda j: run_job(j, results, runs_dir, progress), sorted(todo, key=lambda j: -j.seconds)))
    print(f"{progress.done} runs in {(time.perf_counter() - progress.started) / 60:.1f} min; "
          f"{len(progress.failed)} failed: {progress.failed}")  # fmt: skip
    if not args.no_report and args.part != "convergence":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from study_tables import write_outputs

        write_outputs(results, part=args.part)
    if progress.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
