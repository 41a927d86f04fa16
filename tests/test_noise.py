import numpy as np
import pytest

from noisylabels.errors import UserError
from noisylabels.noise import corrupt_labels, transition_matrix


@pytest.mark.parametrize("noise,rate", [("sym", 0.2), ("sym", 0.5), ("pair", 0.45), ("sym", 0.0)])
def test_realised_rate_close_to_asked(noise, rate):
    clean = np.random.default_rng(0).integers(0, 10, 50_000)
    out = corrupt_labels(clean, noise, rate, 10, seed=1)
    assert abs(out.realised_rate - rate) < 0.01
    assert out.realised_rate == pytest.approx(np.mean(out.labels != clean))


def test_same_seed_same_labels_other_seed_other_labels():
    clean = np.arange(1000) % 10
    a = corrupt_labels(clean, "sym", 0.5, 10, seed=3).labels
    b = corrupt_labels(clean, "sym", 0.5, 10, seed=3).labels
    c = corrupt_labels(clean, "sym", 0.5, 10, seed=4).labels
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pair_flips_only_to_next_class():
    clean = np.arange(20_000) % 10
    noisy = corrupt_labels(clean, "pair", 0.45, 10, seed=0).labels
    flipped = noisy != clean
    assert np.all(noisy[flipped] == (clean[flipped] + 1) % 10)


def test_sym_flips_uniformly_to_other_classes():
    clean = np.zeros(40_000, dtype=np.int64)
    noisy = corrupt_labels(clean, "sym", 0.9 * 0.9, 10, seed=0).labels
    counts = np.bincount(noisy, minlength=10)[1:] / len(clean)
    assert np.allclose(counts, 0.81 / 9, atol=0.01)


def test_transition_matrices_are_row_stochastic():
    for noise, rate in [("sym", 0.5), ("pair", 0.3)]:
        t = transition_matrix(noise, rate, 5)
        assert np.allclose(t.sum(axis=1), 1.0)
        assert np.allclose(np.diag(t), 1 - rate)


@pytest.mark.parametrize(
    "noise,rate,classes",
    [("pair", 0.5, 10), ("pair", 0.7, 10), ("sym", 0.9, 10), ("sym", 0.5, 2), ("sym", -0.1, 10),
     ("sym", float("nan"), 10), ("flip", 0.2, 10)],
)
def test_impossible_noise_is_rejected_with_one_line(noise, rate, classes):
    with pytest.raises(UserError) as err:
        transition_matrix(noise, rate, classes)
    assert "\n" not in str(err.value)
