"""Choosing an epoch's samples around a method's plan: the schedule check, the evidence policy for samples never
forwarded, the class floor, and the check of what a plan returns. Lightning-free."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lightning_adapruner.core import functional as F
from lightning_adapruner.core.method import PruningMethod


def check_schedule(
    budgets: list[int], batches: tuple[int, ...], facts: Any, world_size: int, target: str, class_floor: int
) -> None:
    """Every epoch of the schedule must be able to run; say which setting to change where one cannot.

    Raises:
        ValueError: an epoch with fewer samples than processes or no batch, fewer batches than an int
            ``val_check_interval``, or class floors above the smallest budget.
    """
    for epoch, (budget, count) in enumerate(zip(budgets, batches)):
        where = f"epoch {epoch} of the pruning schedule keeps {budget} of {facts.num_samples} samples"
        if budget < world_size:
            raise ValueError(
                f"{where}, fewer than the {world_size} process(es): a rank would get no samples. Prune less (now "
                f"{target}) or lower the method's annealing"
            )
        if count < 1:
            raise ValueError(
                f"{where}, which makes no batch of {facts.batch_size} per process (drop_last={facts.drop_last}, "
                f"limit_train_batches={facts.limit_batches}): prune less (now {target}), lower the batch size, "
                "or let the last short batch run (drop_last=False)"
            )
        if facts.val_check_batches is not None and count < facts.val_check_batches:
            raise ValueError(
                f"{where} in {count} batches, fewer than Trainer(val_check_interval={facts.val_check_batches}): "
                "validate by a share of the epoch (a float val_check_interval) or every few epochs instead"
            )
    if class_floor and facts.labels is not None:
        floors = F.floor_total(facts.labels, class_floor)
        if floors > min(budgets):
            raise ValueError(
                f"class_floor={class_floor} needs {floors} samples but the smallest epoch keeps {min(budgets)}: "
                "lower class_floor or prune_ratio"
            )


def choose(
    method: PruningMethod,
    candidates: Tensor,
    every: bool,
    budget: int,
    epoch: int,
    seen: Tensor,
    labels: Tensor | None,
    class_floor: int,
    seed: int,
    final: bool = False,
) -> tuple[Tensor, int]:
    """``budget`` of ``candidates`` by the method's plan (or final subset); returns them and how many candidates
    had no evidence.

    Candidates without evidence (never forwarded, or see :meth:`PruningMethod.evidence`) are kept at the cut's
    own rate, drawn at random, and the method plans the rest among the others (its class floor applies only
    where it fits that part of the budget); a class of the merged set short of ``class_floor`` then gets its
    missing samples at random. ``every``: the candidates are ``arange(N)`` (positions
    are samples, which spares a gather).
    """
    pick = method.final_subset if final else method.plan
    unknown = None
    if method.needs_evidence:
        evidence = method.evidence()
        known = seen if evidence is None else evidence
        unknown = ~(known if every else known[candidates])
    unseen = 0 if unknown is None else int(torch.count_nonzero(unknown))
    if unseen == 0:
        kept = pick(candidates, budget, epoch)
    else:
        assert unknown is not None
        quota = F.evidence_quota(budget, candidates.numel(), unseen)
        drawn = F.random_pick(unknown, quota, F.generator(seed, epoch, F.selection.STREAM_UNSEEN))
        others = (~unknown).nonzero().flatten() if every else candidates[~unknown]
        kept = torch.cat([
            pick(others.to(candidates.dtype), budget - quota, epoch).to(candidates.dtype),
            (drawn.nonzero().flatten() if every else candidates[drawn]).to(candidates.dtype),
        ])  # fmt: skip
    if class_floor and labels is not None:
        gen = F.generator(seed, epoch, F.selection.STREAM_FLOOR)
        kept = F.enforce_class_floor(kept, candidates, labels, class_floor, gen)
    check_plan(type(method).__name__, kept, candidates, every, budget, epoch, seen.numel())
    return kept.to(candidates.dtype), unseen


def check_plan(name: str, kept: Tensor, candidates: Tensor, every: bool, budget: int, epoch: int, n: int) -> None:
    """A plan holds exactly ``budget`` distinct samples, all among the candidates (LR schedules are sized from
    the budgets, and a sample twice would be forwarded twice).

    Raises:
        RuntimeError: naming the method and what its plan got wrong.
    """
    if kept.ndim != 1 or kept.numel() != budget:
        raise RuntimeError(
            f"{name}.plan returned {kept.numel()} samples for epoch {epoch}, not its budget of {budget}: LR schedules "
            "are sized from the budgets, so a plan must hold exactly that many"
        )
    if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= n):
        raise RuntimeError(f"{name}.plan for epoch {epoch} returned indices outside [0, {n})")
    taken = torch.zeros(n, dtype=torch.bool)
    taken[kept] = True
    subset = True
    if not every:
        allowed = torch.zeros(n, dtype=torch.bool)
        allowed[candidates] = True
        subset = bool(allowed[kept].all())
    if not subset or int(torch.count_nonzero(taken)) != budget:
        raise RuntimeError(f"{name}.plan for epoch {epoch} must return distinct samples from its candidates")
