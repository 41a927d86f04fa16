"""MNIST-1D, the embedded default: generated locally, cached on disk, never downloaded.

The ``mnist1d`` package's ``make_dataset`` builds the 1-D signals from its ten
templates with seeded shifts, scaling, correlated noise and shear; generation of
the default 12,500 samples takes a few seconds, after which the arrays are read
from ``<data_dir>/mnist1d/mnist1d-n<N>-seed<S>.npz``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from noisylabels.data.base import RawDataset

DEFAULT_SAMPLES = 12_500  # 10,000 train + 2,500 test with mnist1d's 0.8 train split
DATA_SEED = 42  # the mnist1d default: the clean data set is one fixed draw


def _generate(num_samples: int, seed: int) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    data = make_dataset(args)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}


def load_mnist1d(data_dir: str | os.PathLike, num_samples: int = DEFAULT_SAMPLES, seed: int = DATA_SEED) -> RawDataset:
    """Return MNIST-1D with ``num_samples`` signals (80 % train), generating it once."""
    cache = Path(data_dir) / "mnist1d" / f"mnist1d-n{num_samples}-seed{seed}.npz"
    if cache.exists():
        with np.load(cache) as f:
            arrays = {k: f[k] for k in f.files}
    else:
        arrays = _generate(num_samples, seed)
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, cache)  # atomic: concurrent trials never read half a file
    return RawDataset(
        name="mnist1d",
        x_train=arrays["x"].astype(np.float32),
        y_train=arrays["y"].astype(np.int64),
        x_test=arrays["x_test"].astype(np.float32),
        y_test=arrays["y_test"].astype(np.int64),
        num_classes=10,
    )
