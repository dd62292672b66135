"""Per budget, in words, which arm wins (pure): pruning against the free alternative, all the data for fewer
epochs (``method == "shorter"``, the LR schedule fitted to the shorter run).

For every setting with fewer-epochs runs and every budget among them, one line says how fewer epochs does
against full data, which pruning method does best at that budget, and how that method does against fewer epochs,
paired by seed; each other method at the budget gets a line of its own under it. A method is "at" a budget when
its cell's budget lies within :data:`BUDGET_MATCH` of it (a method configured by prune ratio forwards a realised
budget that is rarely exactly the fewer-epochs one). A setting without fewer-epochs runs gets the line that says
how to add them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lightning_adapruner.app.report.aggregation import (
    BY_BUDGET,
    Cell,
    acc_by_seed,
    format_budget,
    group_runs,
    setting_order,
)
from lightning_adapruner.app.report.runs import FEWER_EPOCHS_METHOD, Run, Setting
from lightning_adapruner.app.report.stats import (
    LOSSLESS_MARGIN_PP,
    PairedCI,
    format_ci,
    is_lossless,
    paired_ci,
    winner,
)
from lightning_adapruner.app.summary import FULL_DATA_METHOD

BUDGET_MATCH = 0.005  # budgets this close (in shares of full data's samples) count as the same budget
FEWER = "fewer epochs"


def missing_fewer_epochs(budgets: Sequence[float]) -> str:
    """The line for a setting without fewer-epochs runs: what is missing and the override that adds it.

    Args:
        budgets: the budgets (shares of full data's samples) the setting's pruning cells forwarded, suggested
            rounded to 2 decimals.

    Example::

        >>> missing_fewer_epochs([0.7, 0.5, 0.5012]).split("; ")[-1]
        'add them with `pruning=shorter pruning.budget=0.5,0.7`.'
    """
    shown = sorted({round(b, 2) for b in budgets if 0 < b < 1})
    values = ",".join(f"{b:g}" for b in shown) if shown else "<b>"
    return (
        f"- No fewer-epochs (`{FEWER_EPOCHS_METHOD}`) runs in this setting: the free alternative to pruning, all the "
        "data for fewer epochs with the LR schedule fitted, is missing, so no method here can be said to beat it; "
        f"add them with `pruning={FEWER_EPOCHS_METHOD} pruning.budget={values}`."
    )


def against(ci: PairedCI, name: str) -> str:
    """The verdict on ``ci``, the paired ``name - fewer epochs``.

    Example::

        >>> against(PairedCI(-0.06, -0.35, 0.23, 5), "`rs2`"), against(PairedCI(-1.2, -1.9, -0.5, 5), "`el2n`")
        ('a tie (interval includes 0)', 'fewer epochs beats `el2n` (interval excludes 0)')
    """
    outcome = winner(ci)
    if outcome is None:
        return "no verdict (fewer than 2 seeds paired)" if ci.n else "no verdict (no seed in common)"
    if outcome == 0:
        return "a tie (interval includes 0)"
    return (
        f"{name} beats {FEWER} (interval excludes 0)" if outcome > 0 else f"{FEWER} beats {name} (interval excludes 0)"
    )


def vs_full(ci: PairedCI, margin_pp: float) -> str:
    """``ci`` (an arm minus full data) with its lossless verdict, e.g. ``−0.04 pp [−0.21, +0.13] vs full data,
    lossless``."""
    verdict = is_lossless(ci, margin_pp)
    suffix = "" if verdict is None else ", lossless" if verdict else f", not lossless (lower bound < −{margin_pp:g} pp)"
    return f"{format_ci(ci, ' pp')} vs full data{suffix}"


def _share(run: Run, full_samples: Sequence[float]) -> float | None:
    """The run's realised budget, else its samples forwarded as a share of full data's mean."""
    if run.realised_budget is not None:
        return run.realised_budget
    if run.samples_forwarded is None or not full_samples:
        return None
    return run.samples_forwarded * len(full_samples) / sum(full_samples)


def _epochs(runs: Sequence[Run], reference: int | None) -> str:
    epochs = sorted({r.epochs for r in runs if r.epochs is not None})
    trained = "/".join(map(str, epochs)) or "?"
    return f"{trained} of {reference if reference is not None else '?'}"


def _rank(cell: Cell, runs: Sequence[Run], full: Mapping[int, float]) -> tuple:
    """Best first: the highest mean paired difference with full data, then the highest mean accuracy."""
    mean = paired_ci(acc_by_seed(runs), full).mean
    return (mean is None, -(mean or 0.0), -sum(r.test_acc for r in runs) / len(runs), cell.method)


def _budget_lines(
    budget: float,
    shorter: Sequence[Run],
    methods: Mapping[Cell, Sequence[Run]],
    full: Mapping[int, float],
    setting: Setting,
    margin_pp: float,
) -> list[str]:
    """The lines of one budget: fewer epochs, the best method and the method − fewer epochs; then the others."""
    base = acc_by_seed(shorter)
    head = f"- budget {format_budget(budget)} — {FEWER} ({_epochs(shorter, setting.epochs)}): "
    head += vs_full(paired_ci(base, full), margin_pp)
    if not methods:
        return [head + "; no pruning method at this budget."]
    ranked = sorted(methods.items(), key=lambda item: _rank(item[0], item[1], full))
    lines = []
    for rank, (cell, runs) in enumerate(ranked):
        accs = acc_by_seed(runs)
        name = f"`{cell.method}`" + (
            "" if abs(cell.value - budget) < 1e-9 else f" (budget {format_budget(cell.value)})"
        )
        to_full, to_fewer = format_ci(paired_ci(accs, full)), paired_ci(accs, base)
        versus = f"`{cell.method}` − {FEWER}: {format_ci(to_fewer)}: {against(to_fewer, f'`{cell.method}`')}"
        if rank == 0:
            lines.append(f"{head}; best method {name}: {to_full}; {versus}")
        else:
            lines.append(f"  - {name}: {to_full} vs full data; {versus}")
    return lines


def setting_verdicts(
    groups: Mapping[Cell, Sequence[Run]], setting: Setting, margin_pp: float = LOSSLESS_MARGIN_PP
) -> list[str]:
    """The verdict lines of one setting (markdown list items), from its cells (:func:`~.aggregation.group_runs`).

    Args:
        groups: the runs by cell.
        setting: the setting.
        margin_pp: the lossless margin in percentage points.
    """
    here = {cell: runs for cell, runs in groups.items() if cell.setting == setting}
    full_runs = [runs for cell, runs in here.items() if cell.method == FULL_DATA_METHOD]
    full = acc_by_seed(r for runs in full_runs for r in runs)
    fewer = {cell: runs for cell, runs in here.items() if cell.method == FEWER_EPOCHS_METHOD}
    methods = {cell: runs for cell, runs in here.items() if cell.method not in (FULL_DATA_METHOD, FEWER_EPOCHS_METHOD)}
    budgeted = all(cell.by == BY_BUDGET for cell in here)
    if not fewer or not budgeted:
        full_samples = [r.samples_forwarded for runs in full_runs for r in runs if r.samples_forwarded]
        shares = [[x for r in runs if (x := _share(r, full_samples)) is not None] for runs in methods.values()]
        return [missing_fewer_epochs([sum(cell) / len(cell) for cell in shares if cell])]
    lines: list[str] = []
    matched: set[Cell] = set()
    for cell, runs in sorted(fewer.items(), key=lambda item: item[0].value):
        at = {c: r for c, r in methods.items() if abs(c.value - cell.value) <= BUDGET_MATCH + 1e-9}
        matched |= set(at)
        lines += _budget_lines(cell.value, runs, at, full, setting, margin_pp)
    for cell in sorted(set(methods) - matched, key=lambda c: (c.value, c.method)):
        if cell.value >= 1.0:
            lines.append(
                f"- `{cell.method}` at budget {format_budget(cell.value)} forwards at least full data's samples: "
                "fewer epochs cannot match it."
            )
        else:
            lines.append(
                f"- budget {format_budget(cell.value)} (`{cell.method}`): no fewer-epochs run at this budget; add it "
                f"with `pruning={FEWER_EPOCHS_METHOD} pruning.budget={round(cell.value, 2):g}`."
            )
    return lines


def budget_verdicts(
    runs: Sequence[Run], margin_pp: float = LOSSLESS_MARGIN_PP, by: str | None = None
) -> dict[Setting, list[str]]:
    """Per setting with pruning or fewer-epochs runs, the lines saying which arm wins at each budget.

    Args:
        runs: the runs of the sweep (copies of a full-data or fewer-epochs run count once).
        margin_pp: the lossless margin in percentage points.
        by: how to group the runs (:func:`~.aggregation.grouping_of` when ``None``).

    Example::

        >>> full = [Run(f"n{s}", FULL_DATA_METHOD, 0.0, 0.90 + d, seed=s, epochs=20) for s, d in ((0, 0), (1, .01))]
        >>> fewer = [Run(f"s{s}", FEWER_EPOCHS_METHOD, 0.0, 0.90 + d, seed=s, epochs=12, reference_epochs=20,
        ...              budget_target=0.6) for s, d in ((0, -.001), (1, .009))]
        >>> rs2 = [Run(f"r{s}", "rs2", 0.4, 0.90 + d, seed=s, budget_target=0.6, reference_epochs=20)
        ...        for s, d in ((0, -.003), (1, .009))]
        >>> (lines,) = budget_verdicts(full + fewer + rs2).values()
        >>> print(*lines[0].split("; "), sep="\\n")
        - budget 0.60 — fewer epochs (12 of 20): −0.10 pp [−0.10, −0.10] vs full data, lossless
        best method `rs2`: −0.20 [−1.47, +1.07]
        `rs2` − fewer epochs: −0.10 [−1.37, +1.17]: a tie (interval includes 0)
    """
    groups = group_runs(runs, by)
    settings = sorted({cell.setting for cell in groups if cell.method != FULL_DATA_METHOD}, key=setting_order)
    return {setting: setting_verdicts(groups, setting, margin_pp) for setting in settings}
