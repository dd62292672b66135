"""Pure decision logic of AdaPruner: schedules, selection, the mask update and its controllers.

Every function here is a pure function of its arguments (tensors and numbers in, tensors and
numbers out; the ``*_`` functions update the tensors they are given in place and nothing
else). None of them knows about Lightning, so each can be tested without a Trainer. The
symbols follow ``METHOD.md``: ``m`` per-sample logits, ``k`` inverse temperature,
``s = sigmoid(k * m)`` soft keep scores, ``r = 1 - p`` the keep fraction, ``lam`` the
ratio-constraint weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

ScheduleShape = Literal["linear", "cosine", "exponential", "step"]
SCHEDULE_SHAPES: tuple[str, ...] = ("linear", "cosine", "exponential", "step")
LOG_EPS = 1e-5  # the reference code's epsilon inside -log(l + eps)


def keep_share_at(
    epoch: int,
    prune_ratio: float,
    warmup_epochs: int,
    prune_epochs: int,
    shape: ScheduleShape = "linear",
) -> float:
    """Share of the dataset kept in ``epoch`` (0-based).

    Full data for ``warmup_epochs``; then the keep share steps from 1 down to ``1 - prune_ratio``
    over ``prune_epochs`` epochs (the last of them already at the target) and holds there.

    Example::

        >>> [round(keep_share_at(e, 0.3, 1, 3), 2) for e in range(6)]
        [1.0, 0.9, 0.8, 0.7, 0.7, 0.7]
    """
    if epoch < warmup_epochs or prune_ratio == 0.0:
        return 1.0
    if prune_epochs <= 0:
        return 1.0 - prune_ratio
    t = min(1.0, (epoch - warmup_epochs + 1) / prune_epochs)  # progress in (0, 1]
    if shape == "linear":
        frac = t
    elif shape == "cosine":
        frac = 0.5 * (1.0 - math.cos(math.pi * t))
    elif shape == "exponential":
        # geometric interpolation of the keep share: equal *relative* cuts every epoch
        target = 1.0 - prune_ratio
        return float(target**t)
    elif shape == "step":
        frac = 1.0
    else:  # pragma: no cover - validated by the callback
        raise ValueError(f"unknown schedule shape {shape!r}; expected one of {SCHEDULE_SHAPES}")
    return 1.0 - prune_ratio * frac


def num_kept(num_samples: int, keep_share: float) -> int:
    """K = round(keep_share * N), the exact number of samples kept."""
    return int(round(keep_share * num_samples))


def tie_break_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch)``: identical on every rank, no hidden state."""
    gen = torch.Generator()
    gen.manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1))
    return gen


