"""AdaPruner's mask objective as pure functions: the epoch's controller trajectory and the mask update.

Symbols follow ``docs/method.md``: ``m`` per-sample logits, ``k`` inverse temperature, ``s = sigmoid(k m)``,
``r = 1 - p`` the keep fraction, ``lam`` the ratio-constraint weight. Per step, over a (global) batch::

    L = mean(s * l) + mean(s * -log(sg(l) + eps)) + lam * (mean(s) - r) ** 2

so ``dL/dm_i = k s_i (1 - s_i) / B * (l_i - log(l_i + eps) + 2 lam (mean(s) - r))``. After the step
``lam <- 1 + gain |rho - r|`` with ``rho = mean(s > 0.5) = mean(m > 0)`` and ``k`` grows by ``delta`` while
``rho >= r`` (and, in the last epoch, by ``10 delta`` more while under 90% of the scores are outside
[0.1, 0.9]).

Every sample is forwarded at most once per epoch and only forwarded rows move, so inside an epoch each
sample's logit is the one it had when the epoch began. ``rho``, ``k``, ``lam`` and ``mean(s)`` of every
batch of the epoch are therefore known when the epoch is planned (:func:`trajectory`), and the update of a
sample depends only on its own loss and its batch's numbers (:func:`mask_step_`): applied per step, per
epoch or in any batch-aligned pieces, it gives the same bits as the sequential per-step procedure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

LOG_EPS = 1e-5  # the reference code's epsilon inside -log(l + eps)
_LOG9 = math.log(9.0)  # sigmoid(x) > 0.9  <=>  x > log 9
_BLOCK = 1 << 20  # positions a trajectory pass holds at a time, about (an epoch of 60 000 samples: one block)


@dataclass(frozen=True)
class Trajectory:
    """The controllers along one epoch's batches (``nb`` global batches).

    Attributes:
        k: ``[nb + 1]`` inverse temperature before batch ``t``; ``k[t]`` after ``t`` batches.
        lam: ``[nb + 1]`` ratio weight used by batch ``t``.
        rho: ``[nb]`` hard kept share of batch ``t``.
        mean_score: ``[nb]`` ``mean(s)`` of batch ``t`` at its ``k``.
        size: ``[nb]`` samples in batch ``t`` (all ranks).
    """

    k: Tensor
    lam: Tensor
    rho: Tensor
    mean_score: Tensor
    size: Tensor


def batch_rows(values: Tensor, batch_size: int, num_batches: int) -> tuple[Tensor, Tensor]:
    """``values`` laid out as ``[num_batches, batch_size]`` rows (NaN padded) and the mask of real entries.

    Example::

        >>> rows, valid = batch_rows(torch.arange(5.0), 2, 3)
        >>> rows.tolist()[2], valid.sum(1).tolist()
        ([4.0, nan], [2, 2, 1])
    """
    total = num_batches * batch_size
    padded = torch.full((total,), float("nan"), dtype=values.dtype, device=values.device)
    used = min(total, values.numel())
    padded[:used] = values[:used]
    rows = padded.view(num_batches, batch_size)
    return rows, ~torch.isnan(rows)


def trajectory(
    logits: Tensor,
    batch_size: int,
    num_batches: int,
    k: float,
    lam: float,
    delta: float,
    keep_fraction: float,
    gain: float,
    binarise: bool,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> Trajectory:
    """The controllers of an epoch whose positions hold samples with epoch-start ``logits`` (in order).

    Args:
        logits: ``[P]`` the logit of the sample at each position of the epoch's global order.
        batch_size: samples per global batch (all ranks); the last batch may be shorter.
        num_batches: global batches the epoch runs (positions past ``num_batches * batch_size`` are not run).
        k, lam: the controllers when the epoch starts.
        delta: ``k``'s step per batch; keep_fraction: ``r``; gain: the ``lam`` controller's gain.
        binarise: the last epoch: ``k`` also steps ``10 delta`` while under 90% of a batch's scores are
            outside [0.1, 0.9].
        reduce: with sharded state, ``logits`` are this rank's positions (``batch_size`` of them per global batch)
            and ``reduce`` sums a tensor over the ranks; counts are then exact, ``mean_score`` a sum in another
            order. ``None``: one process holds every position.

    Example::

        >>> t = trajectory(torch.tensor([1.0, 1.0, -1.0, 1.0]), 2, 2, k=0.1, lam=50.0, delta=0.5,
        ...                keep_fraction=0.7, gain=50.0, binarise=False)
        >>> [[round(v, 3) for v in x.tolist()] for x in (t.rho, t.k, t.lam)]
        [[1.0, 0.5], [0.1, 0.6, 0.6], [50.0, 16.0, 11.0]]
    """
    values, total = logits.float(), (lambda t: t) if reduce is None else reduce
    # rows at a time: a large epoch's temporaries stay in cache; blocks of a multiple of 64 positions, so every
    # position meets the vectorised kernels (sigmoid's differs from its scalar tail) as in one pass on one thread
    align = 64 // math.gcd(batch_size, 64)
    step = max(align, _BLOCK // batch_size // align * align)

    def per_row(fn: Callable[[slice, Tensor], Tensor]) -> Tensor:  # fn over batch_rows(values)'s rows, by blocks
        out = []
        for first in range(0, max(num_batches, 1), step):  # (no batch: one empty block)
            last = min(num_batches, first + step)
            part = values[first * batch_size : last * batch_size]
            full = part.numel() == (last - first) * batch_size  # (else the last block: NaN padded)
            rows = part.reshape(last - first, batch_size) if full else batch_rows(part, batch_size, last - first)[0]
            out.append(fn(slice(first, last), rows))
        return torch.cat(out)

    size = total(batch_size - per_row(lambda _, rows: torch.isnan(rows).sum(1)))
    rho = total(per_row(lambda _, rows: (rows > 0).sum(1))) / size.clamp_min(1)  # (NaN, the padding, is not > 0)
    up = (rho >= keep_fraction).double().cpu()
    ks = [k]
    if binarise:  # k depends on the scores at each step: a scalar scan over the (few hundred) batches
        magnitudes = per_row(lambda _, rows: torch.sort(torch.nan_to_num(rows.abs(), nan=float("inf")), dim=1).values)
        magnitudes = magnitudes.cpu()
        sizes = size.cpu()
        for t in range(num_batches):
            inside = torch.searchsorted(magnitudes[t], torch.tensor([_LOG9 / ks[-1]]), right=True)
            inside = inside if reduce is None else reduce(inside.to(logits.device)).cpu()  # (a gather per batch)
            outside = 1.0 - float(inside) / max(int(sizes[t]), 1)
            ks.append(ks[-1] + delta * float(up[t]) + 10.0 * delta * (outside < 0.9))
        k_all = torch.tensor(ks, dtype=torch.float32)
    else:  # k_t = k_0 + delta * (number of earlier batches at or above target)
        steps = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(up, 0)])
        k_all = (k + delta * steps).float()
    k_all = k_all.to(logits.device)
    lam_all = torch.cat([torch.tensor([lam], device=logits.device), 1.0 + gain * (rho - keep_fraction).abs()])
    sums = per_row(lambda at, rows: torch.nansum(torch.sigmoid_(k_all[at, None] * rows), dim=1))  # (NaN: pad)
    mean_score = total(sums) / size.clamp_min(1)
    return Trajectory(k_all, lam_all.float(), rho, mean_score, size)


def mask_step_(
    logits: Tensor,
    momentum: Tensor,
    indices: Tensor,
    loss: Tensor,
    batch: Tensor,
    path: Trajectory,
    keep_fraction: float,
    lr: float,
    momentum_coef: float,
    weight_decay: float,
) -> None:
    """Apply the mask update of the given samples in place (SGD with momentum and weight decay, lazily:
    only these rows move, so a pruned sample's logit stays where it was).

    Args:
        logits, momentum: ``[N]`` per-sample state, updated in place at ``indices``.
        indices: distinct dataset indices; loss: their (finite, non-negative) losses; batch: the global batch
            each was forwarded in (indexes ``path``).
        path: the epoch's :class:`Trajectory`.
    """
    m, buf = logits[indices], momentum[indices]
    k, lam = path.k[batch], path.lam[batch]
    s = torch.sigmoid(k * m)
    # xlogy(1, x) == log(x); on CPU it opens no MKL thread team for a small tensor, unlike torch.log
    coef = loss - torch.xlogy(1.0, loss + LOG_EPS) + 2.0 * lam * (path.mean_score[batch] - keep_fraction)
    grad = k * s * (1.0 - s) * coef / path.size[batch]
    buf = buf * momentum_coef + grad + weight_decay * m
    momentum[indices] = buf
    logits[indices] = m - lr * buf


def k_after_epoch(k: float, steps_below: int, steps: int, delta: float, k_min: float) -> float:
    """Epoch-end back-off: if ``rho < r`` in at least 1/16 of the steps, step ``k`` back by
    ``delta * steps_below`` (never below ``k_min``).

    Example::

        >>> k_after_epoch(2.0, 4, 32, 0.1, 0.1), k_after_epoch(2.0, 1, 32, 0.1, 0.1)
        (1.6, 2.0)
    """
    if steps > 0 and steps_below * 16 >= steps:
        k = k - delta * steps_below
    return max(k, k_min)


def normalise_per_batch(weights: Tensor, batch_size: int, world_size: int) -> Tensor:
    """``weights`` divided by their mean over each rank's batch, so ``mean(w * l) == sum(s * l) / sum(s)`` there.

    ``weights`` holds one value per global position; global batch ``t`` is positions
    ``[t * batch_size, (t + 1) * batch_size)`` and rank ``r``'s share of it every ``world_size``-th one.

    Example::

        >>> normalise_per_batch(torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0]), batch_size=2, world_size=1).tolist()
        [0.5, 1.5, 1.0, 1.0, 1.0]
    """
    nb = -(-weights.numel() // batch_size)
    rows, _ = batch_rows(weights, batch_size, nb)
    per_rank = rows.view(nb, batch_size // world_size, world_size)
    means = torch.nanmean(per_rank, dim=1, keepdim=True)
    return (per_rank / means).reshape(-1)[: weights.numel()]
