"""Tests of the S2E core: searchers.beta, searchers.s2e_maths, searchers.s2e_settings,
searchers.s2e_core (the bounded-float parameter type is tested in tests/test_spaces.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import searchers.s2e_core as s2e_core
from searchers import S2E, FloatParam, S2ESettings
from searchers.beta import ProductBeta
from searchers.s2e_maths import (
    damped_newton_step,
    estimate_gradient,
    estimate_hessian,
    fisher_inv_sqrt,
    newton_direction,
    param_moments,
    trust_region_update,
    utility_transform,
)

THETA = np.array([2.0, 3.0, 1.5, 4.0, 5.0, 1.2])  # (a1, b1, a2, b2, a3, b3)


def _log_density_at(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return ProductBeta.from_theta(theta).log_density(x)


def test_s2e_rejects_non_float_params() -> None:
    with pytest.raises(ValueError, match="FloatParam"):
        S2E([("x", 0, 1)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one"):
        S2E([])
    with pytest.raises(ValueError, match="duplicate"):
        S2E([FloatParam("x", 0, 1), FloatParam("x", 0, 2)])
    with pytest.raises(ValueError, match="samples_per_round"):
        S2E([FloatParam("x", 0, 1)], samples_per_round=1)


# -------------------------------------------------------------- product Beta
def test_score_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    dist = ProductBeta.from_theta(THETA)
    x = dist.sample(rng, 5)
    score = dist.score(x)
    h = 1e-6
    for j in range(THETA.size):
        e = np.zeros_like(THETA)
        e[j] = h
        fd = (_log_density_at(THETA + e, x) - _log_density_at(THETA - e, x)) / (2 * h)
        np.testing.assert_allclose(score[:, j], fd, rtol=1e-6, atol=1e-6)


def test_log_density_hessian_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x = ProductBeta.from_theta(THETA).sample(rng, 3)
    hess = ProductBeta.from_theta(THETA).hessian_log_density()
    h = 1e-5
    for j in range(THETA.size):
        e = np.zeros_like(THETA)
        e[j] = h
        fd = (ProductBeta.from_theta(THETA + e).score(x) - ProductBeta.from_theta(THETA - e).score(x)) / (2 * h)
        for row in fd:  # independent of x
            np.testing.assert_allclose(row, hess[:, j], rtol=1e-5, atol=1e-6)
    # block diagonal, negative definite; Fisher is its negative
    assert np.allclose(hess[0, 2:], 0.0)
    assert np.all(np.linalg.eigvalsh(hess) < 0)
    np.testing.assert_allclose(ProductBeta.from_theta(THETA).fisher(), -hess)


def test_sampling_moments_and_clipping() -> None:
    rng = np.random.default_rng(2)
    dist = ProductBeta.from_theta(THETA)
    x = dist.sample(rng, 200_000)
    np.testing.assert_allclose(x.mean(axis=0), dist.mean(), atol=3e-3)
    np.testing.assert_allclose(x.var(axis=0), dist.var(), rtol=2e-2)
    eps = 1e-3
    u = ProductBeta.uniform(4).sample(rng, 10_000, eps=eps)
    assert u.min() >= eps and u.max() <= 1 - eps
    assert np.all(np.isfinite(ProductBeta.uniform(4).score(u)))


def test_param_moments_in_own_units() -> None:
    rng = np.random.default_rng(3)
    params = [FloatParam("lin", -2.0, 6.0), FloatParam("lr", 1e-5, 1.0, log=True), FloatParam("c", 0.25, 4.0, log=True)]
    dist = ProductBeta.from_theta(THETA)
    mean, var = param_moments(dist, params)
    x = dist.sample(rng, 400_000, eps=1e-12)
    vals = np.array([[p.from_unit(u) for p, u in zip(params, row, strict=True)] for row in x[:40_000]])
    # closed forms vs Monte Carlo
    for k in range(3):
        se = vals[:, k].std() / math.sqrt(len(vals))
        assert abs(vals[:, k].mean() - mean[k]) < 5 * se
        assert vals[:, k].var() == pytest.approx(var[k], rel=0.1)
    assert mean[0] == pytest.approx(-2.0 + 8.0 * 2.0 / 5.0)


def test_kl_is_zero_at_self_and_quadratic_locally() -> None:
    dist = ProductBeta.from_theta(THETA)
    assert dist.kl(dist) == pytest.approx(0.0, abs=1e-12)
    delta = 1e-3 * np.array([1.0, -2.0, 0.5, 1.0, -1.0, 3.0])
    other = ProductBeta.from_theta(THETA + delta)
    quad = 0.5 * delta @ dist.fisher() @ delta
    assert dist.kl(other) == pytest.approx(quad, rel=1e-2)


# ---------------------------------------------------------------- estimators
def _j_closed(theta: np.ndarray) -> float:
    """J(theta) = E[x1 x2 + x2^2] under Beta(a1,b1) x Beta(a2,b2)."""
    a1, b1, a2, b2 = theta
    m1 = a1 / (a1 + b1)
    m2 = a2 / (a2 + b2)
    s2 = a2 * (a2 + 1) / ((a2 + b2) * (a2 + b2 + 1))
    return m1 * m2 + s2


def _fd_grad_hess(fn, theta: np.ndarray, h: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    n = theta.size
    g = np.zeros(n)
    hess = np.zeros((n, n))
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = h
        g[i] = (fn(theta + ei) - fn(theta - ei)) / (2 * h)
        for j in range(n):
            ej = np.zeros(n)
            ej[j] = h
            hess[i, j] = (fn(theta + ei + ej) - fn(theta + ei - ej) - fn(theta - ei + ej) + fn(theta - ei - ej)) / (
                4 * h * h
            )
    return g, hess


def test_gradient_and_hessian_estimators_match_closed_form() -> None:
    """Proposition 1 with the raw (untransformed) f, many samples."""
    theta = np.array([2.0, 3.0, 1.5, 2.5])
    dist = ProductBeta.from_theta(theta)
    rng = np.random.default_rng(4)
    n = 400_000
    x = dist.sample(rng, n, eps=1e-12)
    f = x[:, 0] * x[:, 1] + x[:, 1] ** 2
    scores = dist.score(x)
    hlp = dist.hessian_log_density()
    g_est = estimate_gradient(scores, utility_transform(f, "raw"))
    h_est = estimate_hessian(scores, hlp, utility_transform(f, "raw"), "full")
    g_true, h_true = _fd_grad_hess(_j_closed, theta)
    # tolerance from the Monte-Carlo standard error of each entry
    g_se = (f[:, None] * scores).std(axis=0) / math.sqrt(n)
    terms = f[:, None, None] * (hlp[None] + scores[:, :, None] * scores[:, None, :])
    h_se = terms.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(g_est - g_true) < 5 * g_se + 1e-4)
    assert np.all(np.abs(h_est - h_true) < 5 * h_se + 1e-4)
    assert abs(h_true[0, 2]) > 1e-3  # the cross-parameter coupling is really tested
    # the block structure drops exactly the cross-parameter entries
    h_block = estimate_hessian(scores, hlp, f, "block")
    np.testing.assert_allclose(h_block[:2, :2], h_est[:2, :2])
    assert np.all(h_block[:2, 2:] == 0)


def test_gradient_estimator_single_param_closed_form() -> None:
    # f(x) = x under Beta(a, b): dJ/da = b/(a+b)^2, dJ/db = -a/(a+b)^2
    a, b = 2.5, 1.5
    dist = ProductBeta(np.array([a]), np.array([b]))
    x = dist.sample(np.random.default_rng(5), 300_000, eps=1e-12)
    g = estimate_gradient(dist.score(x), x[:, 0])
    np.testing.assert_allclose(g, [b / (a + b) ** 2, -a / (a + b) ** 2], atol=4e-3)


def test_utility_transforms() -> None:
    v = np.array([3.0, 1.0, 2.0, np.nan, 1.0, np.inf])
    r = utility_transform(v, "rank")
    assert r.mean() == pytest.approx(0.0)
    assert r[1] == r[4] < r[2] < r[0]  # lower f -> lower cost, ties equal
    assert r[3] == r[5] == r.max()  # failures count as the worst value
    w = utility_transform(v, "weighted")
    assert w.mean() == pytest.approx(0.0)
    assert w[1] == w[4] < w[2] <= w[0]
    s = utility_transform(v, "standardize")
    assert s.mean() == pytest.approx(0.0) and s.std() == pytest.approx(1.0)
    np.testing.assert_allclose(utility_transform([1.0, 2.0], "raw"), [1.0, 2.0])
    assert np.all(utility_transform([np.nan, np.nan, -np.inf], "rank") == 0.0)
    assert np.all(utility_transform([5.0, 5.0, 5.0], "standardize") == 0.0)
    with pytest.raises(ValueError, match="unknown utility"):
        utility_transform([1.0, 2.0], "bogus")


def test_newton_direction_is_always_improving() -> None:
    rng = np.random.default_rng(6)
    fisher = ProductBeta.from_theta(THETA).fisher()
    for _ in range(50):
        a = rng.normal(size=(6, 6))
        hess = a + a.T  # indefinite
        g = rng.normal(size=6)
        for floor in (1e-3, 0.1, 1.0):
            d = newton_direction(g, hess, fisher, eig_floor=floor)
            assert g @ d < 0
    # positive-definite H and a tiny floor: the exact Newton step
    a = rng.normal(size=(6, 6))
    hess = a @ a.T + 6 * np.eye(6)
    g = rng.normal(size=6)
    np.testing.assert_allclose(newton_direction(g, hess, fisher, eig_floor=1e-9), -np.linalg.solve(hess, g), rtol=1e-6)
    np.testing.assert_allclose(newton_direction(g, None, fisher, step="natural"), -np.linalg.solve(fisher, g))
    # eig_floor=1 is the natural-gradient direction (up to length)
    d1 = newton_direction(g, hess, fisher, eig_floor=1.0)
    nat = -np.linalg.solve(fisher, g)
    assert d1 @ nat / (np.linalg.norm(d1) * np.linalg.norm(nat)) == pytest.approx(1.0)


def test_damped_newton_step_with_the_default_settings_is_always_improving() -> None:
    """The Newton path S2E's update runs: whitened, pooled over rounds with the
    default ``hessian_memory`` and damped with the default ``eig_floor``."""
    d = S2ESettings()
    rng = np.random.default_rng(8)
    fisher = ProductBeta.from_theta(THETA).fisher()
    w = fisher_inv_sqrt(fisher)
    past = None
    for _ in range(30):
        a = rng.normal(size=(6, 6))
        hess = a + a.T  # indefinite, like a noisy K-sample estimate
        g = rng.normal(size=6)
        step, hess_w = damped_newton_step(
            g, hess, fisher, eig_floor=d.eig_floor, past_hess_w=past, hessian_memory=d.hessian_memory
        )
        assert g @ step < 0
        expected = w @ hess @ w if past is None else d.hessian_memory * past + (1 - d.hessian_memory) * (w @ hess @ w)
        np.testing.assert_array_equal(hess_w, expected)
        past = hess_w
    # no memory, or no past: exactly the one-round newton_direction
    a = rng.normal(size=(6, 6))
    hess, g = a + a.T, rng.normal(size=6)
    one = newton_direction(g, hess, fisher, eig_floor=d.eig_floor)
    np.testing.assert_array_equal(damped_newton_step(g, hess, fisher, eig_floor=d.eig_floor)[0], one)
    np.testing.assert_array_equal(
        damped_newton_step(g, hess, fisher, eig_floor=d.eig_floor, past_hess_w=past, hessian_memory=0.0)[0], one
    )


def test_default_s2e_update_takes_the_damped_newton_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """S2E with default settings steps through :func:`damped_newton_step`,
    pooling the previous round's whitened Hessian, and its step descends."""
    calls = []

    def spy(grad, hess, fisher, **kw):
        out = damped_newton_step(grad, hess, fisher, **kw)
        calls.append((grad, kw, out))
        return out

    monkeypatch.setattr(s2e_core, "damped_newton_step", spy)
    params = [FloatParam(f"x{k}", 0.0, 1.0) for k in range(3)]
    opt = S2E(params, seed=4)
    for _ in range(3 * opt.samples_per_round):
        cfg = opt.ask()
        opt.tell(opt.last_token, _quadratic(cfg, np.array([0.2, 0.5, 0.8])))
    assert len(calls) == 3
    d = S2ESettings()
    for i, (grad, kw, (step, _)) in enumerate(calls):
        assert kw["eig_floor"] == d.eig_floor and kw["hessian_memory"] == d.hessian_memory
        assert (kw["past_hess_w"] is None) == (i == 0)
        if i:
            np.testing.assert_array_equal(kw["past_hess_w"], calls[i - 1][2][1])
        assert grad @ step < 0
    np.testing.assert_array_equal(opt.get_state()["hess_w"], calls[-1][2][1])


