"""Whether a sweep's times can be compared (pure): runs measured side by side, or jobs that shared the machine.

A ratio of two runs' times means something only if the runs had the machine to themselves in turn. The report
warns (:func:`walltime_warning`) when runs overlapped in time (their ``[started_at, finished_at]`` windows
intersect: several jobs at once share the CPU), when runs lack those keys (nobody can tell), or when full data's
own time varies by more than :data:`FULL_DATA_SPREAD` across seeds (the machine's load changed under the sweep).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from lightning_adapruner.app.report.aggregation import setting_order
from lightning_adapruner.app.report.runs import Run, Setting
from lightning_adapruner.app.summary import FULL_DATA_METHOD

FULL_DATA_SPREAD = 0.10  # full data's time may vary this much across seeds (max / min - 1) on a quiet machine
SIDE_BY_SIDE_TOOL = "python benchmarks/walltime.py"
TITLE_WARNING = "not measured side by side: ratios include machine load (see report.md)"


def overlapping_runs(runs: Sequence[Run]) -> list[Run]:
    """The runs whose ``[started_at, finished_at]`` window overlaps another run's (touching ends do not count);
    runs without both keys are left out.

    Args:
        runs: the runs of the sweep.

    Example::

        >>> runs = [Run(n, "none", 0, 0.9, started_at=s, finished_at=f) for n, s, f in
        ...         (("a", 0, 10), ("b", 10, 20), ("c", 15, 30), ("d", 40, 50), ("e", 0, None))]
        >>> [run.name for run in overlapping_runs(runs)]
        ['b', 'c']
    """
    timed = sorted(
        (r for r in runs if r.started_at is not None and r.finished_at is not None),
        key=lambda r: (r.started_at, r.finished_at),
    )
    overlapping = []
    latest_end = float("-inf")
    for i, run in enumerate(timed):
        before = run.started_at < latest_end  # type: ignore[operator]
        after = i + 1 < len(timed) and timed[i + 1].started_at < run.finished_at  # type: ignore[operator]
        if before or after:
            overlapping.append(run)
        latest_end = max(latest_end, run.finished_at)  # type: ignore[type-var]
    return overlapping


def full_data_spread(runs: Sequence[Run]) -> dict[Setting, float]:
    """Per setting with two full-data runs or more that report a time, ``max / min - 1`` of their times
    (``Run.time_s``: the fit time, else the whole job's).

    Example::

        >>> runs = [Run(str(t), "none", 0, 0.9, seed=i, fit_time_s=t) for i, t in enumerate((100.0, 125.0, 110.0))]
        >>> [round(spread, 3) for spread in full_data_spread(runs).values()]
        [0.25]
    """
    times: dict[Setting, list[float]] = defaultdict(list)
    for run in runs:
        if run.method == FULL_DATA_METHOD and run.time_s:
            times[run.setting].append(run.time_s)
    return {s: max(t) / min(t) - 1 for s, t in sorted(times.items(), key=lambda i: setting_order(i[0])) if len(t) > 1}


def side_by_side_problems(runs: Sequence[Run], spread: float = FULL_DATA_SPREAD) -> list[str]:
    """Why the times of ``runs`` were not measured side by side, one phrase per reason; empty when they were.

    Args:
        runs: the runs of the sweep (those without a time are not counted).
        spread: how much full data's time may vary across seeds.
    """
    timed = [r for r in runs if r.time_s is not None]
    problems = []
    missing = [r for r in timed if r.started_at is None or r.finished_at is None]
    if missing:
        problems.append(f"{len(missing)} of {len(timed)} runs lack `started_at`/`finished_at`, so nobody can tell")
    overlapping = overlapping_runs(timed)
    if overlapping:
        problems.append(
            f"{len(overlapping)} of {len(timed)} runs ran at the same time as other runs (their "
            "[started_at, finished_at] windows overlap: the jobs shared the CPU)"
        )
    for setting, value in full_data_spread(timed).items():
        if value > spread:
            problems.append(f"full data's time varies by {value:.0%} across seeds in {setting} (over {spread:.0%})")
    return problems


def walltime_warning(runs: Sequence[Run], spread: float = FULL_DATA_SPREAD) -> str | None:
    """The report's warning on the wall-time view, or ``None`` when the runs were measured side by side.

    Args:
        runs: the runs of the sweep.
        spread: how much full data's time may vary across seeds.

    Example::

        >>> print(*walltime_warning([Run("a", "none", 0, 0.9, wall_time_s=5.0)]).split(". "), sep=".\\n")
        Times not measured side by side: 1 of 1 runs lack `started_at`/`finished_at`, so nobody can tell.
        Wall-time ratios then include machine load; for a side-by-side measurement run `python benchmarks/walltime.py`.
        >>> walltime_warning([Run("a", "none", 0, 0.9, wall_time_s=5.0, started_at=0.0, finished_at=5.0)]) is None
        True
    """
    problems = side_by_side_problems(runs, spread)
    if not problems:
        return None
    return (
        f"Times not measured side by side: {'; '.join(problems)}. Wall-time ratios then include machine load; for "
        f"a side-by-side measurement run `{SIDE_BY_SIDE_TOOL}`."
    )
