"""Model zoo: plain networks (:mod:`.networks`) and the ``ImageClassifier`` LightningModule (:mod:`.classifier`)."""

from lightning_adapruner.app.models.classifier import SCHEDULERS, ImageClassifier, build_scheduler, default_optimizer
from lightning_adapruner.app.models.networks import (
    MLP,
    LeNet,
    SmallCNN,
    cifar_resnet18,
    cifar_resnet50,
    torchvision_model,
)

__all__ = [
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
