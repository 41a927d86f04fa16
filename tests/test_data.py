"""Noisy labels, splits and normalisation are a pure function of the data spec and its seed."""

import numpy as np

from noisylabels.data import DataSpec, prepare


def test_same_seed_same_noisy_labels_and_split_other_seed_differs(small_data, data_dir):
    again = prepare(DataSpec(data_dir=str(data_dir), mnist1d_samples=1000, noise_rate=0.5, seed=0))
    other = prepare(DataSpec(data_dir=str(data_dir), mnist1d_samples=1000, noise_rate=0.5, seed=1))
    for name in ("x_train", "y_train", "y_train_clean", "x_val", "y_val", "x_test", "y_test", "mean", "std"):
        assert np.array_equal(getattr(small_data, name), getattr(again, name)), name
    assert not np.array_equal(small_data.y_train, other.y_train)
    assert not np.array_equal(small_data.x_val, other.x_val)
    assert np.array_equal(small_data.x_test, other.x_test)  # the clean test set never changes


def test_validation_is_held_out_from_the_noisy_training_set(small_data, data_dir):
    info = small_data.info
    assert info["n_val"] == 80 and info["n_train"] == 720
    noisy_val = small_data.y_val
    clean = prepare(DataSpec(data_dir=str(data_dir), mnist1d_samples=1000, noise_rate=0.5, seed=0,
                             val_labels="clean"))
    assert np.array_equal(clean.x_val, small_data.x_val)
    assert np.mean(noisy_val != clean.y_val) > 0.3  # noisy validation labels by default
    assert abs(info["realised_noise_rate"] - 0.5) < 0.08
