"""Pure decision logic: schedules, selection, AdaPruner's mask update and the baselines' scores.

Tensors and numbers in, tensors and numbers out (the ``*_`` functions update the tensors they are given in
place and nothing else); none of them knows about Lightning, so each is tested without a Trainer.
"""

from lightning_adapruner.core.functional.adapruner import (
    LOG_EPS,
    Trajectory,
    k_after_epoch,
    mask_step_,
    normalise_per_batch,
    trajectory,
)
from lightning_adapruner.core.functional.batch import batch_keep, batch_kept_count, compute_share, take_samples
from lightning_adapruner.core.functional.schedule import (
    SCHEDULE_SHAPES,
    ScheduleShape,
    annealed_epochs,
    annealed_keep_share_at,
    epoch_sample_counts,
    full_epoch_samples,
    keep_share_at,
    limit_batches,
    num_batches,
    num_kept,
    shard_length,
    solve_prune_ratio,
    stepping_batches,
)
from lightning_adapruner.core.functional.scores import (
    el2n_scores,
    forgetting_scores,
    forgetting_update,
    infobatch_plan,
    kmeans_1d,
    rs2_draw,
    seta_plan,
    seta_window,
)
from lightning_adapruner.core.functional.selection import (
    enforce_class_floor,
    epoch_order,
    evidence_quota,
    floor_total,
    generator,
    random_pick,
    random_subset,
    select_top,
)
from lightning_adapruner.core.functional.sharded import (
    balanced_block,
    order_keys,
    shard_span,
    sharded_random_pick,
    sharded_select_top,
)

__all__ = [
    "LOG_EPS",
    "SCHEDULE_SHAPES",
    "ScheduleShape",
    "Trajectory",
    "annealed_epochs",
    "balanced_block",
    "annealed_keep_share_at",
    "batch_keep",
    "batch_kept_count",
    "compute_share",
    "el2n_scores",
    "enforce_class_floor",
    "floor_total",
    "epoch_sample_counts",
    "epoch_order",
    "evidence_quota",
    "forgetting_scores",
    "full_epoch_samples",
    "forgetting_update",
    "generator",
    "infobatch_plan",
    "k_after_epoch",
    "keep_share_at",
    "kmeans_1d",
    "limit_batches",
    "mask_step_",
    "normalise_per_batch",
    "num_batches",
    "num_kept",
    "order_keys",
    "random_pick",
    "random_subset",
    "rs2_draw",
    "select_top",
    "take_samples",
    "seta_plan",
    "seta_window",
    "shard_length",
    "shard_span",
    "sharded_random_pick",
    "sharded_select_top",
    "solve_prune_ratio",
    "stepping_batches",
    "trajectory",
]
