import torch

from lightning_adapruner.core import functional as F


def test_el2n_and_forgetting():
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]])
    scores = F.el2n_scores(logits, torch.tensor([0, 0, 1]))
    assert scores[0] < scores[2] < scores[1]
    prev, forgets = F.forgetting_update(
        torch.tensor([-1, 1, 1, 0]), torch.zeros(4, dtype=torch.int32), torch.tensor([1, 0, 1, 0])
    )
    assert prev.tolist() == [1, 0, 1, 0] and forgets.tolist() == [0, 1, 0, 0]
    ranked = F.forgetting_scores(torch.tensor([0, 2, 1]), torch.tensor([True, True, False]))
    assert ranked.tolist() == [0.0, 2.0, float("inf")]


def test_infobatch_drops_only_below_the_mean_within_its_design_and_reweights():
    g = torch.Generator().manual_seed(0)
    losses = torch.cat([torch.full((60,), 0.1), torch.full((40,), 2.0)])  # 60 below the mean
    kept, weights, beyond = F.infobatch_plan(losses, 80, g, prune_share=0.5)
    assert kept.numel() == 80 and beyond == 0
    assert set(range(60, 100)) <= set(kept.tolist())  # above-mean samples are never dropped by InfoBatch itself
    kept_below = kept[kept < 60]
    assert torch.allclose(weights[kept_below], torch.full((40,), 60 / 40))  # 1 / (1 - 20/60)
    assert torch.all(weights[60:] == 1.0)


def test_infobatch_beyond_its_design_is_random_and_counted_never_unbounded_weights():
    losses = torch.cat([torch.full((60,), 0.1), torch.full((40,), 2.0)])
    kept, weights, beyond = F.infobatch_plan(losses, 30, torch.Generator().manual_seed(0), prune_share=0.5)
    assert kept.numel() == 30 and beyond == 70 - 30
    assert float(weights.max()) == 2.0  # capped at 1 / (1 - prune_share), unlike a 1 / (1 - drop/|below|) blow-up
    assert (kept >= 60).any() and (kept < 60).any()  # the extra cut is random, not "keep only the hardest"


def test_kmeans_groups_are_sorted_easy_to_hard():
    values = torch.cat([torch.full((10,), 5.0), torch.zeros(10), torch.full((10,), 9.0)])
    labels, centres = F.kmeans_1d(values, 3)
    assert centres.tolist() == [0.0, 5.0, 9.0]
    assert torch.equal(labels, torch.cat([torch.ones(10), torch.zeros(10), torch.full((10,), 2.0)]).long())


def test_seta_window_slides_and_the_plan_holds_the_budget():
    assert F.seta_window(5, 0.6, 0) == (0, 5)
    assert {F.seta_window(5, 0.6, i) for i in range(1, 6)} == {(0, 3), (1, 4), (2, 5)}
    losses = torch.cat([torch.zeros(50), torch.full((50,), 5.0), torch.full((50,), 10.0)])
    kept, widened = F.seta_plan(losses, 40, iteration=1, num_groups=3, window_scale=0.34, gen=torch.Generator())
    assert kept.numel() == 40 and widened == 0 and bool(((kept >= 50) & (kept < 100)).all())  # the middle group
    kept, widened = F.seta_plan(losses, 90, iteration=1, num_groups=3, window_scale=0.34, gen=torch.Generator())
    assert kept.numel() == 90 and widened == 1  # one group added to reach the budget, and counted


def test_rs2_forwards_every_sample_once_before_any_twice():
    n, rounds = 50, iter(range(1, 100))

    def next_round():
        return torch.randperm(n, generator=torch.Generator().manual_seed(next(rounds)))

    perm, pos, stream = torch.randperm(n, generator=torch.Generator().manual_seed(0)), 0, []
    for budget in [20, 20, 20, 35, 15, 30, 45, 15]:
        kept, perm, pos = F.rs2_draw(perm, pos, budget, next_round)
        assert kept.numel() == budget and kept.unique().numel() == budget
        stream.append(kept)
    # whatever the budgets, the forwarded samples come in complete rounds: after 50 k of them, each sample
    # has been forwarded k times; epochs straddling a round boundary take the old round's tail first
    counts = torch.zeros(n, dtype=torch.long)
    for kept in stream:
        counts[kept] += 1
        assert int(counts.max()) - int(counts.min()) <= 1
    assert int(counts.sum()) == 200 and torch.all(counts == 4)
