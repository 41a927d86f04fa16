"""Noisy labels, splits and normalisation are a pure function of the data spec and its seed."""

import numpy as np

from noisylabels.data import DataSpec, load_raw, prepare


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
    clean = prepare(DataSpec(data_dir=str(data_dir), mnist1d_samples=1000, noise_rate=0.5, seed=0, val_labels="clean"))
    assert np.array_equal(clean.x_val, small_data.x_val)
    assert np.mean(noisy_val != clean.y_val) > 0.3  # noisy validation labels by default
    assert abs(info["realised_noise_rate"] - 0.5) < 0.08


def test_validation_and_training_samples_are_disjoint_and_together_the_training_set(small_data, data_dir):
    raw = load_raw(DataSpec(data_dir=str(data_dir), mnist1d_samples=1000))
    signals = raw.x_train.reshape(len(raw.x_train), -1)
    assert len(np.unique(signals, axis=0)) == len(signals)  # no duplicate signals: a row names its sample
    row = {x.tobytes(): i for i, x in enumerate(signals)}
    train = [row[x.tobytes()] for x in small_data.x_train.reshape(len(small_data.x_train), -1)]
    val = [row[x.tobytes()] for x in small_data.x_val.reshape(len(small_data.x_val), -1)]
    assert not set(train) & set(val)  # no validation signal is a training signal
    assert sorted(train + val) == list(range(len(signals)))  # each sample is in exactly one of them
    assert np.array_equal(small_data.y_train_clean, raw.y_train[train])  # rows keep their labels
    assert np.array_equal(small_data.x_test, raw.x_test)
