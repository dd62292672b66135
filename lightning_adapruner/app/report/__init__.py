"""``adapruner-report``: a markdown report and PNG plots from a Hydra sweep of pruning runs.

Every run of a sweep leaves a ``metrics.json`` in its run directory (at most three levels below the sweep
directory). The report finds them, groups the runs by *setting* (dataset, model, epochs, label noise), method
and target prune ratio, and writes ``report.md`` plus the plots of :data:`PLOT_FILES` into
``<sweep_dir>/report/`` (or ``--out``)::

    adapruner-report multirun/2024-05-01/12-00-00
    adapruner-report multirun/2024-05-01/12-00-00 --out docs/sweep --tolerance 0.002

Per setting, ``report.md`` holds the method x prune-ratio table (test accuracy mean ± std over seeds, realised
prune ratio, samples forwarded, wall time), the test accuracy paired seed by seed with full data, and each
method's largest lossless saving (the most samples forwarded saved at a ratio whose mean accuracy is within
``--tolerance`` of full data's). Methods are ordered full data first, then by name.

Layout, one concept per module:

- :mod:`~lightning_adapruner.app.report.runs`: loading ``metrics.json`` files (:func:`find_runs`, :class:`Run`);
- :mod:`~lightning_adapruner.app.report.artefacts`: loading the files a run points to (``metrics.csv``, the
  pruned subset through :func:`lightning_adapruner.read_pruned_subset`);
- :mod:`~lightning_adapruner.app.report.aggregation` and :mod:`~lightning_adapruner.app.report.compare`: pure
  aggregation (:func:`aggregate`) and the comparisons against full data (:func:`paired_differences`,
  :func:`lossless_savings`, :func:`pareto_panels`);
- :mod:`~lightning_adapruner.app.report.markdown`: pure rendering (:func:`render_markdown`);
- :mod:`~lightning_adapruner.app.report.plots`: plotting (matplotlib imported inside the plotting functions);
- :mod:`~lightning_adapruner.app.report.build`: :func:`build_report` and :func:`main`.
"""

from lightning_adapruner.app.report.aggregation import (
    Stat,
    TableRow,
    aggregate,
    duplicate_seed_notes,
    format_ratio,
    group_runs,
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
    lossless_savings,
    paired_differences,
    pareto_panels,
)
from lightning_adapruner.app.report.markdown import ReportInputs, format_stat, render_markdown
from lightning_adapruner.app.report.plots import PLOT_FILES
from lightning_adapruner.app.report.runs import Run, Setting, Skipped, find_runs, parse_run
from lightning_adapruner.app.summary import FULL_DATA_METHOD, METRICS_FILE

__all__ = [
    "FULL_DATA_METHOD",
    "LOSSLESS_TOLERANCE",
    "METRICS_FILE",
    "PLOT_FILES",
    "LosslessSaving",
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
    "aggregate",
    "build_report",
    "duplicate_seed_notes",
    "find_runs",
    "format_ratio",
    "format_stat",
    "group_runs",
    "lossless_savings",
    "main",
    "mean_per_epoch",
    "mean_std",
    "method_order",
    "paired_differences",
    "parse_metrics_csv",
    "parse_run",
    "pareto_panels",
    "per_class_share",
    "render_markdown",
]
