from __future__ import annotations

import pytest

from s2e_tune.data import DataSpec, prepare


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def small_data(data_dir):
    """MNIST-1D with 1,000 signals (720 train / 80 val / 200 test), sym-50 % noise."""
    return prepare(DataSpec(data_dir=str(data_dir), mnist1d_samples=1000, noise_rate=0.5, seed=0))


@pytest.fixture(scope="session")
def medium_data(data_dir):
    """MNIST-1D with 3,000 signals, sym-50 % noise: enough to learn in a few epochs."""
    return prepare(DataSpec(data_dir=str(data_dir), mnist1d_samples=3000, noise_rate=0.5, seed=0))
