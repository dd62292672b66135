import math

import pytest
import torch

from lightning_adapruner.core import functional as F


@pytest.mark.parametrize("shape", F.SCHEDULE_SHAPES)
def test_keep_share_warmup_then_monotone_down_to_target_and_holds(shape):
    shares = [F.keep_share_at(e, 0.4, warmup_epochs=2, prune_epochs=4, shape=shape) for e in range(10)]
    assert shares[:2] == [1.0, 1.0]
    assert all(a >= b for a, b in zip(shares, shares[1:]))
    assert shares[5:] == pytest.approx([0.6] * 5)  # target reached at the last prune epoch, then held
    assert shares[2] < 1.0


def test_keep_share_linear_steps():
    assert [round(F.keep_share_at(e, 0.3, 1, 3), 6) for e in range(5)] == [1.0, 0.9, 0.8, 0.7, 0.7]
    assert F.keep_share_at(7, 0.0, 0, 3) == 1.0


def test_select_kept_takes_exact_top_k():
    logits = torch.tensor([0.5, 3.0, -1.0, 2.0, 0.0, 1.0])
    kept = F.select_kept(logits, 3, F.tie_break_generator(0, 0))
    assert kept.tolist() == [1, 3, 5]
    assert F.select_kept(logits, 0, F.tie_break_generator(0, 0)).numel() == 0
    with pytest.raises(ValueError, match="k_keep"):
        F.select_kept(logits, 7, F.tie_break_generator(0, 0))