def test_trust_region_update_respects_kl_and_bounds() -> None:
    dist = ProductBeta.from_theta(THETA)
    rng = np.random.default_rng(7)
    for _ in range(30):
        d = rng.normal(scale=50.0, size=6)
        new, kl = trust_region_update(dist, d, max_kl=0.05, theta_max=20.0)
        assert kl <= 0.05 * 1.001
        assert kl == pytest.approx(dist.kl(new))
        assert np.all(new.theta >= 1.0) and np.all(new.theta <= 20.0)
    # fill=True scales a small step up to the boundary
    small = 1e-4 * np.ones(6)
    new, kl = trust_region_update(dist, small, max_kl=0.01, fill=True)
    assert kl == pytest.approx(0.01, rel=0.15)
    new, kl = trust_region_update(dist, small, max_kl=0.01, fill=False)
    assert kl < 1e-6


# -------------------------------------------------------------- ask / tell
def _quadratic(cfg: dict[str, float], c: np.ndarray) -> float:
    return float(sum((cfg[f"x{k}"] - c[k]) ** 2 for k in range(len(c))))


def test_ask_tell_rounds_history_and_done() -> None:
    params = [FloatParam(f"x{k}", 0.0, 1.0) for k in range(3)]
    opt = S2E(params, samples_per_round=4, seed=0, rounds=3)
    c = np.array([0.2, 0.5, 0.8])
    for r in range(3):
        asked = []
        for _ in range(4):
            cfg = opt.ask()
            assert cfg is not None and set(cfg) == {"x0", "x1", "x2"}
            assert all(0.0 <= v <= 1.0 for v in cfg.values())
            asked.append((opt.last_token, cfg))
        assert opt.ask() is None  # round full, values outstanding
        assert len(opt.pending) == 4
        for tok, cfg in asked:
            opt.tell(tok, _quadratic(cfg, c))
        assert opt.round == r + 1
    assert opt.done and opt.ask() is None
    hist = opt.history
    assert [h["round"] for h in hist] == [0, 1, 2]
    assert hist[0]["a"] == [1.0, 1.0, 1.0] and hist[0]["b"] == [1.0, 1.0, 1.0]
    assert hist[0]["mean"]["x0"] == pytest.approx(0.5)
    assert hist[0]["var"]["x0"] == pytest.approx(1 / 12)
    assert len(hist[1]["values"]) == 4 and len(hist[1]["configs"]) == 4
    best_value, best_config = opt.best
    assert best_value == min(v for h in hist for v in h["values"])
    assert _quadratic(best_config, c) == pytest.approx(best_value)
    json.dumps(hist, allow_nan=False)


