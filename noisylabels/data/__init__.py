"""Data registry: MNIST-1D generated locally, image data sets read from ``--data-dir``."""

from noisylabels.data.base import RawDataset
from noisylabels.data.prepare import DATASETS, DataSpec, PreparedData, default_data_dir, load_raw, prepare, prepare_data

__all__ = [
    "DATASETS",
    "DataSpec",
    "PreparedData",
    "RawDataset",
    "default_data_dir",
    "load_raw",
    "prepare",
    "prepare_data",
]