def test_select_kept_ties_are_seeded():
    logits = torch.ones(1000)
    a = F.select_kept(logits, 500, F.tie_break_generator(1, 3))
    b = F.select_kept(logits, 500, F.tie_break_generator(1, 3))
    c = F.select_kept(logits, 500, F.tie_break_generator(1, 4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.numel() == 500 and a.unique().numel() == 500


def test_select_kept_class_floor():
    # class 1 has the 5 worst logits; a floor of 2 keeps its 2 best anyway
    logits = torch.tensor([5.0, 4, 3, 2, 1, -1, -2, -3, -4, -5])
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    plain = F.select_kept(logits, 4, F.tie_break_generator(0, 0), labels)
    assert plain.tolist() == [0, 1, 2, 3]
    floored = F.select_kept(logits, 4, F.tie_break_generator(0, 0), labels, class_floor=2)
    assert floored.tolist() == [0, 1, 5, 6]
    with pytest.raises(ValueError, match="class_floor"):
        F.select_kept(logits, 3, F.tie_break_generator(0, 0), labels, class_floor=2)


def test_mask_gradient_matches_autograd_of_the_objective():
    torch.manual_seed(0)
    m = torch.randn(16, dtype=torch.float64, requires_grad=True)
    loss = torch.rand(16, dtype=torch.float64) * 3
    k, lam, r = torch.tensor(0.7, dtype=torch.float64), torch.tensor(12.0, dtype=torch.float64), 0.7
    s = torch.sigmoid(k * m)
    objective = (s * loss).mean() + (s * -torch.log(loss + F.LOG_EPS)).mean() + lam * (s.mean() - r) ** 2
    objective.backward()
    assert torch.allclose(F.mask_gradient(m.detach(), loss, k, lam, r), m.grad)


def test_mask_gradient_ignores_non_finite_losses():
    m = torch.zeros(4)
    loss = torch.tensor([1.0, float("nan"), float("inf"), 0.5])
    grad = F.mask_gradient(m, loss, torch.tensor(1.0), torch.tensor(1.0), 0.5)
    assert torch.isfinite(grad).all()
    assert grad[1] == 0 and grad[2] == 0
    clean = F.mask_gradient(m[[0, 3]], loss[[0, 3]], torch.tensor(1.0), torch.tensor(1.0), 0.5)
    assert torch.allclose(grad[[0, 3]], clean)


def test_sparse_sgd_matches_torch_sgd_on_touched_rows_and_leaves_others():
    torch.manual_seed(0)
    logits, buf = torch.randn(10), torch.zeros(10)
    before = logits.clone()
    idx = torch.tensor([2, 5, 7])
    ref = torch.nn.Parameter(logits[idx].clone())
    opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9, weight_decay=5e-4)
    for step in range(3):
        grad = torch.randn(3, generator=torch.Generator().manual_seed(step))
        ref.grad = grad.clone()
        opt.step()
        F.sparse_sgd_step_(logits, buf, idx, grad, 0.1, 0.9, 5e-4)
    assert torch.allclose(logits[idx], ref.detach())
    untouched = torch.ones(10, dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(logits[untouched], before[untouched])


def test_first_occurrence():
    idx = torch.tensor([4, 1, 4, 2, 1, 9])
    first = F.first_occurrence(idx)
    assert sorted(first.tolist()) == [0, 1, 3, 5]
    assert sorted(idx[first].tolist()) == [1, 2, 4, 9]


def test_lambda_controller():
    assert float(F.next_lambda(torch.tensor(0.9), 0.7)) == pytest.approx(11.0)
    assert float(F.next_lambda(torch.tensor(0.7), 0.7)) == pytest.approx(1.0)


def test_k_schedule_steps_up_only_at_or_above_target_and_binarises():
    k = torch.tensor(1.0)
    scores = torch.full((8,), 0.5)  # nothing binarised
    assert float(F.next_k(k, torch.tensor(0.8), 0.7, 0.01, False, scores)) == pytest.approx(1.01)
    assert float(F.next_k(k, torch.tensor(0.6), 0.7, 0.01, False, scores)) == pytest.approx(1.0)
    assert float(F.next_k(k, torch.tensor(0.8), 0.7, 0.01, True, scores)) == pytest.approx(1.11)
    binary = torch.tensor([0.01, 0.99] * 4)
    assert float(F.next_k(k, torch.tensor(0.8), 0.7, 0.01, True, binary)) == pytest.approx(1.01)


def test_k_back_off_after_epoch():
    assert F.k_after_epoch(2.0, steps_below=10, steps=100, delta=0.01, k_min=0.1) == pytest.approx(1.9)
    assert F.k_after_epoch(2.0, steps_below=6, steps=100, delta=0.01, k_min=0.1) == 2.0  # < 1/16 of the steps
    assert F.k_after_epoch(0.15, steps_below=50, steps=50, delta=0.01, k_min=0.1) == 0.1


def test_batch_arithmetic():
    assert F.batches_per_epoch(700, 1, 32, drop_last_batch=False) == math.ceil(700 / 32)
    assert F.batches_per_epoch(701, 2, 32, drop_last_batch=False) == math.ceil(351 / 32)
    assert F.batches_per_epoch(701, 2, 32, drop_last_batch=True, drop_last_shard=True) == 350 // 32
    assert F.limit_batches(10, 4) == 4 and F.limit_batches(10, 0.5) == 5 and F.limit_batches(10, 1.0) == 10
    assert F.stepping_batches([10, 7], accumulate_grad_batches=3) == 4 + 3
    assert F.stepping_batches([10, 7], accumulate_grad_batches=1, max_steps=12) == 12


def test_sparse_sgd_inactive_rows_keep_logit_and_momentum():
    logits, buf = torch.ones(4), torch.full((4,), 0.5)
    F.sparse_sgd_step_(
        logits, buf, torch.tensor([0, 1]), torch.ones(2), 0.1, 0.9, 0.1, active=torch.tensor([True, False])
    )
    assert logits[1] == 1.0 and buf[1] == 0.5
    assert logits[0] != 1.0 and buf[0] != 0.5


def test_draw_revisits_comes_only_from_pruned_samples_and_is_seeded():
    kept = torch.arange(0, 100, 2)
    a = F.draw_revisits(100, kept, 10, F.tie_break_generator(0, 1))
    assert a.numel() == 10 and bool((a % 2 == 1).all()) and a.unique().numel() == 10
    assert torch.equal(a, F.draw_revisits(100, kept, 10, F.tie_break_generator(0, 1)))
    assert F.draw_revisits(100, kept, 80, F.tie_break_generator(0, 1)).numel() == 50