def test_tokens_and_errors() -> None:
    opt = S2E([FloatParam("x", 0.0, 1.0)], samples_per_round=3, seed=1)
    opt.ask("t1")
    with pytest.raises(ValueError, match="already in use"):
        opt.ask("t1")
    with pytest.raises(KeyError, match="unknown token"):
        opt.tell("nope", 1.0)
    opt.tell("t1", 1.0)
    with pytest.raises(ValueError, match="already told"):
        opt.tell("t1", 2.0)
    with pytest.raises(ValueError, match="token"):
        opt.ask(1.5)  # type: ignore[arg-type]


def test_non_finite_values_never_crash_and_round_completes() -> None:
    params = [FloatParam("x", 0.0, 1.0), FloatParam("lr", 1e-4, 1.0, log=True)]
    for maximize in (False, True):
        opt = S2E(params, samples_per_round=5, seed=2, maximize=maximize)
        for bad in ([math.nan, math.inf, -math.inf, None, "oops"], [1.0, math.nan, 2.0, math.inf, 0.5]):
            toks = []
            for _ in range(5):
                opt.ask()
                toks.append(opt.last_token)
            for t, v in zip(toks, bad, strict=True):
                opt.tell(t, v)  # type: ignore[arg-type]
            assert not opt.pending
        assert opt.round == 2
        assert np.all(np.isfinite(opt.theta)) and np.all(opt.theta >= 1.0)
        assert opt.best[0] == (2.0 if maximize else 0.5)
        json.dumps(opt.get_state(), allow_nan=False)


