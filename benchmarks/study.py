"""The study: every pruning method in one harness on a converged Fashion-MNIST recipe, and the AdaPruner ablation.

One command regenerates the whole study; it is resumable (a run whose ``metrics.json`` exists is skipped, so an
interrupted study, or one whose results were committed on another machine, continues where it stopped)::

    python benchmarks/study.py                  # the study: 237 runs, about 70 minutes on 2 CPU cores (--jobs 2)
    python benchmarks/study.py --ablation       # the AdaPruner ablation on the quick recipe, about 25 minutes
    python benchmarks/study.py --dry-run        # list the runs and what is already done

The recipe: a data-scarce Fashion-MNIST, ``data.train_size=6000`` samples drawn (per seed) from the 54 000-sample
train split, validated on the 6 000 held out, tested on the 10 000 test images; a LeNet-size CNN (62k
parameters), one-cycle SGD (peak lr 0.1, momentum 0.9, weight decay 5e-4), batch 128, ``--epochs`` epochs (20).
Why this size: on the full 54 000 samples the CNN is not converged within the epochs two CPU cores allow
(full data, 5 epochs: 89.57% test; 10 epochs: 90.59%), and an unconverged recipe rewards whatever sees the most
steps. At 6 000 samples it is: full data at twice the epochs (40) is run too, to show it. Clean labels and 20%
symmetric label noise, seeds 0, 1, 2 (paired: a seed fixes the weights, the subsample, the split and the noise
for every method). Every method runs in the same harness (warm-up epoch on full data, then the keep share down
to ``1 - p`` over half the remaining epochs), so at one prune ratio every method forwards about the same number
of samples (the realised count is reported); prune ratios 0.1, 0.3, 0.5, 0.7; the paper's soft procedure
(``adapruner_soft``: every sample forwarded, then a retrain on the subset) at 0.3 and 0.7 only, as it costs about
twice a full run. The test set is read once per run, with the last epoch's weights; choices between methods and
variants are made on ``val/acc`` (logged every 5 epochs), never on the test set.

The ablation (``--ablation``) ran the AdaPruner variants of ``ABLATION`` and four references on a quicker recipe
(10 epochs, seeds 0 and 1, p = 0.5 and 0.7); its ``report/ablation.md`` ranks them by mean validation accuracy
minus full data's. Its favourite (unweighted, annealed) then lost to the paper's settings on this recipe's
validation accuracy in 7 of 8 cells, so ``pruning=adapruner`` keeps the paper's settings (BENCHMARKS.md).

Each run is ``adapruner-train`` in its own process (``--jobs`` at a time, one torch thread each) and leaves
``<out>/<setting>/<method>_p<ratio>_seed<seed>/metrics.json`` (paths made relative, so the directory can be
committed and moved) beside its ``csv/metrics.csv`` and ``pruned_subset.json``; the tensors (``*.pt``) and
Hydra's outputs stay out of git. At the end ``adapruner-report`` writes ``<out>/report/report.md`` and its plots.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2)
NOISE = (0.0, 0.2)
RATIOS = (0.1, 0.3, 0.5, 0.7)
SOFT_RATIOS = (0.3, 0.7)
METHODS = (
    "random",
    "random_dynamic",
    "rs2",
    "el2n",
    "forgetting",
    "infobatch",
    "seta",
    "adapruner_paper",
    "adapruner",
)
RECIPE = (
    "data=fashion_mnist",
    "model=lenet",
    "data.batch_size=128",
    "data.train_size=6000",
    "trainer.check_val_every_n_epoch=5",
    "num_threads=1",
    "callbacks=none",
    "logger=csv",
    "trainer.enable_checkpointing=false",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
)
# The ablation: AdaPruner variants on the quick recipe, each change alone and in combination (see README).
UNWEIGHTED = "pruning.callback.method.network_weights=none"
DYNAMIC = "pruning.callback.method.selection=dynamic"
INIT0 = "pruning.callback.method.init_logit=0.0"
ANNEAL = "pruning.callback.method.anneal=0.125"
ABLATION = {  # AdaPruner variants on the quick recipe, each change alone and then in combination (see README)
    "paper": [],
    "normalized": ["pruning.callback.method.network_weights=normalized"],
    "unweighted": [UNWEIGHTED],
    "unweighted_anneal": [UNWEIGHTED, ANNEAL],
    "dynamic": [UNWEIGHTED, DYNAMIC],
    "dynamic_init0_lr1": [UNWEIGHTED, DYNAMIC, INIT0, "pruning.callback.method.mask_lr=1.0"],
    "dynamic_init0_lr10": [UNWEIGHTED, DYNAMIC, INIT0, "pruning.callback.method.mask_lr=10.0"],
    "dynamic_init0_lr1_anneal": [UNWEIGHTED, DYNAMIC, INIT0, "pruning.callback.method.mask_lr=1.0", ANNEAL],
}
ABLATION_REFERENCES = ("none", "rs2", "infobatch", "random_dynamic")


@dataclass(frozen=True)
class Job:
    """One ``adapruner-train`` run of the study."""

    setting: str
    name: str
    overrides: tuple[str, ...]
    cost: float  # full-data epochs it forwards, to print an estimate

    def directory(self, out: Path) -> Path:
        return out / self.setting / self.name


@dataclass
class Progress:
    done: int = 0
    failed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


def forwarded_share(ratio: float, epochs: int) -> float:
    """The harness's share of full data forwarded at ``ratio`` (warm-up 1, step-down over half the rest)."""
    from lightning_adapruner import functional as F

    prune_epochs = max(1, (epochs - 1) // 2)
    return sum(F.keep_share_at(e, ratio, 1, prune_epochs) for e in range(epochs)) / epochs


def _cells(prefix: str, epochs: int, seeds: tuple[int, ...]) -> Iterator[tuple[str, tuple[str, ...], int, Job]]:
    """Per label noise and seed: the setting, its common overrides, the seed and its full-data job."""
    for noise in NOISE:
        setting = f"{prefix}lenet_e{epochs}_noise{noise:g}"
        common = (*RECIPE, f"trainer.max_epochs={epochs}", f"data.label_noise={noise}")
        for seed in seeds:
            full = Job(setting, f"none_p0_seed{seed}", (*common, "pruning=none", f"seed={seed}"), epochs)
            yield setting, common, seed, full


def study_jobs(epochs: int) -> list[Job]:
    jobs: list[Job] = []
    for setting, common, seed, full in _cells("", epochs, SEEDS):
        jobs.append(full)
        for method in METHODS:
            for ratio in RATIOS:
                over = (*common, f"pruning={method}", f"pruning.prune_ratio={ratio}", f"seed={seed}")
                jobs.append(
                    Job(setting, f"{method}_p{ratio}_seed{seed}", over, epochs * forwarded_share(ratio, epochs))
                )
        for ratio in SOFT_RATIOS:
            over = (*common, "pruning=adapruner_soft", f"pruning.prune_ratio={ratio}", f"seed={seed}")
            jobs.append(Job(setting, f"adapruner_soft_p{ratio}_seed{seed}", over, epochs * (2 - ratio)))
    long = 2 * epochs  # the convergence check: full data at twice the epochs
    for seed in SEEDS:
        over = (*RECIPE, f"trainer.max_epochs={long}", "data.label_noise=0.0", "pruning=none", f"seed={seed}")
        jobs.append(Job(f"lenet_e{long}_noise0", f"none_p0_seed{seed}", over, long))
    return jobs


def ablation_jobs(epochs: int, seeds: tuple[int, ...]) -> list[Job]:
    jobs: list[Job] = []
    for setting, common, seed, full in _cells("ablation_", epochs, seeds):
        jobs.append(full)
        for ratio in (0.5, 0.7):
            share = epochs * forwarded_share(ratio, epochs)
            for variant, extra in ABLATION.items():
                name = f"adapruner-{variant}"
                over = (*common, "pruning=adapruner_paper", f"pruning.name={name}", *extra,
                        f"pruning.prune_ratio={ratio}", f"seed={seed}")  # fmt: skip
                jobs.append(Job(setting, f"{name}_p{ratio}_seed{seed}", over, share))
            for method in ABLATION_REFERENCES[1:]:
                over = (*common, f"pruning={method}", f"pruning.prune_ratio={ratio}", f"seed={seed}")
                jobs.append(Job(setting, f"{method}_p{ratio}_seed{seed}", over, share))
    return jobs


def run_job(job: Job, out: Path, progress: Progress, total: int) -> None:
    run_dir = job.directory(out)
    if (run_dir / "metrics.json").is_file():
        return
    if run_dir.exists():  # a run interrupted half-way: start it again
        shutil.rmtree(run_dir)
    cmd = [sys.executable, "-m", "lightning_adapruner.app.train", *job.overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not (run_dir / "metrics.json").is_file():
        progress.failed.append(job.name)
        (out / "failed").mkdir(parents=True, exist_ok=True)
        (out / "failed" / f"{job.setting}_{job.name}.log").write_text(proc.stdout[-5000:] + proc.stderr[-20000:])
        print(f"FAILED {job.setting}/{job.name} (log in {out / 'failed'})", flush=True)
        return
    make_portable(run_dir)
    progress.done += 1
    minutes = (time.perf_counter() - progress.started) / 60
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"[{progress.done}/{total}, {minutes:.0f} min] {job.setting}/{job.name}: test_acc {metrics['test_acc']:.4f}, "
          f"saved {metrics['saved_share']:.3f}, {metrics['wall_time_s']:.0f} s", flush=True)  # fmt: skip


def make_portable(run_dir: Path) -> None:
    """Paths in metrics.json relative to the run directory; Hydra's own outputs and checkpoints removed."""
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text())
    for key, value in list(metrics.items()):
        if isinstance(value, str) and value.startswith("/"):
            with contextlib.suppress(ValueError):
                metrics[key] = os.path.relpath(value, run_dir)
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    for leftover in ("checkpoints", ".hydra", "train.log"):
        target = run_dir / leftover
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def ablation_table(out: Path) -> str:
    """The ablation's selection table: per variant and setting the mean validation and test accuracy over seeds,
    ranked by the mean validation accuracy over every setting (the choice is made on validation only)."""
    import statistics
    from collections import defaultdict

    cells: dict[str, dict[tuple[float, float], list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(out.glob("ablation_*/*/metrics.json")):
        m = json.loads(path.read_text())
        key = (float(m.get("label_noise", 0.0)), float(m["prune_ratio_target"]))
        cells[m["method"]][key].append((m["val_acc"], m["test_acc"]))
    settings = sorted({k for per in cells.values() for k in per if k[1] > 0})
    full = {noise: statistics.mean(v for v, _ in cells["none"][(noise, 0.0)]) for noise, _ in settings}
    rows = []
    for method, per in cells.items():
        if method == "none":
            continue
        vals = [statistics.mean(v for v, _ in per[k]) - full[k[0]] for k in settings if per.get(k)]
        rows.append((statistics.mean(vals) if vals else float("nan"), method, per))
    head = " | ".join(f"noise {n:g}, p={p:g}: val / test" for n, p in settings)
    lines = [f"| method | mean val - full | {head} |", "|---" * (len(settings) + 2) + "|"]
    for score, method, per in sorted(rows, reverse=True):
        parts = []
        for k in settings:
            got = per.get(k, [])
            parts.append(
                f"{statistics.mean(v for v, _ in got):.4f} / {statistics.mean(t for _, t in got):.4f}" if got else "-"
            )
        lines.append(f"| {method} | {score * 100:+.2f} pp | " + " | ".join(parts) + " |")
    full_row = " | ".join(
        f"{statistics.mean(v for v, _ in cells['none'][(n, 0.0)]):.4f} / "
        f"{statistics.mean(t for _, t in cells['none'][(n, 0.0)]):.4f}"
        for n, _ in settings
    )
    lines.append(f"| none (full data) | 0 | {full_row} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ablation", action="store_true", help="the AdaPruner ablation on the quick recipe")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the recipe (the ablation: --quick-epochs)")
    parser.add_argument("--quick-epochs", type=int, default=10, help="epochs of the ablation's quick recipe")
    parser.add_argument("--ablation-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/study[_ablation]")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    name = "ablation" if args.ablation else "study"
    out = args.out or ROOT / "benchmarks" / "results" / name
    jobs = ablation_jobs(args.quick_epochs, tuple(args.ablation_seeds)) if args.ablation else study_jobs(args.epochs)
    todo = [j for j in jobs if not (j.directory(out) / "metrics.json").is_file()]
    cost = sum(j.cost for j in todo)
    print(f"{name}: {len(jobs)} runs, {len(jobs) - len(todo)} done, {len(todo)} to run "
          f"({cost:.0f} full-data epoch equivalents) -> {out}")  # fmt: skip
    if args.dry_run:
        for j in todo:
            print("  ", j.setting, j.name)
        return
    progress = Progress()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(lambda j: run_job(j, out, progress, len(todo)), sorted(todo, key=lambda j: -j.cost)))
    print(f"{progress.done} runs in {(time.perf_counter() - progress.started) / 60:.1f} min; "
          f"{len(progress.failed)} failed: {progress.failed}")  # fmt: skip
    if not args.no_report:
        from lightning_adapruner.app.report import build_report

        report = build_report(out, out / "report")
        print(f"report: {report}")
        if not args.ablation and out == ROOT / "benchmarks" / "results" / "study":
            from study_tables import write_docs

            write_docs(out)
            print("README.md's results and BENCHMARKS.md's study section: rewritten")
        if args.ablation:
            table = ablation_table(out)
            (out / "report" / "ablation.md").write_text(table)
            if out == ROOT / "benchmarks" / "results" / "ablation":
                from study_tables import fill

                fill(ROOT / "BENCHMARKS.md", "ablation", table)
            print(table)
    if progress.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
