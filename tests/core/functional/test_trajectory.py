"""The vectorised epoch update of AdaPruner equals the sequential per-step procedure of docs/method.md."""

import math

import pytest
import torch

from lightning_adapruner.core import functional as F

pytestmark = pytest.mark.bits  # exact results: also run under other CPU kernels


def sequential_epoch(m, mom, order, losses, batch, k, lam, delta, r, gain, binarise, lr, mu, wd):
    """docs/method.md literally: per step, the autograd gradient of T1 + T2 + T3, SGD on the batch rows, controllers."""
    m, mom = m.clone().double(), mom.clone().double()
    below = 0
    for start in range(0, order.numel(), batch):
        idx, loss = order[start : start + batch], losses[start : start + batch].double()
        mb = m[idx].clone().requires_grad_(True)
        s = torch.sigmoid(k * mb)
        objective = (s * loss).mean() + (s * -torch.log(loss + F.LOG_EPS)).mean() + lam * (s.mean() - r) ** 2
        objective.backward()
        buf = mom[idx] * mu + mb.grad + wd * m[idx]
        mom[idx], m[idx] = buf, m[idx] - lr * buf
        rho = float((s > 0.5).double().mean())
        lam = 1.0 + gain * abs(rho - r)
        below += rho < r
        k = k + delta * (rho >= r)
        if binarise:
            outside = float(((s < 0.1) | (s > 0.9)).double().mean())
            k = k + 10 * delta * (outside < 0.9)
    return m, mom, k, lam, below


@pytest.mark.parametrize("binarise", [False, True])
@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_the_epoch_update_equals_the_sequential_procedure(binarise, pieces):
    g = torch.Generator().manual_seed(0)
    n, batch = 203, 16
    m0 = torch.randn(n, generator=g) * 0.5 + 0.3
    mom0 = torch.randn(n, generator=g) * 0.01
    order = torch.randperm(n, generator=g)
    losses = torch.rand(n, generator=g) * 3
    cfg = dict(k=0.9, lam=16.0, delta=0.05, r=0.7, gain=50.0, lr=0.1, mu=0.9, wd=5e-4)
    ref_m, ref_mom, ref_k, ref_lam, ref_below = sequential_epoch(
        m0, mom0, order, losses, batch, binarise=binarise, **cfg
    )

    nb = math.ceil(n / batch)
    path = F.trajectory(m0[order], batch, nb, cfg["k"], cfg["lam"], cfg["delta"], cfg["r"], cfg["gain"], binarise)
    m, mom = m0.clone(), mom0.clone()
    positions = torch.arange(n)
    for piece in torch.tensor_split(torch.arange(nb), pieces):  # any batch-aligned pieces
        sel = torch.isin(positions // batch, piece)
        F.mask_step_(
            m, mom, order[sel], losses[sel], positions[sel] // batch, path, cfg["r"], cfg["lr"], cfg["mu"], cfg["wd"]
        )
    assert torch.allclose(m.double(), ref_m, atol=1e-6) and torch.allclose(mom.double(), ref_mom, atol=1e-6)
    assert float(path.k[nb]) == pytest.approx(ref_k, abs=1e-5) and float(path.lam[nb]) == pytest.approx(ref_lam)
    assert int((path.rho < cfg["r"]).sum()) == ref_below


def test_pieces_agree_with_one_update_to_rounding():
    """Elementwise, so pieces compute what one update does; but not bit for bit on every CPU: vectorised kernels
    (AVX2, AVX-512) round a tensor's tail differently from its body, so where a piece starts moves a few entries
    between the two paths (seen on AVX-512: momentum off by 1.9e-9 in 2 of 100 entries)."""
    g = torch.Generator().manual_seed(1)
    n, batch = 100, 10
    m0, order, losses = torch.randn(n, generator=g), torch.randperm(n, generator=g), torch.rand(n, generator=g)
    path = F.trajectory(m0[order], batch, n // batch, 0.5, 10.0, 0.01, 0.6, 50.0, False)
    batches = torch.arange(n) // batch
    whole_m, whole_mom = m0.clone(), torch.zeros(n)
    F.mask_step_(whole_m, whole_mom, order, losses, batches, path, 0.6, 0.1, 0.9, 5e-4)
    split_m, split_mom = m0.clone(), torch.zeros(n)
    for lo, hi in [(0, 30), (30, 100)]:
        F.mask_step_(split_m, split_mom, order[lo:hi], losses[lo:hi], batches[lo:hi], path, 0.6, 0.1, 0.9, 5e-4)
    torch.testing.assert_close(split_m, whole_m, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(split_mom, whole_mom, rtol=1e-6, atol=1e-8)
    assert not torch.equal(split_mom, torch.zeros(n))  # the update moved them


def test_rows_not_updated_stay_exactly_where_they_were():
    m, mom = torch.ones(10), torch.zeros(10)
    path = F.trajectory(torch.ones(10), 5, 2, 0.5, 10.0, 0.01, 0.6, 50.0, False)
    F.mask_step_(
        m, mom, torch.tensor([2, 7]), torch.tensor([0.5, 2.0]), torch.tensor([0, 1]), path, 0.6, 0.1, 0.9, 5e-4
    )
    untouched = torch.ones(10, dtype=torch.bool)
    untouched[[2, 7]] = False
    assert torch.all(m[untouched] == 1.0) and torch.all(mom[untouched] == 0.0) and (m[[2, 7]] != 1.0).all()


def test_k_backs_off_when_the_batch_share_stays_under_target():
    assert F.k_after_epoch(2.0, 4, 32, 0.1, 0.1) == pytest.approx(1.6)
    assert F.k_after_epoch(2.0, 1, 32, 0.1, 0.1) == 2.0 and F.k_after_epoch(0.3, 30, 32, 0.1, 0.1) == 0.1


@pytest.mark.parametrize("binarise", [False, True])
@pytest.mark.parametrize("batch", [5, 48, 64])
def test_a_trajectory_taken_in_blocks_of_rows_is_the_one_pass_bit_for_bit(monkeypatch, binarise, batch):
    """A large epoch's trajectory runs over its rows a block at a time; on one thread each position meets the same
    kernels as in one pass (blocks of a multiple of 64 positions: AVX2's sigmoid rounds a tensor's tail otherwise),
    so the controllers are the same bits, the last block short and padded."""
    from lightning_adapruner.core.functional import adapruner

    g = torch.Generator().manual_seed(batch)
    logits = torch.randn(300 * batch - 3, generator=g) * 4
    args = (logits, batch, 300, 2.0, 16.0, 0.01, 0.6, 50.0, binarise)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (several threads split one pass at points of their own)
    try:
        whole = F.trajectory(*args)
        monkeypatch.setattr(adapruner, "_BLOCK", 70)  # blocks of 64 rows (batch 5), 4 (48) or 1 (64)
        blocks = F.trajectory(*args)
    finally:
        torch.set_num_threads(threads)
    for name in ("k", "lam", "rho", "mean_score", "size"):
        assert torch.equal(getattr(blocks, name), getattr(whole, name)), name
    assert blocks.size.tolist()[-2:] == [batch, batch - 3]