def test_maximize_moves_towards_the_maximum() -> None:
    params = [FloatParam(f"x{k}", 0.0, 1.0) for k in range(2)]
    c = np.array([0.15, 0.85])
    opt = S2E(params, samples_per_round=8, seed=3, maximize=True)
    for _ in range(25 * 8):
        cfg = opt.ask()
        opt.tell(opt.last_token, -_quadratic(cfg, c))
    mean = opt.moments()["mean"]
    assert abs(mean["x0"] - 0.15) < 0.1 and abs(mean["x1"] - 0.85) < 0.1
    assert opt.moments()["var"]["x0"] < 1 / 12 / 4


@pytest.mark.parametrize(
    "options", [{}, {"surrogate": "quadratic", "reuse_weights": "mixture"}], ids=["default", "surrogate"]
)
def test_state_round_trip_mid_round_gives_identical_asks(options: dict) -> None:
    params = [FloatParam("x", 0.0, 1.0), FloatParam("lr", 1e-4, 1.0, log=True), FloatParam("z", -3.0, 3.0)]
    c = {"x": 0.3, "lr": 1e-2, "z": 1.0}

    def f(cfg: dict[str, float]) -> float:
        return (cfg["x"] - c["x"]) ** 2 + (math.log10(cfg["lr"]) + 2) ** 2 + (cfg["z"] - c["z"]) ** 2

    ref = S2E(params, samples_per_round=4, seed=11, **options)
    # two full rounds, then half a round with one value outstanding and a NaN
    for _ in range(8):
        cfg = ref.ask()
        ref.tell(ref.last_token, f(cfg))
    ref.ask("a")
    cfg_b = ref.ask("b")
    ref.ask("c")
    ref.tell("b", math.nan)
    state = json.loads(json.dumps(ref.get_state(), allow_nan=False))
    restored = S2E.from_state(state)
    other = S2E(params, samples_per_round=4, seed=999)
    other.set_state(state)
    assert other.settings == ref.settings
    assert restored.pending == ref.pending == ["a", "c"]
    for obj in (ref, restored, other):
        obj.tell("a", 1.0)
        obj.tell("c", 2.0)
    seqs = []
    for obj in (ref, restored, other):
        seq = []
        for _ in range(9):
            cfg = obj.ask()
            seq.append(cfg)
            obj.tell(obj.last_token, f(cfg))
        seqs.append((seq, obj.theta.tolist(), obj.history))
    assert seqs[0][0] == seqs[1][0] == seqs[2][0]
    assert seqs[0][1] == seqs[1][1] == seqs[2][1]
    assert json.dumps(seqs[0][2]) == json.dumps(seqs[1][2])
    assert cfg_b == ref.history[2]["configs"][1]
    with pytest.raises(ValueError, match="different parameters"):
        S2E([FloatParam("y", 0, 1)]).set_state(state)


