"""``adapruner-report``: a markdown report and PNG plots from a Hydra sweep of pruning runs, or a JSONL file of them.

Every run of a sweep leaves a ``metrics.json`` in its run directory (at most three levels below the sweep
directory). The report finds them (or reads one ``metrics.json`` object per line of a ``.jsonl`` file, plus the
run's ``name``), groups the runs into cells by *setting* (dataset, model, the setting's epochs, label noise),
method and budget (the share of full data's samples a run forwards; target prune ratio for sweeps from before
the budget keys), and writes ``report.md`` plus the plots of :data:`PLOT_FILES` into ``<sweep_dir>/report/``
(or ``--out``)::

    adapruner-report multirun/2024-05-01/12-00-00
    adapruner-report multirun/2024-05-01/12-00-00 --out docs/sweep --margin 0.3
    adapruner-report benchmarks/results/study.jsonl

Per setting, ``report.md`` holds the cell table (test accuracy mean ± std over seeds, budget and prune ratio,
samples forwarded, fit and wall time), every cell's test accuracy minus full data's paired by seed with its 95%
confidence interval, each method's largest lossless saving, and per budget, in words, whether pruning beats
training on all the data for fewer epochs (``method == "shorter"``). Definitions, stated under every table:
*lossless* is non-inferior at a 0.3 pp margin (the interval's lower bound >= -0.3 pp); *A beats B* when the
paired interval of A - B excludes 0.

Layout, one concept per module:

- :mod:`~lightning_adapruner.app.report.runs`: loading ``metrics.json`` files and JSONL files (:func:`find_runs`,
  :func:`load_runs_jsonl`, :class:`Run`);
- :mod:`~lightning_adapruner.app.report.artefacts`: loading the files a run points to (``metrics.csv``, the
  pruned subset through :func:`lightning_adapruner.read_pruned_subset`, its optional ``last_epoch``);
- :mod:`~lightning_adapruner.app.report.stats`: the paired 95% interval (:func:`paired_ci`) and its verdicts;
- :mod:`~lightning_adapruner.app.report.aggregation` and :mod:`~lightning_adapruner.app.report.compare`: pure
  aggregation (:func:`aggregate`, :func:`dedupe_runs`) and the comparisons against full data
  (:func:`paired_differences`, :func:`largest_lossless`, :func:`pareto_panels`);
- :mod:`~lightning_adapruner.app.report.verdicts`: per budget, which arm wins (:func:`budget_verdicts`);
- :mod:`~lightning_adapruner.app.report.timing`: whether the times were measured side by side
  (:func:`walltime_warning`);
- :mod:`~lightning_adapruner.app.report.markdown`: pure rendering (:func:`render_markdown`);
- :mod:`~lightning_adapruner.app.report.layout` and :mod:`~lightning_adapruner.app.report.plots`: where the
  points go (pure) and plotting (matplotlib imported inside the plotting functions);
- :mod:`~lightning_adapruner.app.report.build`: :func:`build_report` and :func:`main`.
"""

from lightning_adapruner.app.report.aggregation import (
    BY_BUDGET,
    BY_RATIO,
    Cell,
    Stat,
    TableRow,
    acc_by_seed,
    aggregate,
    dedupe_runs,
    duplicate_seed_notes,
    format_budget,
    format_ratio,
    group_runs,
    grouping_of,
    mean_per_epoch,
    mean_std,
    method_order,
    per_class_share,
)
from lightning_adapruner.app.report.artefacts import parse_metrics_csv
from lightning_adapruner.app.report.build import ReportError, build_report, main
from lightning_adapruner.app.report.compare import (
    LOSSLESS_TOLERANCE,
    LosslessSaving,
    PairedDiff,
    ParetoPanel,
    ParetoPoint,
    largest_lossless,
    lossless_savings,
    paired_differences,
    pareto_panels,
)
from lightning_adapruner.app.report.markdown import ReportInputs, format_stat, render_markdown
from lightning_adapruner.app.report.plots import PLOT_FILES
from lightning_adapruner.app.report.runs import (
    FEWER_EPOCHS_METHOD,
    Run,
    Setting,
    Skipped,
    find_runs,
    load_runs_jsonl,
    parse_run,
    sweep_label,
)
from lightning_adapruner.app.report.stats import (
    LOSSLESS_MARGIN_PP,
    PairedCI,
    format_ci,
    is_lossless,
    paired_ci,
    t_quantile_975,
    winner,
)
from lightning_adapruner.app.report.timing import walltime_warning
from lightning_adapruner.app.report.verdicts import budget_verdicts
from lightning_adapruner.app.summary import FULL_DATA_METHOD, METRICS_FILE

__all__ = [
    "BY_BUDGET",
    "BY_RATIO",
    "FEWER_EPOCHS_METHOD",
    "FULL_DATA_METHOD",
    "LOSSLESS_MARGIN_PP",
    "LOSSLESS_TOLERANCE",
    "METRICS_FILE",
    "PLOT_FILES",
    "Cell",
    "LosslessSaving",
    "PairedCI",
    "PairedDiff",
    "ParetoPanel",
    "ParetoPoint",
    "ReportError",
    "ReportInputs",
    "Run",
    "Setting",
    "Skipped",
    "Stat",
    "TableRow",
    "acc_by_seed",
    "aggregate",
    "budget_verdicts",
    "build_report",
    "dedupe_runs",
    "duplicate_seed_notes",
    "find_runs",
    "format_budget",
    "format_ci",
    "format_ratio",
    "format_stat",
    "group_runs",
    "grouping_of",
    "is_lossless",
    "largest_lossless",
    "load_runs_jsonl",
    "lossless_savings",
    "main",
    "mean_per_epoch",
    "mean_std",
    "method_order",
    "paired_ci",
    "paired_differences",
    "pareto_panels",
    "parse_metrics_csv",
    "parse_run",
    "per_class_share",
    "render_markdown",
    "sweep_label",
    "t_quantile_975",
    "walltime_warning",
    "winner",
]