def select_kept(
    logits: Tensor,
    k_keep: int,
    generator: torch.Generator,
    labels: Tensor | None = None,
    class_floor: int = 0,
) -> Tensor:
    """Indices (sorted, int64, CPU) of the ``k_keep`` samples with the largest logits.

    Ties are broken by a random permutation drawn from ``generator`` (seed it from
    ``(seed, epoch)`` with :func:`tie_break_generator` so every rank agrees). With ``labels`` and
    ``class_floor > 0``, each class first keeps its ``min(class_floor, class size)`` best samples;
    the rest of the budget goes to the best remaining samples of any class.

    Raises:
        ValueError: if ``k_keep`` is outside ``[0, N]`` or the class floors alone exceed it.
    """
    n = logits.numel()
    if not 0 <= k_keep <= n:
        raise ValueError(f"k_keep must be in [0, {n}], got {k_keep}")
    m = logits.detach().float().cpu()
    perm = torch.randperm(n, generator=generator)
    order = perm[torch.argsort(m[perm], descending=True, stable=True)]  # best first, ties random
    if labels is None or class_floor <= 0:
        return torch.sort(order[:k_keep]).values
    labels = labels.cpu()
    ranked_labels = labels[order]
    # rank of each sample within its own class, in best-first order: a stable sort by class
    # keeps the best-first order inside each class
    num_classes = int(labels.max()) + 1 if labels.numel() else 0
    by_class = torch.argsort(ranked_labels, stable=True)
    counts = torch.bincount(ranked_labels, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    class_rank = torch.empty(n, dtype=torch.long)
    class_rank[by_class] = torch.arange(n) - starts.repeat_interleave(counts)
    floored = class_rank < class_floor
    n_floor = int(floored.sum())
    if n_floor > k_keep:
        raise ValueError(
            f"class_floor={class_floor} needs {n_floor} samples but only {k_keep} are kept; "
            f"lower class_floor to at most {k_keep // max(num_classes, 1)} or lower prune_ratio"
        )
    rest = order[~floored][: k_keep - n_floor]
    return torch.sort(torch.cat([order[floored], rest])).values


def draw_revisits(num_samples: int, kept: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` indices drawn uniformly from the samples *not* in ``kept`` (sorted, int64)."""
    pruned = torch.ones(num_samples, dtype=torch.bool)
    pruned[kept.long()] = False
    pool = pruned.nonzero().flatten()
    count = min(count, pool.numel())
    return torch.sort(pool[torch.randperm(pool.numel(), generator=generator)[:count]]).values


def mask_gradient(
    logits_b: Tensor,
    loss_b: Tensor,
    k: Tensor,
    lam: Tensor,
    keep_fraction: float,
    scores: Tensor | None = None,
    finite: Tensor | None = None,
) -> Tensor:
    """Closed-form gradient of the AdaPruner objective with respect to the batch's logits.

    ``L = mean(s*l) + mean(s*(-log(sg(l)+eps))) + lam*(mean(s) - r)**2`` with ``s = sigmoid(k*m)``
    gives ``dL/dm_i = k*s_i*(1-s_i)/B * (l_i - log(l_i+eps) + 2*lam*(mean(s) - r))``.
    Entries whose loss is not finite get a zero gradient and are left out of ``mean(s)``.
    ``scores`` (``sigmoid(k * logits_b)``) and ``finite`` (``isfinite(loss_b)``) may be passed when
    the caller already has them.
    """
    finite = torch.isfinite(loss_b) if finite is None else finite
    loss = torch.where(finite, loss_b, torch.zeros_like(loss_b)).clamp_min(0.0)
    s = torch.sigmoid(k * logits_b) if scores is None else scores
    n_finite = finite.sum().clamp_min(1)
    mean_s = torch.where(finite, s, torch.zeros_like(s)).sum() / n_finite
    # xlogy(1, x) == log(x); unlike torch.log on CPU it opens no MKL thread team for a batch-sized
    # tensor, which on oversubscribed cores turned one mask step from ~0.2 ms into 4-12 ms
    coef = loss - torch.xlogy(1.0, loss + LOG_EPS) + 2.0 * lam * (mean_s - keep_fraction)
    grad = k * s * (1.0 - s) * coef / n_finite
    return torch.where(finite, grad, torch.zeros_like(grad))


def first_occurrence(indices: Tensor) -> Tensor:
    """Positions of the first occurrence of each distinct value of ``indices`` (deterministic)."""
    uniq, inverse = torch.unique(indices, sorted=True, return_inverse=True)
    pos = torch.arange(indices.numel(), device=indices.device)
    first = torch.full((uniq.numel(),), indices.numel(), dtype=torch.long, device=indices.device)
    return first.scatter_reduce_(0, inverse, pos, reduce="amin")


def sparse_sgd_step_(
    logits: Tensor,
    momentum_buf: Tensor,
    indices: Tensor,
    grad: Tensor,
    lr: float,
    momentum: float,
    weight_decay: float,
    active: Tensor | None = None,
) -> None:
    """SGD with momentum and weight decay (``torch.optim.SGD`` semantics) on the rows ``indices``.

    Rows not in ``indices`` are untouched ("lazy" update): a pruned sample's logit stays where
    it was, and one step costs O(batch), not O(N). ``indices`` must hold no duplicates (see
    :func:`first_occurrence`). Rows where ``active`` is False are left exactly as they were
    (no weight decay, no momentum), without a host sync.
    """
    m = logits[indices]
    old_buf = momentum_buf[indices]
    buf = old_buf * momentum + grad + weight_decay * m
    new_m = m - lr * buf
    if active is not None:
        buf = torch.where(active, buf, old_buf)
        new_m = torch.where(active, new_m, m)
    momentum_buf[indices] = buf
    logits[indices] = new_m


def next_lambda(hard_keep_share: Tensor, keep_fraction: float, gain: float = 50.0) -> Tensor:
    """The ratio controller of the reference code: ``lam = 1 + gain * |rho - r|``."""
    return 1.0 + gain * (hard_keep_share - keep_fraction).abs()


def next_k(
    k: Tensor,
    hard_keep_share: Tensor,
    keep_fraction: float,
    delta: float,
    binarise: bool,
    batch_scores: Tensor,
) -> Tensor:
    """One step of the inverse-temperature schedule.

    ``k`` grows by ``delta`` while the batch's hard kept share ``rho`` is at or above target; in the
    last epoch (``binarise``) it grows by a further ``10 * delta`` while fewer than 90% of the
    batch's scores lie outside [0.1, 0.9].
    """
    k = k + delta * (hard_keep_share >= keep_fraction).to(k.dtype)
    if binarise:
        outside = ((batch_scores < 0.1) | (batch_scores > 0.9)).float().mean()
        k = k + 10.0 * delta * (outside < 0.9).to(k.dtype)
    return k


def k_after_epoch(k: float, steps_below: int, steps: int, delta: float, k_min: float) -> float:
    """Epoch-end back-off: if ``rho < r`` in at least 1/16 of the steps, step ``k`` back by
    ``delta * steps_below`` (never below ``k_min``)."""
    if steps > 0 and steps_below * 16 >= steps:
        k = k - delta * steps_below
    return max(k, k_min)


def batches_per_epoch(
    samples: int, world_size: int, batch_size: int, drop_last_batch: bool, drop_last_shard: bool = False
) -> int:
    """Batches one rank runs over ``samples`` samples sharded across ``world_size`` ranks."""
    per_rank = samples // world_size if drop_last_shard else math.ceil(samples / world_size)
    return per_rank // batch_size if drop_last_batch else math.ceil(per_rank / batch_size)


def limit_batches(num_batches: int, limit: int | float) -> int:
    """Lightning's ``limit_train_batches`` rule: an int caps the count, a float scales it."""
    if isinstance(limit, int):
        return min(num_batches, limit)
    if limit == 1.0:
        return num_batches
    return int(num_batches * limit)


def stepping_batches(batches: Sequence[int], accumulate_grad_batches: int, max_steps: int = -1) -> int:
    """Optimiser steps taken over epochs of the given batch counts.

    Lightning steps the optimiser every ``accumulate_grad_batches`` batches and once more at the
    end of an epoch whose count does not divide evenly, so each epoch gives ``ceil(b / acc)``.
    """
    total = sum(math.ceil(b / accumulate_grad_batches) for b in batches)
    return min(total, max_steps) if max_steps != -1 else total


# --------------------------------------------------------------------------- baselines
def el2n_scores(outputs: Tensor, targets: Tensor) -> Tensor:
    """EL2N (Paul et al. 2021): ``||softmax(outputs) - onehot(targets)||_2`` per sample."""
    probs = torch.softmax(outputs.detach().float(), dim=-1)
    onehot = torch.nn.functional.one_hot(targets.long(), probs.shape[-1]).to(probs.dtype)
    return (probs - onehot).norm(dim=-1)


def forgetting_update(prev_correct: Tensor, forgets: Tensor, correct: Tensor) -> tuple[Tensor, Tensor]:
    """Toneva et al. 2019: a forgetting event is a presentation misclassified after a correct one.

    ``prev_correct`` is ``-1`` (never seen), ``0`` or ``1`` per sample; returns the new
    ``(prev_correct, forgets)`` for the given samples.
    """
    now = correct.to(prev_correct.dtype)
    forgotten = (prev_correct == 1) & (now == 0)
    return now, forgets + forgotten.to(forgets.dtype)


def forgetting_scores(forgets: Tensor, ever_correct: Tensor) -> Tensor:
    """Keep-priority from forgetting counts: never-learned samples first (``+inf``), then the most
    forgotten; the never-forgotten come last and are dropped first."""
    scores = forgets.float()
    return torch.where(ever_correct, scores, torch.full_like(scores, float("inf")))


def infobatch_keep_share_at(
    epoch: int,
    prune_ratio: float,
    warmup_epochs: int,
    prune_epochs: int,
    shape: ScheduleShape,
    max_epochs: int,
    anneal: float,
) -> float:
    """InfoBatch's keep share in ``epoch``: full data for ``warmup_epochs`` and for the last
    ``ceil(anneal * max_epochs)`` epochs, a constant share ``q`` in between, with ``q`` chosen so the
    whole run forwards as many samples as the standard schedule (:func:`keep_share_at`) at the same
    ``prune_ratio`` (clipped to ``[0, 1]``)."""
    annealed = min(math.ceil(anneal * max_epochs), max(max_epochs - warmup_epochs, 0))
    pruned_epochs = max_epochs - warmup_epochs - annealed
    if epoch < warmup_epochs or epoch >= max_epochs - annealed or pruned_epochs <= 0:
        return 1.0
    target = sum(keep_share_at(e, prune_ratio, warmup_epochs, prune_epochs, shape) for e in range(max_epochs))
    return min(1.0, max(0.0, (target - warmup_epochs - annealed) / pruned_epochs))


def infobatch_plan(losses: Tensor, budget: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """InfoBatch (Qin et al. 2024): drop ``N - budget`` samples drawn at random among those whose last
    loss is below the mean, and up-weight the kept below-mean samples.

    When fewer samples lie below the mean than must go (high prune ratios), all of them are dropped
    and the rest of the cut takes the lowest-loss samples above the mean, so the epoch forwards
    exactly ``budget`` samples like every other method (InfoBatch itself would forward more, which
    also breaks step-based LR schedules sized in advance).

    Returns the kept indices (sorted) and per-sample loss weights: ``1 / (1 - share)`` for the kept
    below-mean samples, where ``share`` is the fraction of below-mean samples dropped; 1 elsewhere.
    """
    n = losses.numel()
    finite = torch.isfinite(losses)
    mean = losses[finite].mean() if bool(finite.any()) else torch.tensor(0.0)
    below = (losses < mean) & finite
    candidates = below.nonzero().flatten()
    to_drop = max(n - budget, 0)
    drop = min(to_drop, candidates.numel())
    keep = torch.ones(n, dtype=torch.bool)
    keep[candidates[torch.randperm(candidates.numel(), generator=generator)[:drop]]] = False
    if to_drop > drop and bool(finite.any()):  # not enough below the mean: lowest losses above it go next
        above = (~below & finite).nonzero().flatten()
        keep[above[torch.argsort(losses[above], stable=True)[: to_drop - drop]]] = False
    weights = torch.ones(n)
    if 0 < drop < candidates.numel():
        weights[below & keep] = 1.0 / (1.0 - drop / candidates.numel())
    return keep.nonzero().flatten(), weights
