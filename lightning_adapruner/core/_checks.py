"""The checks of what users hand the plugin: one clear error per bad input, naming the problem and the fix."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def check_ratio(value: Any, name: str = "prune_ratio") -> float:
    """``value`` as a float in ``[0, 1)``; numpy and 0-d torch numbers are accepted. A float32 or float16 number
    is read as the shortest decimal it stands for (``torch.tensor(0.3)`` is ``0.3``, not ``0.30000001192``), so
    a checkpoint's ratio compares equal to the same ratio written as a Python float.

    Example::

        >>> check_ratio(torch.tensor(0.25)), check_ratio(0), check_ratio(torch.tensor(0.3)), check_ratio(0.3)
        (0.25, 0.0, 0.3, 0.3)
    """
    number = _as_number(value)
    if number is None or not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1) (the share of samples removed), got {value!r}")
    return number


def check_budget(
    value: Any, name: str = "budget", meaning: str = "the share of full data's samples forwarded"
) -> float:
    """``value`` as a float in ``(0, 1]``: by default the share of full data's samples a fit forwards (numbers
    read as :func:`check_ratio` reads them).

    Example::

        >>> check_budget(0.6), check_budget(1), check_budget(torch.tensor(0.6))
        (0.6, 1.0, 0.6)
    """
    number = _as_number(value)
    if number is None or not 0.0 < number <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1] ({meaning}), got {value!r}")
    return number


def _as_number(value: Any) -> float | None:
    """A real number as a float (a low-precision float as the decimal it stands for), else ``None``."""
    if isinstance(value, Tensor) and value.numel() == 1 and value.dtype != torch.bool:
        low = value.is_floating_point() and value.dtype.itemsize < 8
        dtype = value.dtype
        value = _shortest(value.item(), lambda v: torch.tensor(v, dtype=dtype).item()) if low else value.item()
    elif getattr(getattr(value, "dtype", None), "kind", "") == "f" and value.dtype.itemsize < 8:  # numpy float32
        kind = type(value)
        value = _shortest(float(value), lambda v: float(kind(v)))
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(float(value)):
        return None
    return float(value)


def _shortest(value: float, cast: Callable[[float], float]) -> float:
    """The decimal with the fewest significant digits that ``cast`` (a round trip through the source dtype)
    turns back into ``value``: what the user wrote, for any ratio a low-precision float can hold."""
    if not math.isfinite(value):
        return value
    for digits in range(1, 18):
        candidate = float(f"{value:.{digits}g}")
        if cast(candidate) == value:
            return candidate
    return value


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ``>= minimum`` (numpy integers accepted, bools refused).

    Example::

        >>> check_int("warmup_epochs", 2, minimum=0)
        2
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_targets(targets: Any, owner: str = "DataPruning") -> Tensor:
    """``targets`` as a 1-D LongTensor of class ids (a tensor, array or sequence of whole numbers >= 0).

    Raises:
        TypeError: not numbers (strings, objects) or bools.
        ValueError: fractional values, negative ids, or not one label per sample (a 2-D one-hot matrix).

    Example::

        >>> check_targets([0, 2, 1]).tolist(), check_targets(torch.tensor([1.0, 0.0])).tolist()
        ([0, 2, 1], [1, 0])
    """
    fix = f"pass {owner}(targets=<the integer class id of every training sample>)"
    try:
        labels = torch.as_tensor(targets)
    except (TypeError, ValueError, RuntimeError) as err:
        got = type(targets).__name__
        raise TypeError(f"targets must hold numbers, got a {got} that torch cannot read ({err}): {fix}") from None
    if labels.dtype == torch.bool or labels.is_complex() or not (labels.is_floating_point() or _is_integer(labels)):
        raise TypeError(f"targets must be whole numbers, got dtype {labels.dtype}: {fix}")
    if labels.ndim > 1 and not (labels.ndim == 2 and labels.shape[1] == 1):
        raise ValueError(
            f"targets must hold one label per sample, got shape {tuple(labels.shape)} (one-hot? take .argmax(1)): {fix}"
        )
    labels = labels.flatten()
    if labels.is_floating_point():
        bad = ~torch.isfinite(labels) | (labels != labels.round())
        if bool(bad.any()):
            raise ValueError(
                f"targets holds values that are not whole numbers (e.g. {labels[bad][0].item()!r}); casting them "
                f"would silently merge classes: {fix}"
            )
    labels = labels.long()
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"targets holds negative class ids (min {int(labels.min())}): {fix}")
    return labels


def _is_integer(tensor: Tensor) -> bool:
    return tensor.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_batch_loss(loss: Tensor, batch_length: int) -> None:
    """``pruning_loss`` needs one loss per sample the batch holds."""
    if loss.ndim != 1 or loss.shape[0] != batch_length:
        raise ValueError(
            f"pruning_loss needs one loss per sample of the batch: got shape {tuple(loss.shape)}, but the batch holds "
            f"{batch_length} samples. Compute the loss with reduction='none' (reduce any other dimension yourself). If "
            "the shape is right, your collate_fn or dataset dropped samples: the plugin tracks which samples each "
            "batch holds, so batches must keep every sample the sampler drew, in order"
        )


def check_indices(indices: Any, tracked: Tensor) -> None:
    """Indices a user passes must be the batch's dataset indices (catches positions passed by mistake)."""
    if not isinstance(indices, Tensor) or indices.is_floating_point() or indices.dtype == torch.bool:
        got = indices.dtype if isinstance(indices, Tensor) else type(indices).__name__
        raise TypeError(
            f"pruning_loss(indices=...) needs the batch's dataset indices as an integer tensor, got {got}; or leave "
            "indices out: the plugin knows which samples each batch holds"
        )
    if indices.shape != tracked.shape or not torch.equal(indices.to(tracked.device).long(), tracked.long()):
        raise ValueError(
            "pruning_loss got indices that are not the samples of this batch: pass the dataset indices the batch "
            "carries (IndexedDataset's `batch.index`), not positions in the batch, or leave indices out: the plugin "
            "knows which samples each batch holds"
        )


