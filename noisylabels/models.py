"""Networks: the seed's 9-layer CNN for images, a 1-D CNN and an MLP for MNIST-1D."""

from __future__ import annotations

import torch
from torch import nn

MODELS = ("cnn9", "cnn1d", "mlp")


def _conv_bn(cin: int, cout: int, padding: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=padding), nn.BatchNorm2d(cout), nn.LeakyReLU(0.01)]


class CNN9(nn.Module):
    """The 9-layer CNN of the Co-teaching experiments (seed slides, "Experiments - Setup").

    Three blocks of 3x3 convolutions (128, 256, then 512/256/128 unpadded), each
    convolution followed by batch norm and LeakyReLU(0.01); 2x2 max-pool and
    dropout p=0.25 after the first two blocks; global average pool; dense
    128 -> classes.  Works on 28x28 and 32x32 inputs of any channel count.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.25) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        layers += _conv_bn(in_channels, 128, 1) + _conv_bn(128, 128, 1) + _conv_bn(128, 128, 1)
        layers += [nn.MaxPool2d(2, 2), nn.Dropout2d(dropout)]
        layers += _conv_bn(128, 256, 1) + _conv_bn(256, 256, 1) + _conv_bn(256, 256, 1)
        layers += [nn.MaxPool2d(2, 2), nn.Dropout2d(dropout)]
        layers += _conv_bn(256, 512, 0) + _conv_bn(512, 256, 0) + _conv_bn(256, 128, 0)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class CNN1D(nn.Module):
    """A small 1-D CNN for MNIST-1D signals of shape (batch, length)."""

    def __init__(self, length: int, num_classes: int, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int, k: int, stride: int) -> list[nn.Module]:
            return [nn.Conv1d(cin, cout, k, stride, k // 2), nn.BatchNorm1d(cout), nn.LeakyReLU(0.01)]

        self.features = nn.Sequential(
            *block(1, width, 5, 1),
            *block(width, 2 * width, 5, 2),
            *block(2 * width, 2 * width, 3, 2),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(2, 1, length)).shape[1]
        self.classifier = nn.Sequential(nn.Linear(n_flat, 128), nn.LeakyReLU(0.01), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.unsqueeze(1)))


class MLP(nn.Module):
    """Two hidden ReLU layers; on MNIST-1D it shows the memorisation dip clearly."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def default_model(input_shape: tuple[int, ...]) -> str:
    """cnn9 for images (C, H, W), cnn1d for 1-D signals."""
    return "cnn9" if len(input_shape) == 3 else "cnn1d"


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Instantiate a model by name for inputs of ``input_shape`` (without the batch dim)."""
    if name == "cnn9":
        if len(input_shape) != 3:
            raise ValueError(f"cnn9 needs image inputs (C, H, W), got shape {input_shape}")
        return CNN9(input_shape[0], num_classes)
    if name == "cnn1d":
        if len(input_shape) != 1:
            raise ValueError(f"cnn1d needs 1-D inputs (length,), got shape {input_shape}")
        return CNN1D(input_shape[0], num_classes)
    if name == "mlp":
        n = 1
        for d in input_shape:
            n *= d
        return MLP(n, num_classes)
    raise ValueError(f"unknown model {name!r}; use one of {', '.join(MODELS)}")
