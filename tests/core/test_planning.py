"""``core/_planning.py`` without a Trainer: the evidence policy, the check of a plan and of a schedule."""

from types import SimpleNamespace

import pytest
import torch

from lightning_adapruner import Observations, PruningMethod
from lightning_adapruner.core._planning import check_plan, check_schedule, choose
from lightning_adapruner.core.functional.schedule import KeepSchedule
from lightning_adapruner.core.method import FitInfo


class KeepLowest(PruningMethod):
    """Plans the lowest indices it is offered: which candidates reached the plan shows in the result."""

    def __init__(self, evidence: torch.Tensor | None = None) -> None:
        super().__init__(name="keep_lowest", nested=False)
        self._evidence = evidence
        self.offered: list[torch.Tensor] = []

    def update(self, observations: Observations) -> None:
        pass

    def plan(self, candidates: torch.Tensor, budget: int, epoch: int) -> torch.Tensor:
        self.offered.append(candidates.clone())
        return candidates.sort().values[:budget]

    def evidence(self) -> torch.Tensor | None:
        return self._evidence


def _choose(method, seen, budget=40, seed=0, epoch=1, labels=None, class_floor=0):
    candidates = torch.arange(seen.numel())
    return choose(method, candidates, True, budget, epoch, seen, labels, class_floor, seed)


def test_samples_never_forwarded_are_kept_at_the_cuts_rate_and_drawn_at_random():
    seen = torch.arange(100) < 50  # 0..49 forwarded, 50..99 never
    method = KeepLowest()
    kept, unseen = _choose(method, seen)
    assert unseen == 50 and kept.numel() == 40 and kept.unique().numel() == 40
    assert method.offered[0].tolist() == list(range(50))  # the plan ranks only samples with evidence
    assert kept[kept < 50].tolist() == list(range(20))  # its part: budget 40 minus the unseen quota of 20
    drawn = kept[kept >= 50]
    assert drawn.numel() == 20  # 40 x 50/100: neither favoured nor penalised
    again, _ = _choose(KeepLowest(), seen)
    other, _ = _choose(KeepLowest(), seen, seed=1)
    assert torch.equal(again, kept) and not torch.equal(other[other >= 50].sort().values, drawn.sort().values)


def test_a_method_with_its_own_evidence_overrides_what_was_forwarded():
    seen = torch.ones(100, dtype=torch.bool)
    evidence = torch.arange(100) >= 10  # the method has no score for 0..9 although they were forwarded
    kept, unseen = _choose(KeepLowest(evidence), seen, budget=50)
    assert unseen == 10 and kept[kept >= 10].sort().values.tolist() == list(range(10, 55))


def test_with_evidence_everywhere_the_plan_is_taken_as_it_is():
    kept, unseen = _choose(KeepLowest(), torch.ones(100, dtype=torch.bool))
    assert unseen == 0 and kept.tolist() == list(range(40))


def test_a_class_floor_tops_up_a_class_the_plan_left_short():
    labels = torch.arange(100) // 50  # class 0: 0..49, class 1: 50..99; the plan keeps only class 0
    kept, _ = _choose(KeepLowest(), torch.ones(100, dtype=torch.bool), labels=labels, class_floor=5)
    assert kept.numel() == 40 and int((labels[kept] == 1).sum()) == 5


@pytest.mark.parametrize(
    ("kept", "message"),
    [
        (torch.arange(39), "returned 39 samples for epoch 1, not its budget of 40"),
        (torch.cat([torch.arange(39), torch.tensor([100])]), r"indices outside \[0, 100\)"),
        (torch.cat([torch.arange(39), torch.tensor([0])]), "distinct samples from its candidates"),
    ],
)
def test_a_wrong_plan_is_refused_naming_the_method(kept, message):
    with pytest.raises(RuntimeError, match=message):
        check_plan("KeepLowest", kept, torch.arange(100), True, 40, 1, 100)


def test_a_plan_outside_its_candidates_is_refused():
    candidates = torch.arange(50, 100)
    with pytest.raises(RuntimeError, match="distinct samples from its candidates"):
        check_plan("KeepLowest", torch.arange(40), candidates, False, 40, 1, 100)
    check_plan("KeepLowest", torch.arange(50, 90), candidates, False, 40, 1, 100)  # among them: accepted


def _facts(**over):
    base = dict(num_samples=100, batch_size=10, drop_last=False, limit_batches=1.0, val_check_batches=None, labels=None)
    return SimpleNamespace(**{**base, **over})


def test_a_schedule_that_cannot_run_names_the_setting_to_change():
    with pytest.raises(ValueError, match="fewer than the 4 process.*Prune less"):
        check_schedule([100, 3], (10, 1), _facts(), 4, "prune_ratio=0.97", 0)
    with pytest.raises(ValueError, match="makes no batch of 10.*drop_last=False"):
        check_schedule([100, 5], (10, 0), _facts(drop_last=True), 1, "prune_ratio=0.95", 0)
    with pytest.raises(ValueError, match="val_check_interval=5"):
        check_schedule([100, 40], (10, 4), _facts(val_check_batches=5), 1, "prune_ratio=0.6", 0)
    labels = torch.arange(100) % 4
    with pytest.raises(ValueError, match="class_floor=10 needs 40 samples but the smallest epoch keeps 30"):
        check_schedule([100, 30], (10, 3), _facts(labels=labels), 1, "prune_ratio=0.7", 10)
    check_schedule([100, 40], (10, 4), _facts(labels=labels), 1, "prune_ratio=0.6", 10)  # 40 fits the floors


class KeepLowestByScore(KeepLowest):
    """Ranks by score through ``select_top``, so the fit's class floor applies in the plan where it fits."""

    def plan(self, candidates: torch.Tensor, budget: int, epoch: int) -> torch.Tensor:
        self.offered.append(candidates.clone())
        self.planned = self.select_top(candidates, budget, -torch.arange(self.fit.num_samples).float(), epoch)
        return self.planned


@pytest.mark.parametrize(("budget", "floor_in_plan"), [(40, False), (80, True)])
def test_the_class_floor_applies_in_the_ranked_part_only_where_it_fits(budget, floor_in_plan):
    """0..39 forwarded, 40..99 never; class 1 is 30..39 and 90..99. The plan ranks the seen ones for
    ``budget - quota`` places: 16 are too few for the floors (10 + 10), 32 are enough. Either way the merged set
    holds both floors, and the fit's facts are never swapped out under the method."""
    labels = ((torch.arange(100) % 60) >= 30).long() * (torch.arange(100) % 60 < 40).long()
    labels[90:] = 1
    seen = torch.arange(100) < 40
    method = KeepLowestByScore()
    info = FitInfo(100, KeepSchedule(0.6, 1, 1, "step", 2), (1, 1), 0, torch.device("cpu"), labels, 10)
    method.reset(info)
    kept, unseen = _choose(method, seen, budget=budget, labels=labels, class_floor=10)
    assert unseen == 60 and kept.numel() == budget and kept.unique().numel() == budget
    assert torch.bincount(labels[kept], minlength=2).min() >= 10
    assert (set(range(30, 40)) <= set(method.planned.tolist())) == floor_in_plan  # class 1's best, by score
    assert method.info is info
