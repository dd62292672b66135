"""The per-step path of the session: no operation that would synchronise the host with a GPU."""

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
