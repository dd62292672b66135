"""`PruningSession` without a Trainer (a whole fit, its budget, its choices) and its per-step path (no host sync)."""

import torch
from helpers import TinyModel, loader, random_dataset, trainer
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_adapruner import AdaPruner, DataPruning, InfoBatchPruning

# ATen ops that copy a device value to the host (or branch on one): on a GPU each waits for the stream
SYNCING = {"_local_scalar_dense", "item", "nonzero", "is_nonzero", "equal", "masked_select", "unique", "tolist"}


class OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


class LoggedSteps(TinyModel):
    """Logs the ATen ops of pruning_loss after the first steps (the first step of a fit checks the loss sign)."""

    def training_step(self, batch, batch_idx):
        loss = self.per_sample_loss(batch)
        if batch_idx < 2:
            return self.pruning_loss(loss)
        with self.log_ops:
            return self.pruning_loss(loss)


def test_the_per_step_path_never_reads_a_device_value_on_the_host():
    for method in (AdaPruner(), AdaPruner(network_weights="normalized"), InfoBatchPruning()):
        model = LoggedSteps()
        model.log_ops = OpLog()
        cb = DataPruning(method, 0.3, export_dir=False)
        end_ops = OpLog()
        original = cb.session.__class__.end_batch

        def logged_end_batch(session, returned_loss, _orig=original, _log=end_ops):
            with _log:
                return _orig(session, returned_loss)

        cb.session.__class__.end_batch = logged_end_batch
        try:
            trainer(max_epochs=3, callbacks=[cb]).fit(model, loader(random_dataset(300), 20))
        finally:
            cb.session.__class__.end_batch = original
        ops = set(model.log_ops.ops) | set(end_ops.ops)
        assert model.log_ops.ops, "the hot path ran"
        assert not ops & SYNCING, (type(method).__name__, sorted(ops & SYNCING))


def test_the_op_log_does_see_a_host_read():
    log = OpLog()
    with log:
        float(torch.tensor([1.0, 2.0]).sum())
        torch.tensor([0, 1]).nonzero()
    assert {"_local_scalar_dense", "nonzero"} <= set(log.ops)


def test_a_checkpoint_restored_after_the_fit_started_is_applied_at_once():
    """Strategies that restore callbacks after setting up (FSDP, DeepSpeed) hand the state over late."""
    from lightning_adapruner.core._distributed import SingleProcess
    from lightning_adapruner.core._loader import LoaderFacts
    from lightning_adapruner.core._session import PruningSession
    from lightning_adapruner.core.functional.schedule import PruningTarget

    def session():
        s = PruningSession(AdaPruner(), PruningTarget(prune_ratio=0.4), 1, 1, "linear", 0, False)
        s.start(LoaderFacts(100, 10, False, True, 1.0, 3, torch.device("cpu")), SingleProcess(), seed=0)
        return s

    first = session()
    record = first.plan(0)
    for _ in range(record.num_batches):
        first.network_loss(torch.rand(10), None, {})
        first.end_batch(True)
    first.plan(1)
    state = first.state_dict()
    late = session()
    late.plan(0)  # planned before the checkpoint arrived
    late.load_state_dict(state)
    assert late.restored and late.closed_epoch == 0 and late.plan(1).epoch == 1
    assert torch.equal(late.method.logits, first.method.logits) and torch.equal(late.kept, first.kept)


def _fit_without_a_trainer(target, epochs=5, n=200, batch=16, seed=0):
    """Drive a session through a whole fit as the callback would: plan, one loss per batch, close, finish."""
    from lightning_adapruner.core._distributed import SingleProcess
    from lightning_adapruner.core._loader import LoaderFacts
    from lightning_adapruner.core._session import PruningSession

    session = PruningSession(AdaPruner(), target, 1, None, "linear", 0, False)
    session.start(LoaderFacts(n, batch, False, True, 1.0, epochs, torch.device("cpu")), SingleProcess(), seed)
    losses = torch.rand(n, generator=torch.Generator().manual_seed(seed))
    planned = []
    for epoch in range(epochs):
        record = session.plan(epoch)
        planned.append(record.order_cpu[: record.num_unique].clone())
        for step in range(record.num_batches):
            network = session.network_loss(losses[record.indices(step)].requires_grad_())
            assert network.requires_grad
            session.end_batch(True)
    return session, planned, session.finish(epochs - 1)


def test_a_whole_fit_through_the_session_meets_its_budget_to_the_sample():
    from lightning_adapruner.core.functional.schedule import PruningTarget

    session, planned, exported = _fit_without_a_trainer(PruningTarget(budget=0.6))
    assert session.ledger.forwarded == sum(p.numel() for p in planned) == round(0.6 * 200 * 5)
    assert session.ledger.full == 200 * 5 and abs(session.ledger.saved_share - 0.4) < 1e-12
    assert planned[0].numel() == 200 and all(len(set(p.tolist())) == p.numel() for p in planned)
    assert bool(session.seen.all()) and session.closed_epoch == 4
    assert exported.numel() == round(session.schedule.keep_fraction * 200)
    again = _fit_without_a_trainer(PruningTarget(budget=0.6))
    assert all(torch.equal(a, b) for a, b in zip(planned, again[1])) and torch.equal(exported, again[2])
    other = _fit_without_a_trainer(PruningTarget(budget=0.6), seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(planned, other[1]))


def test_the_session_keeps_the_samples_its_method_ranks_highest():
    """AdaPruner's logits fall with low loss (T2 pushes easy samples out): after warm-up the cut drops mostly
    the samples whose loss was lowest."""
    from lightning_adapruner.core.functional.schedule import PruningTarget

    session, planned, _ = _fit_without_a_trainer(PruningTarget(prune_ratio=0.5), epochs=3)
    losses = torch.rand(200, generator=torch.Generator().manual_seed(0))
    kept = set(planned[1].tolist())
    cut = [i for i in range(200) if i not in kept]
    assert losses[cut].mean() < losses[list(kept)].mean()
