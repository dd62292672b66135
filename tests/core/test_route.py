"""``core/_route.py`` without a Trainer: a stand-in with the attributes the route reads, and Lightning's own data
source class, so each epoch's loader, its reuse and the route's undoing are checked directly."""

from types import SimpleNamespace

import pytest
import torch
from helpers import loader, random_dataset

from lightning_adapruner import RandomPruning
from lightning_adapruner.core._lightning import _private
from lightning_adapruner.core._route import TrainLoaderRoute
from lightning_adapruner.core._session import PruningSession
from lightning_adapruner.core.functional.schedule import PruningTarget

N, BATCH = 100, 10


def stand_in(train_loader, reload_every: int = 0) -> SimpleNamespace:
    source = _private("lightning.pytorch.trainer.connectors.data_connector", "_DataLoaderSource")
    return SimpleNamespace(
        fit_loop=SimpleNamespace(_data_source=source(train_loader, "train_dataloader")),
        reload_dataloaders_every_n_epochs=reload_every,
        current_epoch=0,
        world_size=1,
        global_rank=0,
        max_steps=-1,
        max_epochs=4,
        ckpt_path=None,
        limit_train_batches=1.0,
        val_check_interval=1.0,
        limit_val_batches=1.0,
        check_val_every_n_epoch=1,
        fast_dev_run=False,
        progress_bar_callback=None,
        is_global_zero=True,
        strategy=SimpleNamespace(world_size=1, root_device=torch.device("cpu"), broadcast=lambda obj, src=0: obj),
    )


def session() -> PruningSession:
    return PruningSession(RandomPruning(), PruningTarget(prune_ratio=0.5), 1, 2, "linear", 0, False)


def epoch_samples(trainer, epoch: int) -> tuple[object, list[int]]:
    trainer.current_epoch = epoch
    served = trainer.fit_loop._data_source.dataloader()
    return served, [int(i) for x, _ in served for i in x[:, -1]]


def test_each_epoch_serves_the_sessions_plan_through_one_reused_loader():
    user = loader(random_dataset(N), BATCH)
    trainer, pruning = stand_in(user), session()
    route = TrainLoaderRoute(trainer, pruning, "DataPruning", None, seed=3)
    assert trainer.reload_dataloaders_every_n_epochs == 1  # Lightning re-sizes an epoch only on a reload
    first, samples0 = epoch_samples(trainer, 0)
    assert pruning.started and pruning.seed == 3 and sorted(samples0) == list(range(N))  # warm-up: full data
    for _ in range(pruning.record.num_batches):
        pruning.network_loss(torch.rand(BATCH))
        pruning.end_batch(True)
    again, samples1 = epoch_samples(trainer, 1)
    assert again is first  # the same loader object: persistent workers keep their workers
    assert len(samples1) == len(set(samples1)) == pruning.budget(1) < N
    assert sorted(samples1) == sorted(pruning.record.order_cpu[: pruning.budget(1)].tolist())
    assert first.batch_size == BATCH and first.dataset is user.dataset and first is not user
    route.close()
    assert trainer.reload_dataloaders_every_n_epochs == 0 and trainer.fit_loop._data_source.dataloader() is user


def test_a_loader_that_changes_mid_fit_is_refused_naming_what_changed():
    trainer, pruning = stand_in(loader(random_dataset(N), BATCH), reload_every=1), session()
    TrainLoaderRoute(trainer, pruning, "DataPruning", None, seed=0)
    epoch_samples(trainer, 0)
    trainer.fit_loop._data_source.instance = loader(random_dataset(N), BATCH * 2)
    with pytest.raises(ValueError, match="the training loader changed during the fit.*batch_size=10.*batch_size=20"):
        epoch_samples(trainer, 1)


def test_the_users_reload_setting_still_reloads_their_loader():
    trainer, pruning = stand_in(loader(random_dataset(N), BATCH), reload_every=2), session()
    route = TrainLoaderRoute(trainer, pruning, "DataPruning", None, seed=0)
    served = [epoch_samples(trainer, e)[0] for e in range(4)]
    assert served[0] is served[1] and served[1] is not served[2] and served[2] is served[3]
    route.close()
    assert trainer.reload_dataloaders_every_n_epochs == 2
