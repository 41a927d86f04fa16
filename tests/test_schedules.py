import numpy as np
import pytest

from noisylabels.schedules import R_MIN, authors_forget_rate, coteaching_rate, keep_ratio, keep_ratio_curve, s2e_basis
from noisylabels.spaces import SPACES, coteaching_default, get_space


def random_config(space_name, rng):
    space = SPACES[space_name]
    cfg = dict(space.fixed)
    for p in space.params:
        u = rng.random()
        if p.log:
            cfg[p.name] = float(np.exp(np.log(p.low) + u * np.log(p.high / p.low)))
        else:
            cfg[p.name] = p.low + u * (p.high - p.low)
    return cfg


def test_coteaching_form_starts_at_one_and_reaches_one_minus_tau():
    cfg = coteaching_default(0.5)
    curve = keep_ratio_curve(cfg, 200)
    assert curve[0] == 1.0
    assert curve[10] == pytest.approx(0.5)  # T_k = 10 of 200 epochs
    assert curve[5] == pytest.approx(0.75)  # linear for c = 1
    assert np.all(curve[10:] == pytest.approx(0.5))


def test_coteaching_rate_matches_formula():
    t = np.array([0.0, 2.5, 5.0, 20.0])
    assert np.allclose(coteaching_rate(t, 0.4, 2.0, 5.0), 1 - 0.4 * np.minimum((t / 5) ** 2, 1))


@pytest.mark.parametrize("space", ["s2e", "s2e-authors", "coteaching"])
def test_every_sampled_schedule_is_within_bounds_and_starts_at_one(space):
    rng = np.random.default_rng(0)
    for _ in range(200):
        cfg = random_config(space, rng)
        curve = keep_ratio_curve(cfg, 50)
        assert np.all((curve >= R_MIN) & (curve <= 1.0))
        assert curve[0] == pytest.approx(1.0)


def test_shape_is_invariant_in_the_epoch_budget():
    rng = np.random.default_rng(1)
    for space in ("s2e", "s2e-authors", "coteaching"):
        cfg = random_config(space, rng)
        long, short = keep_ratio_curve(cfg, 200), keep_ratio_curve(cfg, 20)
        # epoch e of a 20-epoch run is at the same schedule time as epoch 10(e-1)+1 of 200
        assert np.allclose(short, long[::10])


def test_s2e_bases_start_at_one():
    for i in range(1, 5):
        assert s2e_basis(i, np.array([0.0]), 0.5, 0.1, 0.3, 1.0)[0] == pytest.approx(1.0)


def test_s2e_weights_are_projected_onto_the_simplex():
    cfg = random_config("s2e", np.random.default_rng(2))
    scaled = {**cfg, **{f"w{i}": 3 * cfg[f"w{i}"] for i in range(1, 5)}}
    assert np.allclose(keep_ratio_curve(cfg, 40), keep_ratio_curve(scaled, 40))
    only_f3 = {**cfg, "w1": 0.0, "w2": 0.0, "w3": 0.7, "w4": 0.0}
    t = (np.arange(40)) * 200 / 40
    expect = np.clip(s2e_basis(3, t, *[cfg[f"f3_a{j}"] for j in range(1, 5)]), R_MIN, 1)
    assert np.allclose(keep_ratio_curve(only_f3, 40), expect)


def test_r_min_clips_and_bad_forms_fail():
    cfg = {"schedule": "coteaching", "tau": 0.99, "c": 1.0, "t_k": 1.0}
    assert keep_ratio(cfg, 50, 50) == R_MIN
    assert keep_ratio(cfg, 50, 50, r_min=0.2) == 0.2
    with pytest.raises(ValueError):
        keep_ratio_curve({"schedule": "nope"}, 10)


def test_the_authors_space_is_their_formula_term_by_term():
    """Each term of the authors' forget rate, switched on alone, has the shape of that term."""
    zero = {"schedule": "s2e-authors", **{k: 0.0 for k in get_space("s2e-authors").names()}}
    t = np.arange(200.0)
    F = lambda **kw: authors_forget_rate(t, {**zero, **kw})  # noqa: E731
    assert np.allclose(F(w1=1.0, b1=0.3, a1=0.5), 1 - np.exp(-0.3 * t**0.5))
    assert np.allclose(F(w1=0.0, w2=1.0, b2=0.2, a2=0.7), 1 - (0.2 * t + 1) ** -0.7)
    assert np.allclose(F(w1=0.0, w2=0.0, a5=0.4, b5=0.3), 1 - np.log(1.4) / np.log(1.4 + 0.3 * t))
    mix = F(w1=0.5, w2=0.5, b1=0.3, a1=0.5, b2=0.2, a2=0.7, a5=0.4, b5=0.3)
    parts = (0.5 * F(w1=1.0, b1=0.3, a1=0.5) + 0.25 * F(w2=1.0, b2=0.2, a2=0.7) + 0.25 * F(a5=0.4, b5=0.3))
    assert np.allclose(mix, parts)  # stick-breaking weights w1, (1-w1) w2, (1-w1)(1-w2)
    assert np.allclose(F(b3=0.4, a3=1.5), -0.4 * (t / 200) ** 1.5)
    assert np.allclose(F(b4=0.4, a4=1.2), -0.4 * np.log(1 + t**1.2) / np.log(1 + 200**1.2))
    assert F(w1=1.0, b1=0.5, a1=1.0).max() == 0.99  # clipped from above only ...
    assert F(b3=0.5, a3=1.0).min() < 0  # ... not from below (R = 1 - F > 1 is cut by the R clip)
    r = keep_ratio_curve({**zero, "w1": 1.0, "b1": 0.5, "a1": 1.0}, 200)
    assert r[0] == 1.0 and r[-1] == pytest.approx(0.05)  # R = 1 - 0.99 = 0.01, then r_min


def test_the_authors_space_can_rise_again_late_in_training():
    cfg = {"schedule": "s2e-authors", "w1": 1.0, "w2": 0.0, "a1": 1.0, "b1": 0.05, "a2": 0.0, "b2": 0.0,
           "a5": 0.0, "b5": 0.0, "b3": 0.5, "a3": 2.0, "b4": 0.0, "a4": 1.0}
    curve = keep_ratio_curve(cfg, 200)
    dip = int(np.argmin(curve))
    assert curve[0] == 1.0 and 0 < dip < 199
    assert curve[-1] > curve[dip] + 0.1
