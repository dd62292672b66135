"""The baselines' scores and plans as pure functions: EL2N, forgetting, InfoBatch, SeTa and RS2."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from lightning_adapruner.core.functional.selection import random_subset


def el2n_scores(logits: Tensor, targets: Tensor) -> Tensor:
    """EL2N (Paul et al. 2021): ``||softmax(logits) - onehot(targets)||_2`` per sample.

    Example::

        >>> [round(v, 3) for v in el2n_scores(torch.tensor([[10.0, -10.0], [0.0, 0.0]]), torch.tensor([0, 1])).tolist()]
        [0.0, 0.707]
    """
    probs = torch.softmax(logits.detach().float(), dim=-1)
    onehot = torch.nn.functional.one_hot(targets.long(), probs.shape[-1]).to(probs.dtype)
    return (probs - onehot).norm(dim=-1)


def forgetting_update(prev_correct: Tensor, forgets: Tensor, correct: Tensor) -> tuple[Tensor, Tensor]:
    """Toneva et al. 2019: a forgetting event is a presentation misclassified after a correct one.

    ``prev_correct`` is ``-1`` (never seen), ``0`` or ``1`` per sample; returns the new
    ``(prev_correct, forgets)`` of the given samples.

    Example::

        >>> prev, forgets = forgetting_update(torch.tensor([1, 0, -1]), torch.zeros(3).long(), torch.tensor([0, 1, 0]))
        >>> prev.tolist(), forgets.tolist()
        ([0, 1, 0], [1, 0, 0])
    """
    now = correct.to(prev_correct.dtype)
    forgotten = (prev_correct == 1) & (now == 0)
    return now, forgets + forgotten.to(forgets.dtype)


def forgetting_scores(forgets: Tensor, ever_correct: Tensor) -> Tensor:
    """Keep-priority from forgetting counts: never-learned samples first (``+inf``), then the most
    forgotten; the never-forgotten come last and are dropped first."""
    scores = forgets.float()
    return torch.where(ever_correct, scores, torch.full_like(scores, float("inf")))


def infobatch_plan(
    losses: Tensor, budget: int, gen: torch.Generator, prune_share: float = 0.5
) -> tuple[Tensor, Tensor, int]:
    """InfoBatch (Qin et al. 2024) at an exact budget: drop up to ``prune_share`` of the samples whose last
    loss is below the mean, at random, and up-weight the kept below-mean samples by ``1 / (1 - dropped share)``.

    InfoBatch drops a fixed share of the below-mean samples; the harness needs ``N - budget`` drops exactly.
    Up to ``floor(prune_share * |below|)`` of them are InfoBatch's own; a cut deeper than that is beyond its
    design, and the rest is drawn uniformly at random from the remaining samples with weight 1 (our
    extension, counted in the third return value so it is never reported as InfoBatch itself).

    Returns:
        ``(kept positions sorted, per-sample loss weights [N], drops beyond InfoBatch's design)``.

    Example::

        >>> gen = torch.Generator().manual_seed(0)
        >>> kept, weights, beyond = infobatch_plan(torch.tensor([0.1, 0.2, 0.3, 5.0]), 3, gen)
        >>> len(kept), beyond, sorted(weights.tolist())
        (3, 0, [1.0, 1.0, 1.5, 1.5])
    """
    n = losses.numel()
    finite = torch.isfinite(losses)
    mean = losses[finite].mean() if bool(finite.any()) else torch.tensor(0.0)
    below = ((losses < mean) & finite).nonzero().flatten()
    to_drop = max(n - budget, 0)
    own = min(to_drop, math.floor(prune_share * below.numel()))
    keep = torch.ones(n, dtype=torch.bool)
    keep[below[random_subset(own, below.numel(), gen)]] = False
    weights = torch.ones(n)
    if own:
        kept_below = below[keep[below]]
        weights[kept_below] = below.numel() / (below.numel() - own)
    beyond = to_drop - own
    if beyond:
        rest = keep.nonzero().flatten()
        keep[rest[random_subset(beyond, rest.numel(), gen)]] = False
    return keep.nonzero().flatten(), weights, beyond


def kmeans_1d(values: Tensor, groups: int, iterations: int = 25) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means on scalars, started from evenly spaced quantiles; deterministic.

    Returns:
        ``(group of every value, group centres)``, the groups numbered by ascending centre.

    Example::

        >>> labels, centres = kmeans_1d(torch.tensor([0.0, 0.1, 5.0, 5.2, 9.9, 10.0]), 3)
        >>> labels.tolist(), centres.round(decimals=2).tolist()
        ([0, 0, 1, 1, 2, 2], [0.05, 5.1, 9.95])
    """
    x = values.double()
    groups = max(1, min(groups, x.numel()))
    centres = torch.quantile(x, torch.linspace(0, 1, groups + 2, dtype=torch.float64)[1:-1])
    labels = torch.zeros(x.numel(), dtype=torch.long)
    for _ in range(iterations):
        centres = torch.sort(centres).values
        bounds = (centres[1:] + centres[:-1]) / 2
        new = torch.bucketize(x, bounds)
        sums = torch.zeros(groups, dtype=torch.float64).index_add_(0, new, x)
        counts = torch.bincount(new, minlength=groups)
        centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
        if torch.equal(new, labels):
            break
        labels = new
    return labels, centres


def seta_window(num_groups: int, window_scale: float, iteration: int) -> tuple[int, int]:
    """SeTa's sliding window over loss groups sorted easy to hard: groups ``[start, end)`` in ``iteration``.

    The first pruned epoch keeps every group; then a window of ``round(num_groups * window_scale)`` groups
    slides one group harder per epoch and wraps around.

    Example::

        >>> [seta_window(5, 0.6, i) for i in range(5)]
        [(0, 5), (1, 4), (2, 5), (0, 3), (1, 4)]
    """
    if iteration == 0:
        return 0, num_groups
    size = max(1, round(num_groups * window_scale))
    start = iteration % (num_groups - size + 1)
    return start, start + size


def seta_plan(
    losses: Tensor, budget: int, iteration: int, num_groups: int, window_scale: float, gen: torch.Generator
) -> tuple[Tensor, int]:
    """SeTa (Zhou et al., CVPR 2025) at an exact budget: group the samples by loss (1-D k-means), keep the
    groups of the sliding window (:func:`seta_window`) and draw ``budget`` samples uniformly from them.

    When the window holds fewer than ``budget`` samples (a cut SeTa cannot make), it widens one group at a
    time, alternately harder and easier, until it holds enough (our extension; the second return value
    counts the groups added).

    Returns:
        ``(kept positions sorted, groups added beyond SeTa's window)``.

    Example::

        >>> losses = torch.tensor([0.0, 0.1, 5.0, 5.2, 9.9, 10.0])
        >>> kept, widened = seta_plan(losses, 2, iteration=1, num_groups=3, window_scale=0.34, gen=torch.Generator())
        >>> kept.tolist(), widened
        ([2, 3], 0)
    """
    labels, _ = kmeans_1d(losses, num_groups)
    groups = int(labels.max()) + 1 if labels.numel() else 0
    start, end = seta_window(groups, window_scale, iteration)
    counts = torch.bincount(labels, minlength=groups)
    widened, harder = 0, True
    while int(counts[start:end].sum()) < budget:
        if (harder and end < groups) or start == 0:
            end += 1
        else:
            start -= 1
        harder, widened = not harder, widened + 1
    pool = ((labels >= start) & (labels < end)).nonzero().flatten()
    return torch.sort(pool[random_subset(budget, pool.numel(), gen)]).values, widened


def rs2_draw(perm: Tensor, pos: int, budget: int, next_round: Callable[[], Tensor]) -> tuple[Tensor, Tensor, int]:
    """RS2 without replacement (Okanovic et al.): the next ``budget`` samples of the round's permutation.

    ``perm`` is the current round's permutation of the dataset and ``pos`` how much of it is used. When the round
    runs out, ``next_round()`` draws the next permutation; the samples the old round's tail already took move to
    its end, so every round still forwards each sample once before any sample a second time.

    Returns:
        ``(kept samples sorted, the round's permutation, its new position)``.

    Example::

        >>> kept, perm, pos = rs2_draw(torch.tensor([3, 0, 2, 1]), 2, 3, lambda: torch.tensor([2, 3, 1, 0]))
        >>> kept.tolist(), perm.tolist(), pos
        ([1, 2, 3], [3, 0, 2, 1], 1)
    """
    taken = perm[pos : pos + budget]
    if taken.numel() == budget:
        return torch.sort(taken).values, perm, pos + budget
    fresh = next_round()
    in_tail = torch.isin(fresh, taken)
    fresh = torch.cat([fresh[~in_tail], fresh[in_tail]])
    rest = budget - taken.numel()
    return torch.sort(torch.cat([taken, fresh[:rest]])).values, fresh, rest
