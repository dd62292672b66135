"""Plain ``nn.Module`` networks: a small CNN and an MLP for quick CPU runs, the CIFAR-style ResNets of the
AdaPruner paper, and any torchvision classification model by name. None of them knows about Lightning."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

log = logging.getLogger(__name__)

# Models whose training-mode forward returns auxiliary outputs next to the logits unless told otherwise.
_AUX_LOGITS_MODELS = ("googlenet", "inception_v3")


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class LeNet(nn.Module):
    """A LeNet-5-size CNN (62k parameters at the default widths on 28x28 grey images): the study's network.

    ``conv5x5(c1, pad 2) -> pool -> conv5x5(c2) -> pool to 5x5 -> linear(120) -> linear(84) -> linear``, ReLU
    between. The second pooling is adaptive, so other image sizes work too (on 28x28 it is the usual 2x2 pool).

    Args:
        in_channels: channels of the input images.
        num_classes: number of output logits.
        channels: widths of the two convs.

    Example::

        >>> LeNet(in_channels=1, num_classes=10)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        >>> LeNet(in_channels=3, num_classes=10)(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: Sequence[int] = (6, 16)) -> None:
        super().__init__()
        c1, c2 = list(channels)
        _check_positive(in_channels=in_channels, num_classes=num_classes, c1=c1, c2=c2)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(inplace=True), nn.AdaptiveMaxPool2d(5), nn.Flatten(),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Linear(c2 * 5 * 5, 120), nn.ReLU(inplace=True), nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class SmallCNN(nn.Module):
    """A four-conv network for 28x28 (Fashion-MNIST) or 32x32 images; fast enough to train on a CPU.

    ``conv(w) -> pool -> conv(2w) -> pool -> conv(4w) -> conv(4w) -> global avg pool -> linear``, each
    conv 3x3 with batch norm and ReLU. About 242k parameters at ``width=32``; the global pooling makes
    it work for any input of at least 4x4 pixels.

    Args:
        in_channels: channels of the input images (1 for Fashion-MNIST, 3 for CIFAR).
        num_classes: number of output logits.
        width: channels of the first conv; the later ones have ``2 * width`` and ``4 * width``.

    Example::

        >>> SmallCNN(in_channels=1, num_classes=10)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, num_classes=num_classes, width=width)
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, width),
            nn.MaxPool2d(2),
            *_conv_bn_relu(width, 2 * width),
            nn.MaxPool2d(2),
            *_conv_bn_relu(2 * width, 4 * width),
            *_conv_bn_relu(4 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """A fully connected ReLU network on the flattened input.

    Args:
        in_features: number of input features after flattening (``784`` for 1x28x28 images).
        num_classes: number of output logits.
        hidden: widths of the hidden layers; empty for a linear classifier.
        dropout: dropout probability after every hidden layer (``0`` adds none).

    Raises:
        ValueError: if ``dropout`` is not in ``[0, 1)`` or a width is not positive.

    Example::

        >>> MLP(784, 10)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, in_features: int, num_classes: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.0
    ) -> None:
        super().__init__()
        _check_positive(in_features=in_features, num_classes=num_classes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        hidden = list(hidden)  # Hydra hands over a ListConfig
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {hidden}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def cifar_resnet18(num_classes: int, in_channels: int = 3) -> torchvision.models.ResNet:
    """torchvision's ResNet-18 with the CIFAR stem of the AdaPruner paper: a 3x3 stride-1 ``conv1`` and no
    max-pool, so 32x32 inputs reach the last stage at 4x4. 11.17M parameters for 10 classes.

    Args:
        num_classes: number of output logits.
        in_channels: channels of the input images.

    Example::

        >>> cifar_resnet18(10)(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return _cifar_resnet(torchvision.models.resnet18, num_classes, in_channels)


def cifar_resnet50(num_classes: int, in_channels: int = 3) -> torchvision.models.ResNet:
    """torchvision's ResNet-50 with the CIFAR stem (3x3 stride-1 ``conv1``, no max-pool); see
    :func:`cifar_resnet18`. 23.52M parameters for 10 classes.

    Args:
        num_classes: number of output logits.
        in_channels: channels of the input images.
    """
    return _cifar_resnet(torchvision.models.resnet50, num_classes, in_channels)


def _cifar_resnet(
    builder: Callable[..., torchvision.models.ResNet], num_classes: int, in_channels: int
) -> torchvision.models.ResNet:
    _check_positive(num_classes=num_classes, in_channels=in_channels)
    net = builder(weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(in_channels, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's ResNet init
    net.maxpool = nn.Identity()
    return net


def torchvision_model(name: str, num_classes: int, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """Any torchvision classification model by name, randomly initialised (never downloads weights).

    Built with ``torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)``.
    The names are those of ``torchvision.models.list_models(module=torchvision.models)`` (ResNets,
    VGG, DenseNet, MobileNet, EfficientNet, RegNet, ConvNeXt, ViT, Swin, ...). The ImageNet stems
    are kept as they are: use :func:`cifar_resnet18` / :func:`cifar_resnet50` for 32x32 inputs.
    Some models need a minimum input size (``inception_v3`` 75x75; ViT, Swin and MaxViT their
    configured ``image_size``, 224 by default).

    When ``in_channels != 3`` the first ``Conv2d`` taking 3 channels (the stem in every torchvision
    classification model) is replaced by one taking ``in_channels``, with the same shape otherwise;
    its weights are the model's own initial weights sliced (fewer channels) or tiled (more), so
    the model's init scheme is kept. ``googlenet`` and ``inception_v3`` default to
    ``aux_logits=False`` so that their forward returns plain logits.

    Args:
        name: model name, e.g. ``"resnet34"`` or ``"mobilenet_v3_small"``.
        num_classes: number of output logits.
        in_channels: channels of the input images.
        **kwargs: further keyword arguments of the model's builder (``dropout=0.2``, ...).

    Raises:
        ValueError: if ``name`` is not a torchvision classification model (the message lists the
            valid names), or the model has no 3-channel ``Conv2d`` to adapt to ``in_channels``.

    Example::

        >>> torchvision_model("resnet18", num_classes=10, in_channels=1)(torch.randn(2, 1, 64, 64)).shape
        torch.Size([2, 10])
    """
    _check_positive(num_classes=num_classes, in_channels=in_channels)
    valid = torchvision.models.list_models(module=torchvision.models)
    if name not in valid:
        raise ValueError(f"name must be a torchvision classification model, one of {valid}; got {name!r}")
    if name in _AUX_LOGITS_MODELS:
        kwargs.setdefault("aux_logits", False)
        kwargs.setdefault("init_weights", True)  # silences torchvision's FutureWarning about the default
    net = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    if in_channels != 3:
        _adapt_first_conv(net, name, in_channels)
    return net


def _adapt_first_conv(net: nn.Module, name: str, in_channels: int) -> None:
    """Replace ``net``'s first 3-channel ``Conv2d`` (in registration order) by an ``in_channels`` one."""
    found = next(
        (
            (path, m)
            for path, m in net.named_modules()
            if isinstance(m, nn.Conv2d) and m.in_channels == 3 and m.groups == 1
        ),
        None,
    )
    if found is None:
        raise ValueError(f"cannot adapt {name!r} to in_channels={in_channels}: it has no Conv2d taking 3 channels")
    path, module = found
    conv = nn.Conv2d(
        in_channels,
        module.out_channels,
        kernel_size=module.kernel_size,  # type: ignore[arg-type]
        stride=module.stride,  # type: ignore[arg-type]
        padding=module.padding,  # type: ignore[arg-type]
        dilation=module.dilation,  # type: ignore[arg-type]
        bias=module.bias is not None,
        padding_mode=module.padding_mode,
        device=module.weight.device,
        dtype=module.weight.dtype,
    )
    with torch.no_grad():
        channels = torch.arange(in_channels, device=module.weight.device) % 3
        conv.weight.copy_(module.weight[:, channels])
        if module.bias is not None:
            conv.bias.copy_(module.bias)
    parent_path, _, attr = path.rpartition(".")
    setattr(net.get_submodule(parent_path), attr, conv)
    log.debug("torchvision_model(%r): replaced %s with a %d-channel conv", name, path, in_channels)


def _check_positive(**values: int) -> None:
    for arg, value in values.items():
        if value < 1:
            raise ValueError(f"{arg} must be a positive integer, got {value}")