def check_nonnegative(method: str, loss: Tensor) -> None:
    """Methods whose statistics take ``-log(loss)`` refuse negative losses."""
    finite = loss[torch.isfinite(loss)]
    if finite.numel() and float(finite.min()) < 0:
        raise ValueError(
            f"{method} needs per-sample losses >= 0, got {float(finite.min()):.4g}: its objective takes -log(loss). "
            "Shift the loss by a constant so it is non-negative (e.g. add the bound of a Gaussian NLL), or pick a "
            "method that ranks any real loss (infobatch, seta, el2n, random)"
        )


def method_inputs(method: Any, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The detached tensors ``method.inputs`` names, from what ``pruning_loss`` received."""
    missing = [name for name in method.inputs if name not in inputs]
    if missing:
        given = ", ".join(f"{m}=..." for m in method.inputs)
        raise ValueError(
            f"{type(method).__name__} needs {missing} for its statistics: call "
            f"`self.pruning_loss(per_sample_loss, {given})` in training_step"
        )
    return {name: inputs[name].detach() for name in method.inputs}


def check_fit(trainer: Any, pl_module: Any, pruning: Any, harness: tuple[type, ...]) -> None:
    """What a pruning fit needs of the Trainer and the module, checked when the fit sets up.

    Raises:
        TypeError: a module without the mixin.
        ValueError: two pruning callbacks (``harness``: their types), no finite ``max_epochs``, ``overfit_batches``.
    """
    from lightning.pytorch.utilities import rank_zero_warn

    owner, name = type(pruning).__name__, type(pl_module).__name__
    if not callable(getattr(pl_module, "pruning_loss", None)):
        raise TypeError(
            f"{owner} needs the LightningModule to mix in PruningPerformanceController, but {name} does not. Fix: "
            f"`class {name}(PruningPerformanceController, LightningModule)` and return "
            "`self.pruning_loss(per_sample_loss)` from training_step"
        )
    others: list[Any] = [c for c in trainer.callbacks if isinstance(c, harness)]
    if len(others) > 1:  # (BatchSelection would hand pruning_loss part of the batch DataPruning planned)
        names = ", ".join(f"{type(c).__name__}({c.method.name}, {c.target.describe()})" if hasattr(c, "target")
                          else type(c).__name__ for c in others)  # fmt: skip
        raise ValueError(f"one pruning callback drives a fit, got {len(others)}: keep one of {names}")
    if trainer.max_epochs is None or trainer.max_epochs < 1:
        raise ValueError(
            f"{owner} schedules pruning by epoch and needs a finite number of epochs; pass Trainer(max_epochs=...) "
            f"(got max_epochs={trainer.max_epochs})"
        )
    if trainer.overfit_batches > 0:
        raise ValueError(
            f"{owner} cannot run with Trainer(overfit_batches={trainer.overfit_batches}): Lightning then replaces the "
            "training sampler, so the pruning plan would not be what is trained on"
        )
    target = pruning.target
    prunes = (target.budget or 1.0) < 1.0 if target.prune_ratio is None else target.prune_ratio > 0
    if trainer.max_epochs <= pruning.warmup_epochs and prunes and not pruning.method.forward_all:
        rank_zero_warn(
            f"max_epochs={trainer.max_epochs} <= warmup_epochs={pruning.warmup_epochs}: no epoch is pruned during "
            "training (the kept subset is still exported at the end). Lower warmup_epochs or train longer."
        )