# ------------------------------------------------------------------ settings
def test_settings_validate_with_one_clear_line() -> None:
    for kw, match in [
        ({"samples_per_round": 1}, "samples_per_round must be an int >= 2"),
        ({"samples_per_round": 2.0}, "samples_per_round"),
        ({"seed": -1}, "seed"),
        ({"rounds": 0}, "rounds"),
        ({"maximize": "yes"}, "maximize must be a bool"),
        ({"utility": "nope"}, "unknown utility"),
        ({"step": "nope"}, "unknown step"),
        ({"hessian": "nope"}, "unknown hessian"),
        ({"eig_floor": 0.0}, "eig_floor"),
        ({"eig_floor": "0.5"}, "eig_floor"),
        ({"hessian_memory": 1.0}, "hessian_memory"),
        ({"kl_per_param": 0.0}, "kl_per_param"),
        ({"reuse_rounds": -1}, "reuse_rounds"),
        ({"max_kl": math.nan}, "max_kl"),
        ({"theta_max": 1.0}, "theta_max"),
        ({"eps": 0.5}, "eps"),
    ]:
        with pytest.raises(ValueError, match=match) as exc:
            S2ESettings(**kw)
        assert "\n" not in str(exc.value)
        with pytest.raises(ValueError, match=match):
            S2E([FloatParam("x", 0, 1)], **kw)


