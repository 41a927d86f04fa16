"""Data registry: MNIST-1D generated locally, image data sets read from ``--data-dir``."""

from s2e_tune.data.base import RawDataset
from s2e_tune.data.prepare import DATASETS, DataSpec, PreparedData, default_data_dir, load_raw, prepare

__all__ = ["DATASETS", "DataSpec", "PreparedData", "RawDataset", "default_data_dir", "load_raw", "prepare"]
