"""The PruningMethod protocol: declared state is allocated, moved, saved, loaded and versioned generically."""

import pytest
import torch

from lightning_adapruner import FitInfo, Observations, PruningMethod
from lightning_adapruner.core.functional.schedule import KeepSchedule

pytestmark = pytest.mark.bits  # exact results: also run under other CPU kernels


def uniform(n, gen):
    return torch.rand(n, generator=gen)


class Declared(PruningMethod):
    name = "declared"
    version = 2

    def __init__(self):
        super().__init__()
        self.add_state("score", 1.5)
        self.add_state("count", 0, dtype=torch.int32)
        self.add_state("flag", False, dtype=torch.bool, persistent=False)
        self.add_state("noise", uniform)
        self.add_state("scalar", 3.0, per_sample=False)

    def update(self, observations):
        self.score[observations.indices] = observations.loss

    def plan(self, candidates, budget, epoch):
        return self.select_top(candidates, budget, self.score, epoch)


def info(n=6, seed=0):
    return FitInfo(n, KeepSchedule(0.5, 1, 1, "step", 3), (1, 1, 1), seed, torch.device("cpu"))


def test_declared_state_is_allocated_at_the_fit_size_with_its_defaults():
    m = Declared()
    with pytest.raises(RuntimeError, match="allocated when the fit starts"):
        _ = m.score
    m.reset(info())
    assert m.score.tolist() == [1.5] * 6 and m.count.dtype == torch.int32 and m.flag.dtype == torch.bool
    assert m.scalar.shape == () and float(m.scalar) == 3.0
    again = Declared()
    again.reset(info())
    assert torch.equal(m.noise, again.noise)  # seeded from the fit's seed
    other = Declared()
    other.reset(info(seed=1))
    assert not torch.equal(m.noise, other.noise)


def test_state_round_trips_and_only_persistent_state_is_saved():
    m = Declared()
    m.reset(info())
    m.score[2] = 9.0
    m.count += 4
    m.flag[0] = True
    state = m.state_dict()
    assert set(state["states"]) == {"score", "count", "noise", "scalar"} and state["version"] == 2
    fresh = Declared()
    fresh.reset(info())
    fresh.load_state_dict(state)
    assert torch.equal(fresh.score, m.score) and torch.equal(fresh.count, m.count)
    assert not fresh.flag.any()  # not persistent: rebuilt from its default


def test_load_refuses_another_method_another_version_and_another_size():
    m = Declared()
    m.reset(info())
    state = m.state_dict()
    fresh = Declared()
    fresh.reset(info())
    with pytest.raises(ValueError, match="version 1"):
        fresh.load_state_dict({**state, "version": 1})
    with pytest.raises(ValueError, match="'other'"):
        fresh.load_state_dict({**state, "name": "other"})
    small = Declared()
    small.reset(info(n=4))
    with pytest.raises(ValueError, match="shape"):
        small.load_state_dict(state)


def test_an_upgrade_hook_can_read_old_versions():
    class Upgrading(Declared):
        def upgrade_state(self, states, version):
            return {**states, "scalar": torch.tensor(7.0)}

    m = Declared()
    m.reset(info())
    state = {**m.state_dict(), "version": 1}
    state["states"].pop("scalar")
    up = Upgrading()
    up.reset(info())
    up.load_state_dict(state)
    assert float(up.scalar) == 7.0


def test_bad_state_names():
    m = Declared()
    with pytest.raises(ValueError, match="new identifier"):
        m.add_state("score", 0.0)
    with pytest.raises(ValueError, match="new identifier"):
        m.add_state("plan", 0.0)
    with pytest.raises(ValueError, match="cannot be pickled.*module level, not as a lambda"):
        m.add_state("noisy", lambda n, gen: torch.rand(n, generator=gen))
    assert "noisy" not in m._specs  # refused whole


@pytest.mark.parametrize(
    "method",
    ["AdaPruner", "EL2NPruning", "ForgettingPruning", "InfoBatchPruning", "RS2Pruning", "RandomPruning", "SeTaPruning"],
)
def test_every_method_pickles_before_and_after_its_state_exists(method):
    """ddp_spawn pickles the callback and its method into each worker; deepcopy does the same walk."""
    import copy
    import pickle

    import lightning_adapruner

    fresh = getattr(lightning_adapruner, method)()
    assert type(pickle.loads(pickle.dumps(fresh))) is type(fresh)
    fresh.reset(info(n=8))
    clone = copy.deepcopy(fresh)
    for name, value in fresh.state_dict()["states"].items():
        torch.testing.assert_close(clone.state_dict()["states"][name], value, rtol=0, atol=0, equal_nan=True)


def test_device_moves_move_every_declared_state():
    m = Declared()
    m.reset(info())
    m.to(torch.device("meta"))
    assert {getattr(m, n).device.type for n in ("score", "count", "flag", "noise", "scalar")} == {"meta"}


def test_the_example_method_keeps_its_hardest_samples():
    from custom_method_example import KeepHardest

    m = KeepHardest()
    m.reset(info(6))
    m.update(
        Observations(
            0, torch.tensor([0, 1, 2, 3]), torch.tensor([0.1, 2.0, 0.3, 4.0]), torch.zeros(4, dtype=torch.long), {}
        )
    )
    assert m.plan(torch.arange(6), 2, 1).tolist() == [4, 5]  # never-seen samples (inf) first
    assert m.plan(torch.arange(4), 2, 1).tolist() == [1, 3]


def test_the_rank_checksum_is_equal_for_equal_states_with_nan():
    a, b = Declared(), Declared()
    a.reset(info())
    b.reset(info())
    a.score[1] = b.score[1] = float("nan")
    assert torch.equal(a.checksum(), b.checksum())
    b.score[2] = 2.0
    assert not torch.equal(a.checksum(), b.checksum())


def test_a_method_implements_update_and_plan_and_is_configured_by_its_constructor():
    class PlanOnly(PruningMethod):
        def plan(self, candidates, budget, epoch):
            return candidates[:budget]

    with pytest.raises(TypeError, match="abstract method.*update"):
        PlanOnly()
    from lightning_adapruner import RandomPruning

    static, dynamic = RandomPruning(), RandomPruning(dynamic=True)
    assert (static.name, static.nested, dynamic.name, dynamic.nested) == ("random", True, "random_dynamic", False)
    assert RandomPruning.name == "random" and not static.needs_evidence  # the class is not rewritten per instance
