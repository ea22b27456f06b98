"""Two small classifiers, sized for digits (8x8) and working for any CxHxW input."""

from __future__ import annotations

from torch import nn
from dpaccount.errors import InputError

__all__ = ["MLP", "CNN", "build_model"]


class MLP(nn.Module):
    def __init__(self, shape, num_classes: int, hidden: int = 128):
        super().__init__()
        d = 1
        for s in shape:
            d *= s
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(),
                                 nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """Two 3x3 conv layers (16, 32 channels) with ReLU, a 2x2 max-pool, global average pooling to
    4x4 and a linear head."""

    def __init__(self, shape, num_classes: int, width: int = 16):
        super().__init__()
        c = shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Linear(2 * width * 16, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def build_model(name: str, shape, num_classes: int) -> nn.Module:
    if name == "mlp":
        return MLP(shape, num_classes)
    if name == "cnn":
        return CNN(shape, num_classes)
    raise InputError(f"model must be 'mlp' or 'cnn'; got {name!r}")


