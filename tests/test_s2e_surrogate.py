"""The surrogate control variate and the mixture weights of S2E (searchers.s2e_surrogate,
searchers.s2e_maths.mixture_weights), and S2E's options from the run command's config."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noisylabels.errors import UserError
from searchers import FloatParam
from searchers.beta import ProductBeta
from searchers.s2e_core import S2E
from searchers.s2e_maths import importance_weights, mixture_weights
from searchers.s2e_surrogate import fit_surrogate


def _dist() -> ProductBeta:
    return ProductBeta(np.array([2.0, 3.0, 1.0, 1.5]), np.array([1.0, 4.0, 2.0, 6.0]))


def test_surrogate_recovers_a_separable_quadratic_and_its_beta_expectation() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((40, 4))
    f = 1.5 + 2 * x[:, 0] - 3 * (x[:, 1] - 0.3) ** 2 + 0.5 * x[:, 3] ** 2
    g = fit_surrogate(x, f, "quadratic", ridge=1e-9)
    assert np.abs(g.predict(x) - f).max() < 1e-6
    dist = _dist()
    mc = g.predict(dist.sample(rng, 400_000)).mean()
    assert g.expectation(dist) == pytest.approx(mc, abs=3e-3)
    lin = fit_surrogate(x, f, "linear", ridge=1e-9)
    assert not np.any(lin.quad) and np.abs(lin.predict(x) - f).max() > 1e-3  # a line cannot fit it


def test_surrogate_ridge_shrinks_towards_the_mean() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((10, 3))
    f = x[:, 0] + rng.normal(0, 0.1, 10)
    loose, tight = fit_surrogate(x, f, "linear", 1e-6), fit_surrogate(x, f, "linear", 1e6)
    assert np.linalg.norm(tight.lin) < 1e-3 * np.linalg.norm(loose.lin)
    assert tight.predict(x) == pytest.approx(np.full(10, f.mean()), abs=1e-3)


def test_surrogate_expectation_derivatives_match_finite_differences() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((30, 4))
    g = fit_surrogate(x, np.sin(3 * x[:, 0]) + x[:, 2] * x[:, 3], "quadratic", ridge=0.5)
    dist = _dist()
    grad, hess = g.expectation_derivatives(dist)
    theta, h = dist.theta, 1e-4

    def e(t: np.ndarray) -> float:
        return g.expectation(ProductBeta.from_theta(t))

    def grad_at(t: np.ndarray) -> np.ndarray:
        return g.expectation_derivatives(ProductBeta.from_theta(t))[0]

    eye = np.eye(theta.size)
    num_grad = np.array([(e(theta + h * u) - e(theta - h * u)) / (2 * h) for u in eye])
    num_hess = np.array([(grad_at(theta + h * u) - grad_at(theta - h * u)) / (2 * h) for u in eye])
    assert grad == pytest.approx(num_grad, rel=1e-5, abs=1e-8)
    assert hess == pytest.approx(num_hess, rel=1e-4, abs=1e-6)
    assert np.count_nonzero(hess[0, 2:]) == 0  # block diagonal: separable surrogate


def test_mixture_weights_bounded_and_equal_to_ratios_for_one_round() -> None:
    rng = np.random.default_rng(6)
    dist = _dist()
    x = dist.sample(rng, 5)
    # one earlier distribution: the mixture is that distribution, so both rules agree
    q = ProductBeta(np.ones(4), np.ones(4))
    assert mixture_weights(dist, [(q, x)]) == pytest.approx(importance_weights(dist, [(q, x)]))
    # a far earlier round and the current one: the mixture weight of a current sample is at most
    # n / n_current times its ratio weight (it never exceeds the share its own round could give)
    far = ProductBeta(np.full(4, 50.0), np.full(4, 1.0))
    rounds = [(far, far.sample(rng, 4)), (dist, dist.sample(rng, 4))]
    w = mixture_weights(dist, rounds)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w >= 0) and np.all(np.isfinite(w))
    # the far round's samples are nearly impossible under dist: their weight is tiny, and the
    # current round's samples share the rest about evenly (each ~ p / (p/2) up to the far part)
    assert w[:4].sum() < 1e-6 and w[4:] == pytest.approx(np.full(4, 0.25), rel=1e-3)


def test_surrogate_s2e_moves_towards_the_optimum_with_k2() -> None:
    """With K = 2 the plain estimator has almost no direction; the surrogate fitted on every
    evaluated point gives one: on a noiseless linear cost in 10 dimensions, after 10 rounds the
    surrogate variant's mean is closer to the optimum corner than the plain one's, on every seed."""
    params = [FloatParam(f"x{i}", 0.0, 1.0) for i in range(10)]
    target = np.array([1.0, 0.0] * 5)

    def cost(cfg: dict[str, float]) -> float:
        return float(np.abs(np.array([cfg[f"x{i}"] for i in range(10)]) - target).sum())

    for seed in range(5):
        dists = []
        for options in ({}, {"surrogate": "linear"}):
            s = S2E(params, samples_per_round=2, seed=seed, **options)
            for _ in range(20):
                cfg = s.ask()
                s.tell(s.last_token, cost(cfg))
            dists.append(float(np.abs(s.distribution.mean() - target).sum()))
        assert dists[1] < dists[0] - 0.5, (seed, dists)


def test_surrogate_survives_failed_evaluations() -> None:
    s = S2E([FloatParam("a", 0, 1), FloatParam("b", 0, 1)], samples_per_round=2, seed=0, surrogate="quadratic")
    for v in (math.nan, math.nan, 1.0, math.inf, 0.5, 0.2):
        s.ask()
        s.tell(s.last_token, v)
    assert s.round == 3 and np.all(np.isfinite(s.theta))


# ------------------------------------------------------------------ from the run command's config
def test_config_extra_s2e_reaches_the_searcher() -> None:
    from s2e_tune.config import ExperimentConfig
    from searchers.registry import get

    cfg = ExperimentConfig(extra={"s2e": {"surrogate": "linear", "surrogate_ridge": 2.0}}, samples_per_round=2)
    cfg.validate()
    alg, _ = get("s2e").build(cfg.search_context(0))
    assert alg.get_state()["options"] == {"surrogate": "linear", "surrogate_ridge": 2.0}


@pytest.mark.parametrize(
    ("s2e", "message"),
    [
        ({"surogate": "linear"}, "unknown S2E option 'surogate'"),
        ({"seed": 3}, "set by the run"),
        ({"surrogate": "cubic"}, "unknown surrogate 'cubic'"),
        ({"surrogate_ridge": -1}, "surrogate_ridge must be > 0"),
        ("linear", "extra.s2e must be a mapping"),
    ],
)
def test_config_extra_s2e_bad_values_get_one_line(s2e: object, message: str) -> None:
    from s2e_tune.config import ExperimentConfig

    with pytest.raises(UserError, match=message) as info:
        ExperimentConfig(extra={"s2e": s2e}).validate()
    assert "\n" not in str(info.value)