def test_settings_build_s2e_and_round_trip() -> None:
    params = [FloatParam("x", 0, 1), FloatParam("y", 1e-3, 1.0, log=True)]
    s = S2ESettings(4, 7, True, 5, utility="weighted", reuse_rounds=0)
    assert (s.samples_per_round, s.seed, s.maximize, s.rounds) == (4, 7, True, 5)
    assert S2ESettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    with pytest.raises(ValueError, match="unknown S2E settings"):
        S2ESettings.from_dict({**s.to_dict(), "bogus": 1})
    with pytest.raises(TypeError):
        S2ESettings(4, 7, True, 5, "weighted")  # the rest is keyword-only
    a = S2E(params, 4, 7, True, 5, utility="weighted", reuse_rounds=0)
    b = S2E(params, settings=s)
    assert a.settings == b.settings == s.resolved(2)
    assert a.settings.max_kl == 0.1 * 2 and S2ESettings(max_kl=0.3).resolved(2).max_kl == 0.3
    assert (a.samples_per_round, a.seed, a.maximize, a.rounds) == (4, 7, True, 5)
    with pytest.raises(TypeError, match="not both"):
        S2E(params, 4, settings=s)
    with pytest.raises(TypeError):
        S2E(params, bogus=1)
    assert a.get_state()["settings"] == a.settings.to_dict()


def test_version_1_state_restores_and_continues_identically() -> None:
    """A state as written before the settings dataclass (version 1: no
    ``kl_per_param``, ``max_kl`` resolved) still restores."""
    params = [FloatParam("x", 0.0, 1.0), FloatParam("lr", 1e-4, 1.0, log=True)]
    ref = S2E(params, samples_per_round=4, seed=5, kl_per_param=0.2)
    for _ in range(10):
        cfg = ref.ask()
        ref.tell(ref.last_token, cfg["x"] ** 2 + math.log10(cfg["lr"]) ** 2)
    v1 = json.loads(json.dumps(ref.get_state()))
    v1["version"] = 1
    del v1["settings"]["kl_per_param"]
    old = S2E.from_state(v1)
    assert old.settings.max_kl == ref.settings.max_kl
    for obj in (ref, old):
        for _ in range(9):
            cfg = obj.ask()
            obj.tell(obj.last_token, cfg["x"] ** 2 + math.log10(cfg["lr"]) ** 2)
    assert old.theta.tolist() == ref.theta.tolist()
    assert json.dumps(old.history) == json.dumps(ref.history)
    with pytest.raises(ValueError, match="version"):
        S2E.from_state({**v1, "version": 99})


# ------------------------------------------------------- synthetic benchmark
BENCH_SEEDS = list(range(10))


@pytest.mark.parametrize(
    ("name", "budget", "ratio"),
    [("quadratic", 160, 0.5), ("rastrigin", 320, 0.8)],
)
def test_s2e_beats_random_search_on_synthetic(name: str, budget: int, ratio: float) -> None:
    """Mean true value of the incumbent over 10 seeds: S2E (defaults, K = 8)
    must beat random search at the same number of evaluations by a margin.

    (The ratios leave room for seed-to-seed spread, checked on disjoint seed
    sets; the defaults were tuned on seeds >= 1000.)
    """
    from s2e_tune.bench.synthetic import OBJECTIVES, run_benchmark

    curves = run_benchmark(OBJECTIVES[name], ["random", "s2e"], BENCH_SEEDS, budget, 0.1, 8)
    rand = curves["random"][:, -1].mean()
    s2e = curves["s2e"][:, -1].mean()
    assert s2e < ratio * rand, (name, s2e, rand)


def test_bench_main_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    from s2e_tune.bench.synthetic import main

    assert main(["--seeds", "2", "--budget", "24", "--samples-per-round", "4"]) == 0
    out = capsys.readouterr().out
    assert "quadratic" in out and "rastrigin" in out and "random" in out and "s2e" in out
    assert main(["--seeds", "0"]) == 2
