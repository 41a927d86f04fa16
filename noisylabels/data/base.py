"""The in-memory form every dataset loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RawDataset:
    """Clean train/test arrays as read or generated, before any noise or split.

    ``x_*`` are float32 (MNIST-1D, shape ``(n, length)``) or uint8 images in
    NCHW layout (``(n, channels, height, width)``); ``y_*`` are int64 class ids
    in ``[0, num_classes)``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError(f"{self.name}: inputs and labels differ in length")
