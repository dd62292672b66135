"""Tests of the model zoo: network shapes and stems, and ``ImageClassifier`` fits on CPU."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR
from torch.utils.data import DataLoader, TensorDataset

from lightning_adapruner.app import models
from lightning_adapruner.app.models import (
    MLP,
    ImageClassifier,
    SmallCNN,
    build_scheduler,
    cifar_resnet18,
    cifar_resnet50,
    torchvision_model,
)

NUM_CLASSES = 10
INPUTS = {"fmnist": (1, 28, 28), "cifar": (3, 32, 32)}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def logits_of(net: nn.Module, shape: tuple[int, ...], batch: int = 2) -> torch.Tensor:
    return net.eval()(torch.randn(batch, *shape))


# --------------------------------------------------------------------------------------------- networks


def test_public_names():
    assert sorted(models.__all__) == sorted(
        [
            "MLP",
            "SCHEDULERS",
            "ImageClassifier",
            "LeNet",
            "SmallCNN",
            "build_scheduler",
            "cifar_resnet18",
            "cifar_resnet50",
            "default_optimizer",
            "torchvision_model",
        ]
    )


@pytest.mark.parametrize("shape", INPUTS.values(), ids=INPUTS.keys())
def test_small_cnn(shape):
    net = SmallCNN(in_channels=shape[0], num_classes=NUM_CLASSES)
    assert logits_of(net, shape).shape == (2, NUM_CLASSES)
    assert 100_000 <= n_params(net) <= 450_000
    assert n_params(SmallCNN(in_channels=shape[0], width=16)) < n_params(net)


@pytest.mark.parametrize("shape", INPUTS.values(), ids=INPUTS.keys())
def test_mlp(shape):
    in_features = shape[0] * shape[1] * shape[2]
    net = MLP(in_features, NUM_CLASSES, hidden=(64, 32), dropout=0.1)
    assert logits_of(net, shape).shape == (2, NUM_CLASSES)
    assert n_params(net) == (in_features * 64 + 64) + (64 * 32 + 32) + (32 * NUM_CLASSES + NUM_CLASSES)
    assert n_params(MLP(in_features, NUM_CLASSES, hidden=())) == in_features * NUM_CLASSES + NUM_CLASSES


def test_mlp_rejects_bad_dropout():
    with pytest.raises(ValueError, match="dropout"):
        MLP(784, 10, dropout=1.0)


@pytest.mark.parametrize(
    ("builder", "params_cifar10"),
    [(cifar_resnet18, 11_173_962), (cifar_resnet50, 23_520_842)],
    ids=["resnet18", "resnet50"],
)
@pytest.mark.parametrize("shape", INPUTS.values(), ids=INPUTS.keys())
def test_cifar_resnet(builder, params_cifar10, shape):
    net = builder(NUM_CLASSES, in_channels=shape[0])
    assert logits_of(net, shape).shape == (2, NUM_CLASSES)
    # The well-known CIFAR ResNet counts; a 1-channel stem has 2/3 fewer weights in conv1.
    stem_weights_saved = (3 - shape[0]) * 64 * 3 * 3
    assert n_params(net) == params_cifar10 - stem_weights_saved


@pytest.mark.parametrize("builder", [cifar_resnet18, cifar_resnet50], ids=["resnet18", "resnet50"])
def test_cifar_resnet_stem(builder):
    net = builder(100, in_channels=1)
    assert isinstance(net.conv1, nn.Conv2d)
    assert net.conv1.in_channels == 1
    assert net.conv1.kernel_size == (3, 3)
    assert net.conv1.stride == (1, 1)
    assert net.conv1.padding == (1, 1)
    assert net.conv1.bias is None
    assert isinstance(net.maxpool, nn.Identity)
    assert net.fc.out_features == 100
    # 32x32 in, 4x4 before the global pool: only the three stride-2 stages downsample.
    features = nn.Sequential(*list(net.children())[:-2]).eval()
    with torch.no_grad():
        assert features(torch.randn(1, 1, 32, 32)).shape[-2:] == (4, 4)


@pytest.mark.parametrize("in_channels", [1, 3, 5])
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_model(name, in_channels):
    net = torchvision_model(name, num_classes=NUM_CLASSES, in_channels=in_channels)
    assert logits_of(net, (in_channels, 64, 64)).shape == (2, NUM_CLASSES)


def test_torchvision_model_adapts_stem_with_model_init():
    net = torchvision_model("resnet18", num_classes=NUM_CLASSES, in_channels=1)
    assert net.conv1.in_channels == 1
    assert net.conv1.kernel_size == (7, 7) and net.conv1.stride == (2, 2)  # the ImageNet stem is kept


def test_torchvision_model_aux_heads_off():
    with torch.device("meta"):  # shapes only: building GoogLeNet for real takes seconds
        net = torchvision_model("googlenet", num_classes=NUM_CLASSES, in_channels=1).train()
        out = net(torch.randn(2, 1, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, NUM_CLASSES)


def test_torchvision_model_unknown_name():
    with pytest.raises(ValueError, match=r"'resnet7'.*") as err:
        torchvision_model("resnet7", num_classes=NUM_CLASSES)
    assert "resnet18" in str(err.value) and "mobilenet_v3_small" in str(err.value)


# --------------------------------------------------------------------------------------------- classifier


def make_dataset(n: int = 64, noise_seed: int = 0, shape: tuple[int, ...] = (1, 28, 28)) -> TensorDataset:
    """Noisy copies of one fixed random image per class: learnable within a couple of epochs. Datasets
    with different ``noise_seed`` share the class prototypes, so they are train/validation splits."""
    prototypes = torch.randn(NUM_CLASSES, *shape, generator=torch.Generator().manual_seed(1234))
    y = torch.arange(n) % NUM_CLASSES
    x = prototypes[y] + 0.5 * torch.randn(n, *shape, generator=torch.Generator().manual_seed(noise_seed))
    return TensorDataset(x, y)


def make_loader(dataset: TensorDataset, shuffle: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_size=32, shuffle=shuffle)


def make_trainer(max_epochs: int = 2) -> L.Trainer:
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )


def make_model(**kwargs) -> ImageClassifier:
    kwargs.setdefault("optimizer", functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9))
    return ImageClassifier(SmallCNN(in_channels=1, num_classes=NUM_CLASSES, width=16), NUM_CLASSES, **kwargs)


@torch.no_grad()
def dataset_loss(model: ImageClassifier, dataset: TensorDataset) -> float:
    x, y = dataset.tensors
    was_training = model.training
    loss = F.cross_entropy(model.eval()(x), y).item()
    model.train(was_training)
    return loss


def test_fit_onecycle(monkeypatch):
    L.seed_everything(0)
    train, val = make_dataset(n=512, noise_seed=0), make_dataset(n=64, noise_seed=1)
    model = make_model(scheduler="onecycle", optimizer=None)  # the default SGD, lr=0.1
    seen: list[torch.Tensor] = []
    pruning_loss = model.pruning_loss

    def spy(per_sample_loss, **kwargs):
        assert per_sample_loss.shape == kwargs["targets"].shape and per_sample_loss.requires_grad
        assert set(kwargs) == {"logits", "targets"}  # what the score-based methods may ask for
        seen.append(per_sample_loss.detach().clone())
        return pruning_loss(per_sample_loss, **kwargs)

    monkeypatch.setattr(model, "pruning_loss", spy)
    before = dataset_loss(model, train)
    trainer = make_trainer(max_epochs=2)
    trainer.fit(model, make_loader(train, shuffle=True), make_loader(val))

    assert dataset_loss(model, train) < 0.5 * before
    # training_step hands one loss per sample of every batch to the controller, every epoch
    assert torch.cat(seen).numel() == 2 * len(train)

    (config,) = trainer.lr_scheduler_configs
    assert isinstance(config.scheduler, OneCycleLR) and config.interval == "step"
    assert trainer.estimated_stepping_batches == 2 * len(train) // 32
    assert config.scheduler.total_steps == trainer.estimated_stepping_batches
    assert config.scheduler.last_epoch == trainer.estimated_stepping_batches == trainer.global_step
    # Annealed from 0.1 to ~0 (torch evaluates the lr one step past the end, a little above the floor).
    assert config.scheduler.get_last_lr()[0] < 1e-3

    metrics = trainer.callback_metrics
    for key in ("train/loss_epoch", "train/acc", "val/loss", "val/acc"):
        assert key in metrics, key
    assert 0.0 <= metrics["val/acc"] <= 1.0

    (results,) = trainer.test(model, make_loader(val), verbose=False)
    assert {"test/loss", "test/acc"} <= set(results)
    assert {"test/loss", "test/acc"} <= set(trainer.callback_metrics)
    assert results["test/acc"] > 0.5


@pytest.mark.parametrize("scheduler", ["cosine", "none"])
def test_fit_other_schedulers(scheduler):
    L.seed_everything(0)
    model = make_model(scheduler=scheduler, label_smoothing=0.1)
    trainer = make_trainer(max_epochs=1)
    trainer.fit(model, make_loader(make_dataset(n=64)))
    optimizer = trainer.optimizers[0]
    if scheduler == "none":
        assert trainer.lr_scheduler_configs == []
        assert optimizer.param_groups[0]["lr"] == 0.05
    else:
        (config,) = trainer.lr_scheduler_configs
        assert isinstance(config.scheduler, CosineAnnealingLR) and config.interval == "step"
        assert config.scheduler.T_max == trainer.estimated_stepping_batches == 2
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_scheduler_choice_is_validated():
    with pytest.raises(ValueError, match=r"scheduler must be one of \('onecycle', 'cosine', 'none'\), got 'step'"):
        make_model(scheduler="step")


@pytest.mark.parametrize(("kwargs", "match"), [({"label_smoothing": 1.0}, "label_smoothing"), ({}, "num_classes")])
def test_constructor_validation(kwargs, match):
    num_classes = NUM_CLASSES if kwargs else 1
    with pytest.raises(ValueError, match=match):
        ImageClassifier(SmallCNN(), num_classes, **kwargs)


def test_default_optimizer_and_hparams():
    model = ImageClassifier(SmallCNN(), NUM_CLASSES, scheduler="none")
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    assert {k: optimizer.defaults[k] for k in ("lr", "momentum", "weight_decay", "nesterov")} == {
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "nesterov": False,
    }
    assert "net" not in model.hparams
    assert model.hparams.num_classes == NUM_CLASSES and model.hparams.scheduler == "none"


@pytest.mark.parametrize(
    "optimizer",
    [
        functools.partial(torch.optim.SGD, lr=0.1),  # no momentum to cycle
        functools.partial(torch.optim.AdamW, lr=1e-3),  # betas instead of momentum
    ],
    ids=["sgd-no-momentum", "adamw"],
)
def test_onecycle_runs_its_steps_for_any_optimizer(optimizer):
    opt = optimizer([nn.Parameter(torch.zeros(2))])
    peak = opt.param_groups[0]["lr"]
    scheduler = build_scheduler("onecycle", opt, 10)
    lrs = []
    for _ in range(10):
        opt.step()
        scheduler.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert max(lrs) == pytest.approx(peak)
    assert scheduler.last_epoch == 10


@pytest.mark.parametrize("steps", [float("inf"), 0])
def test_build_scheduler_needs_finite_steps(steps):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="finite, positive number of steps"):
        build_scheduler("cosine", opt, steps)
