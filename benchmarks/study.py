"""The benchmark study: AdaPruner against full data and the baselines on Fashion-MNIST, from scratch.

One command runs every Hydra multirun of the study, then ``adapruner-report`` on each sweep, then writes
``study.md`` (the comparison the report does not make) and a plot::

    python benchmarks/study.py                          # the whole study into benchmarks/results/study/
    python benchmarks/study.py --seeds 0 --ratios 0.3 --methods none,adapruner,random --epochs 2 --out /tmp/s

The study: model ``mlp`` (784-256-256-10, SGD 0.1/0.9/5e-4, one-cycle), batch 256, ``--epochs`` epochs (default 4),
every method at every prune ratio and seed, twice: clean labels (``<out>/clean``) and 20% symmetric label
noise on the training part (``<out>/noise20``). Each run trains on 90% of the training split (the app
holds out 10% for validation), logs ``val/acc`` every epoch and tests the last epoch's weights.

At most ``--jobs`` (default 2) ``adapruner-train -m`` processes run at once, each single-threaded
(``num_threads=1``). A run whose ``metrics.json`` exists is not run again, so an interrupted study resumes
where it stopped; a run directory without it (a crash) is deleted and run again. ``--report-only``
skips training. Outputs: ``<out>/<setting>/report/`` (``adapruner-report``), ``<out>/study.md``,
``<out>/study_accuracy_delta.png``, ``<out>/logs/`` (one log per multirun) and, with ``--publish DIR``
(default ``benchmarks/results`` when ``--out`` is the default), copies of ``study.md`` and the plots in DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from lightning_adapruner.app.report import FULL_DATA_METHOD, Run, aggregate, find_runs, format_stat, method_order

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "study"
DEFAULT_PUBLISH = ROOT / "benchmarks" / "results"
METHODS = ("none", "adapruner", "adapruner_soft", "random", "random_dynamic", "el2n", "forgetting", "infobatch")
RECIPE = ("model=mlp", "data=fashion_mnist", "trainer=cpu", "logger=csv", "num_threads=1")
SUBDIR = "${pruning.name}_p${pruning.prune_ratio}_seed${seed}"  # no job number: resumable, one dir per run
PAIRS = (  # (a, b): the paired per-seed differences a - b in study.md; "none" is full data
    ("adapruner", "random"),
    ("adapruner", "random_dynamic"),
    ("adapruner_soft", "random"),
    ("adapruner", "none"),
    ("adapruner_soft", "none"),
    ("el2n", "none"),
)
COST = {"adapruner_soft": 2.0, "none": 1.0}  # relative run cost, for longest-first scheduling (pruned ~0.8)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def setting_name(noise: float) -> str:
    return "clean" if noise == 0 else f"noise{round(100 * noise)}"


@dataclass(frozen=True)
class Launch:
    """One ``adapruner-train -m`` call: one setting, one method, the cartesian product ratios x seeds."""

    setting: str
    noise: float
    method: str
    ratios: tuple[float, ...]  # empty for the full-data method (nothing to sweep)
    seeds: tuple[int, ...]

    @property
    def runs(self) -> int:
        return max(len(self.ratios), 1) * len(self.seeds)

    @property
    def cost(self) -> float:
        return self.runs * COST.get(self.method, 0.8)

    @property
    def tag(self) -> str:
        ratios = "+".join(str(r) for r in self.ratios) or "full"
        return f"{self.setting}_{self.method}_p{ratios}_s{'+'.join(map(str, self.seeds))}"


def run_dir(out: Path, setting: str, method: str, ratio: float, seed: int) -> Path:
    return out / setting / f"{method}_p{float(ratio)}_seed{seed}"


def train_command(launch: Launch, args: argparse.Namespace) -> list[str]:
    script = Path(sys.executable).with_name("adapruner-train")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "lightning_adapruner.app.train"]
    cmd = [*base, "-m", *RECIPE]
    cmd += [f"data.batch_size={args.batch_size}", f"trainer.max_epochs={args.epochs}"]
    cmd += ["trainer.enable_progress_bar=false", f"data.label_noise={launch.noise}"]
    cmd += [f"task_name=study_{launch.setting}", f"hydra.sweep.dir={args.out / launch.setting}"]
    cmd += [f"hydra.sweep.subdir={SUBDIR}", f"pruning={launch.method}"]
    if launch.ratios:
        cmd.append("pruning.prune_ratio=" + ",".join(str(r) for r in launch.ratios))
    cmd.append("seed=" + ",".join(str(s) for s in launch.seeds))
    return cmd


def plan(args: argparse.Namespace) -> tuple[list[Launch], int, int]:
    """The launches still needed (longest first), the number of runs missing and the number in the study."""
    launches, missing_total, total = [], 0, 0
    for noise in args.noise:
        setting = setting_name(noise)
        for method in args.methods:
            ratios = [0.0] if method == FULL_DATA_METHOD else args.ratios
            by_seeds: dict[tuple[int, ...], list[float]] = defaultdict(list)
            for ratio in ratios:
                seeds = []
                for seed in args.seeds:
                    total += 1
                    directory = run_dir(args.out, setting, method, ratio, seed)
                    if (directory / "metrics.json").is_file():
                        continue
                    if directory.exists():  # a crashed or interrupted run: start it again from scratch
                        shutil.rmtree(directory)
                    seeds.append(seed)
                if seeds:
                    by_seeds[tuple(seeds)].append(ratio)
                    missing_total += len(seeds)
            for seeds, rs in by_seeds.items():
                swept = () if method == FULL_DATA_METHOD else tuple(rs)
                launches.append(Launch(setting, noise, method, swept, seeds))
    launches.sort(key=lambda launch: -launch.cost)
    return launches, missing_total, total


def count_done(args: argparse.Namespace) -> dict[str, int]:
    return {setting_name(n): sum(1 for _ in (args.out / setting_name(n)).glob("*/metrics.json")) for n in args.noise}


def run_all(launches: list[Launch], args: argparse.Namespace, total: int) -> list[tuple[Launch, int, str]]:
    """Run the launches on ``args.jobs`` worker threads (one subprocess each); returns the failures."""
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    queue = list(launches)
    lock = threading.Lock()
    failures: list[tuple[Launch, int, str]] = []
    running: dict[str, float] = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()

    def stamp() -> str:
        return time.strftime("%H:%M:%S") + f" +{(time.perf_counter() - start) / 60:.1f} min"

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                launch = queue.pop(0)
                running[launch.tag] = time.perf_counter()
            cmd = train_command(launch, args)
            log_path = logs / f"{launch.tag}.log"
            print(f"[study {stamp()}] start {launch.tag} ({launch.runs} runs): {shlex.join(cmd)}", flush=True)
            t0 = time.perf_counter()
            with log_path.open("w") as log:
                rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
            with lock:
                running.pop(launch.tag, None)
                status = "done" if rc == 0 else f"FAILED (exit {rc}, log {log_path})"
                if rc != 0:
                    tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-40:])
                    failures.append((launch, rc, tail))
            print(f"[study {stamp()}] {status}: {launch.tag} in {time.perf_counter() - t0:.0f} s", flush=True)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, args.jobs))]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        deadline = time.perf_counter() + args.progress_every
        while time.perf_counter() < deadline and any(t.is_alive() for t in threads):
            time.sleep(1.0)
        done = count_done(args)
        with lock:
            now_running = ", ".join(sorted(running)) or "-"
        parts = ", ".join(f"{k} {v}" for k, v in done.items())
        print(f"[study {stamp()}] {sum(done.values())}/{total} runs done ({parts}); running: {now_running}", flush=True)
    return failures


# ------------------------------------------------------------------------------------------------ study.md


def _pp(value: float | None, digits: int = 2, sign: bool = True) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.{digits}f}" if sign else f"{100 * value:.{digits}f}"


def _pp_stat(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    std = f"{100 * statistics.stdev(values):.2f}" if len(values) > 1 else "n/a"
    return f"{100 * mean:+.2f} ± {std}"


def setting_section(setting: str, runs: list[Run]) -> list[str]:
    rows = aggregate(runs)
    full = next((r for r in rows if r.method == FULL_DATA_METHOD), None)
    full_acc = full.test_acc.mean if full is not None else None
    noise = setting.removeprefix("noise")
    title = "clean labels" if setting == "clean" else f"{noise}% symmetric label noise on the training part"
    lines = [f"### Results: {title} (`{setting}`)", ""]
    if full is not None:
        lines += [
            f"Full data (`none`): test accuracy {100 * full.test_acc.mean:.2f}% ± "
            f"{100 * (full.test_acc.std or 0.0):.2f} over seeds {list(full.seeds)}, "
            f"{full.samples_forwarded.mean:,.0f} samples forwarded, {format_stat(full.wall_time_s, 1)} s per run.",
            "",
        ]
    lines += [
        "| method | prune ratio | n | test acc % (mean ± std) | Δ vs full (pp) | realised prune ratio "
        "| forwarded vs full | wall s (mean ± std) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        acc = row.test_acc
        acc_text = (
            "n/a"
            if acc.mean is None
            else f"{100 * acc.mean:.2f} ± " + ("n/a" if acc.std is None else f"{100 * acc.std:.2f}")
        )
        delta = None if acc.mean is None or full_acc is None else acc.mean - full_acc
        realised = row.prune_ratio_realised.mean
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{row.method}`",
                    "0 (full)" if row.method == FULL_DATA_METHOD else f"{row.prune_ratio_target:g}",
                    str(row.n),
                    acc_text,
                    "—" if row.method == FULL_DATA_METHOD else _pp(delta),
                    "n/a" if realised is None else f"{realised:.3f}",
                    "n/a" if row.forwarded_vs_full is None else f"{row.forwarded_vs_full:.1%}",
                    format_stat(row.wall_time_s, 1),
                ]
            )
            + " |"
        )
    lines.append("")

    # pivot: Δ vs full data, method x ratio
    ratios = sorted({r.prune_ratio_target for r in rows if r.method != FULL_DATA_METHOD})
    methods = sorted({r.method for r in rows if r.method != FULL_DATA_METHOD}, key=method_order)
    cell = {(r.method, r.prune_ratio_target): r for r in rows}
    lines += [
        "Test accuracy difference to full data in percentage points (mean over seeds; best method per ratio in bold):",
        "",
        "| method | " + " | ".join(f"p = {r:g}" for r in ratios) + " |",
        "|---|" + "---|" * len(ratios),
    ]
    best = {}
    for ratio in ratios:
        accs = [(cell[(m, ratio)].test_acc.mean, m) for m in methods if (m, ratio) in cell]
        accs = [a for a in accs if a[0] is not None]
        best[ratio] = max(accs)[1] if accs else None
    for method in methods:
        cells = []
        for ratio in ratios:
            row = cell.get((method, ratio))
            if row is None or row.test_acc.mean is None or full_acc is None:
                cells.append("n/a")
                continue
            text = _pp(row.test_acc.mean - full_acc)
            cells.append(f"**{text}**" if best[ratio] == method else text)
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    lines.append("")

    # paired per-seed comparisons (same seed: same split, noise, initial weights)
    by_key = {(r.method, round(r.prune_ratio_target, 6), r.seed): r.test_acc for r in runs}
    full_by_seed = {r.seed: r.test_acc for r in runs if r.method == FULL_DATA_METHOD}
    present = set(methods) | ({FULL_DATA_METHOD} if full_by_seed else set())
    pairs = [(a, b) for a, b in PAIRS if a in present and b in present]
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    if pairs:
        lines += [
            "Paired differences per seed in pp (same seed = same split, label noise and initial weights): "
            "mean ± std over seeds, and in brackets on how many seeds the first method is ahead:",
            "",
            "| p | " + " | ".join(f"`{a}` − {'full' if b == FULL_DATA_METHOD else f'`{b}`'}" for a, b in pairs) + " |",
            "|---" * (len(pairs) + 1) + "|",
        ]
        for ratio in ratios:
            key = round(ratio, 6)
            cells = [f"{ratio:g}"]
            for a, b in pairs:
                diffs = []
                for seed in seeds:
                    acc_a = by_key.get((a, key, seed))
                    acc_b = full_by_seed.get(seed) if b == FULL_DATA_METHOD else by_key.get((b, key, seed))
                    if acc_a is not None and acc_b is not None:
                        diffs.append(acc_a - acc_b)
                wins = sum(d > 0 for d in diffs)
                cells.append(f"{_pp_stat(diffs)} ({wins}/{len(diffs)})" if diffs else "n/a")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")

    # samples forwarded at equal ratio
    lines += ["Samples forwarded at equal prune ratio, relative to `random` (static) at that ratio:", ""]
    ref_method = "random" if "random" in methods else (methods[0] if methods else None)
    for ratio in ratios:
        ref = cell.get((ref_method, ratio))
        if ref is None or not ref.samples_forwarded.mean:
            continue
        parts = []
        for method in methods:
            row = cell.get((method, ratio))
            if row is None or row.samples_forwarded.mean is None:
                continue
            parts.append(f"`{method}` {row.samples_forwarded.mean / ref.samples_forwarded.mean:.3f}")
        lines.append(f"- p = {ratio:g}: " + ", ".join(parts))
    lines.append("")
    return lines


def missing_section(args: argparse.Namespace, setting: str, runs: list[Run], skipped: list) -> list[str]:
    have = {(r.method, round(r.prune_ratio_target, 6), r.seed) for r in runs}
    missing = []
    for method in args.methods:
        for ratio in [0.0] if method == FULL_DATA_METHOD else args.ratios:
            for seed in args.seeds:
                if (method, round(ratio, 6), seed) not in have:
                    missing.append(f"`{method}` p={ratio:g} seed {seed}")
    lines = []
    if missing:
        lines += [f"**Missing runs ({len(missing)}):** " + ", ".join(missing) + "."]
        if skipped:
            lines[-1] += " Run directories without `metrics.json` (crashed; see `logs/`): " + ", ".join(
                f"`{s.name}`" for s in sorted(skipped)
            )
        lines.append("")
    return lines


def flipped_section(args: argparse.Namespace, noise: float, runs: list[Run]) -> list[str]:
    """How strongly each method's final kept set avoids the flipped labels (from the exported subsets)."""
    import torch

    from lightning_adapruner import read_pruned_subset
    from lightning_adapruner.app.data import FashionMNISTDataModule

    masks: dict[int, torch.Tensor] = {}
    shares: dict[tuple[str, float], list[float]] = defaultdict(list)
    for run in runs:
        if run.method == FULL_DATA_METHOD or run.subset_path is None or run.seed is None:
            continue
        if run.seed not in masks:
            dm = FashionMNISTDataModule(data_dir=str(ROOT / "data"), label_noise=noise, seed=run.seed)
            dm.prepare_data()
            dm.setup("fit")
            masks[run.seed] = dm.noisy_mask.bool()
        mask = masks[run.seed]
        try:
            kept = read_pruned_subset(run.subset_path).kept_indices
        except (OSError, KeyError, ValueError):
            continue
        pruned = torch.ones_like(mask)
        pruned[kept] = False
        if pruned.any():
            rate = mask[pruned].float().mean().item() / mask.float().mean().item()
            shares[(run.method, run.prune_ratio_target)].append(rate)
    if not shares:
        return []
    ratios = sorted({r for _, r in shares})
    methods = sorted({m for m, _ in shares}, key=method_order)
    lines = [
        "Flipped labels among the samples each method's final subset leaves out, as a multiple of their base "
        f"rate ({noise:.0%}); 1.0 = no better than chance, higher = the method drops noisy labels "
        "(mean over seeds; `infobatch` exports its highest-last-loss samples, not what it trained on):",
        "",
        "| method | " + " | ".join(f"p = {r:g}" for r in ratios) + " |",
        "|---|" + "---|" * len(ratios),
    ]
    for method in methods:
        cells = [f"{statistics.fmean(shares[(method, r)]):.2f}" if shares.get((method, r)) else "n/a" for r in ratios]
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def plot_delta(sections: dict[str, list[Run]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sections), figsize=(5.2 * len(sections), 3.9), squeeze=False, sharey=True)
    for ax, (setting, runs) in zip(axes.flat, sections.items()):
        full = [r.test_acc for r in runs if r.method == FULL_DATA_METHOD]
        if not full:
            continue
        base = statistics.fmean(full)
        ax.axhline(0.0, color="0.3", ls="--", lw=1.2, label=f"full data ({100 * base:.2f}%)")
        if len(full) > 1:
            sd = 100 * statistics.stdev(full)
            ax.axhspan(-sd, sd, color="0.6", alpha=0.3, lw=0)
        rows = [r for r in aggregate(runs) if r.method != FULL_DATA_METHOD and r.test_acc.mean is not None]
        methods = sorted({r.method for r in rows}, key=method_order)
        for i, method in enumerate(methods):
            mine = [r for r in rows if r.method == method]
            pts = sorted((r.prune_ratio_target, r.test_acc.mean, r.test_acc.std or 0.0) for r in mine)
            x = [p[0] + (i - len(methods) / 2) * 0.004 for p in pts]
            y = [100 * (p[1] - base) for p in pts]
            e = [100 * p[2] for p in pts]
            ax.errorbar(x, y, yerr=e, marker="os^Dv<>p"[i % 8], capsize=2, lw=1.3, ms=4, label=method)
        ax.set(title=f"Fashion-MNIST, MLP: {setting}", xlabel="target prune ratio", ylabel="test acc − full data (pp)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize="x-small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_study_md(args: argparse.Namespace, command: str) -> Path:
    sections: dict[str, list[Run]] = {}
    skipped: dict[str, list] = {}
    for noise in args.noise:
        setting = setting_name(noise)
        runs, skipped[setting] = find_runs(args.out / setting, exclude=args.out / setting / "report")
        if runs:
            sections[setting] = runs
    timing = args.out / "study_timing.json"
    history = json.loads(timing.read_text()) if timing.is_file() else []
    trained_by = history[-1]["command"] if history else command  # --report-only reruns keep the training command
    lines = [
        "<!-- generated by benchmarks/study.py; do not edit by hand -->",
        "",
        f"Command: `{trained_by}`  ",
        f"Recipe: Fashion-MNIST (54,000 train / 6,000 validation / 10,000 test), `model=mlp` (784-256-256-10), "
        f"batch {args.batch_size}, {args.epochs} epochs, SGD lr 0.1 one-cycle, momentum 0.9, wd 5e-4, "
        "`num_threads=1`; test accuracy of the last epoch's weights. Seeds "
        f"{','.join(map(str, args.seeds))}; prune ratios {','.join(f'{r:g}' for r in args.ratios)}.  ",
    ]
    lines += [
        "Columns: *realised prune ratio* is the share of the training split outside the final kept set (the last "
        "epoch's for sampler-mode methods; the exported subset the retrain uses for `adapruner_soft`; 0 for "
        "`infobatch`, whose last epoch is on full data). *Forwarded vs full* counts every training sample "
        "forwarded, the retrain of `adapruner_soft` included. Wall time is per run (training, validation, "
        "test) on a shared machine: noisy.  ",
    ]
    if history:
        parts = ", ".join(f"{h['wall_s'] / 60:.1f} min ({h['runs_started']} runs started)" for h in history)
        total = sum(h["wall_s"] for h in history) / 60
        lines.append(f"Wall time of the training invocations: {total:.1f} min in all: {parts}; {args.jobs} at once.")
    lines.append("")
    for setting, runs in sections.items():
        lines += setting_section(setting, runs)
        lines += missing_section(args, setting, runs, skipped.get(setting, []))
        noise = next(n for n in args.noise if setting_name(n) == setting)
        if noise > 0:
            lines += flipped_section(args, noise, runs)
    md = args.out / "study.md"
    md.write_text("\n".join(lines).rstrip() + "\n")
    if sections:
        plot_delta(sections, args.out / "study_accuracy_delta.png")
    return md


# ------------------------------------------------------------------------------------------------ main


def copy_small(src: Path, dst: Path, limit: int = 200_000) -> None:
    """Copy a PNG; one over ``limit`` bytes is written with a 256-colour palette instead (plots stay legible)."""
    if src.stat().st_size <= limit:
        shutil.copyfile(src, dst)
        return
    from PIL import Image

    with Image.open(src) as image:
        image.convert("RGB").quantize(colors=256).save(dst, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="study folder (default: %(default)s)")
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="comma-separated (default 0,1,2)")
    parser.add_argument("--ratios", type=_floats, default=[0.1, 0.2, 0.3, 0.5], help="default 0.1,0.2,0.3,0.5")
    parser.add_argument(
        "--methods", type=lambda s: [m for m in s.split(",") if m], default=list(METHODS), help=",".join(METHODS)
    )
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4: the time budget)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--noise", type=_floats, default=[0.0, 0.2], help="label-noise settings (default 0,0.2)")
    parser.add_argument("--jobs", type=int, default=2, help="adapruner-train processes at once (default 2)")
    parser.add_argument("--progress-every", type=float, default=60.0, help="seconds between progress lines")
    parser.add_argument("--report-only", action="store_true", help="no training: reports and study.md only")
    parser.add_argument(
        "--publish",
        type=Path,
        default=None,
        help="copy the plots here (default: benchmarks/results when --out is the default, else nowhere)",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {','.join(METHODS)}")
    args.out = args.out.resolve()
    publish = args.publish if args.publish is not None else (DEFAULT_PUBLISH if args.out == DEFAULT_OUT else None)
    argv_text = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/study.py", *argv_text])

    start = time.perf_counter()
    failures: list[tuple[Launch, int, str]] = []
    if not args.report_only:
        launches, missing, total = plan(args)
        print(
            f"[study] {total} runs in the study, {total - missing} already done, {missing} to run "
            f"in {len(launches)} multiruns, {args.jobs} at once; out: {args.out}",
            flush=True,
        )
        failures = run_all(launches, args, total) if launches else []
        timing = args.out / "study_timing.json"
        history = json.loads(timing.read_text()) if timing.is_file() else []
        history.append(
            {
                "wall_s": round(time.perf_counter() - start, 1),
                "runs_started": missing,
                "runs_failed_launches": [launch.tag for launch, _, _ in failures],
                "command": command,
                "finished": time.strftime("%F %T"),
            }
        )
        timing.write_text(json.dumps(history, indent=2) + "\n")

    for noise in args.noise:
        sweep = args.out / setting_name(noise)
        if not sweep.is_dir():
            continue
        report = Path(sys.executable).with_name("adapruner-report")
        cmd = [str(report)] if report.exists() else [sys.executable, "-m", "lightning_adapruner.app.report"]
        print(f"[study] {shlex.join([*cmd, str(sweep)])}", flush=True)
        subprocess.call([*cmd, str(sweep)], cwd=ROOT)
    md = write_study_md(args, command)
    print(f"[study] wrote {md}", flush=True)

    if publish is not None:
        publish.mkdir(parents=True, exist_ok=True)
        copies = {args.out / "study_accuracy_delta.png": "study_accuracy_delta.png"}
        for noise in args.noise:
            setting = setting_name(noise)
            copies[args.out / setting / "report" / "accuracy_vs_prune_ratio.png"] = f"study_{setting}_accuracy.png"
        # the keep-share schedule is the same with and without label noise: one copy (the first setting's)
        first = setting_name(args.noise[0])
        copies[args.out / first / "report" / "keep_share_per_epoch.png"] = "study_keep_share_per_epoch.png"
        for src, name in copies.items():
            if src.is_file():
                copy_small(src, publish / name)
                print(f"[study] copied {publish / name} ({(publish / name).stat().st_size / 1024:.0f} KB)", flush=True)
        shutil.copyfile(md, publish / "study.md")

    print(f"[study] total wall time {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    for launch, rc, tail in failures:
        print(f"[study] FAILED: {launch.tag} exit {rc}\n{shlex.join(train_command(launch, args))}\n{tail}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
