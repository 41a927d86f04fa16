"""Tests of the Ray Tune adapter searchers.s2e_search.S2ESearcher."""

from __future__ import annotations

import json
import math
import os
import pickle
import signal

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402
from ray.tune.search import ConcurrencyLimiter, Searcher  # noqa: E402

from searchers.s2e_search import S2ESearcher, convert_search_space  # noqa: E402

SPACE = {
    "x": tune.uniform(-1.0, 2.0),
    "opt": {"lr": tune.loguniform(1e-4, 1e-1), "momentum": 0.9},
    "name": "const",
}


def _objective(cfg: dict) -> float:
    return (cfg["x"] - 0.5) ** 2 + (math.log10(cfg["opt"]["lr"]) + 2.5) ** 2


def _searcher(**kw) -> S2ESearcher:
    kw.setdefault("samples_per_round", 3)
    return S2ESearcher(SPACE, metric="loss", mode="min", **kw)


# ------------------------------------------------------------------ space
def test_convert_search_space_floats_and_constants() -> None:
    params, consts = convert_search_space(SPACE)
    assert [(path, p.name, p.low, p.high, p.log) for path, p in params] == [
        (("x",), "x", -1.0, 2.0, False),
        (("opt", "lr"), "opt/lr", 1e-4, 1e-1, True),
    ]
    assert dict(consts) == {("opt", "momentum"): 0.9, ("name",): "const"}


@pytest.mark.parametrize(
    "domain",
    [
        tune.choice([1, 2]),
        tune.randint(0, 10),
        tune.quniform(0.0, 1.0, 0.1),
        tune.qloguniform(1e-3, 1.0, 1e-3),
        tune.randn(),
        tune.sample_from(lambda spec: 1.0),
        tune.grid_search([0.1, 0.2]),
    ],
)
def test_unsupported_domains_are_a_clear_value_error(domain) -> None:
    with pytest.raises(ValueError, match=r"S2ESearcher.*bad"):
        S2ESearcher({"ok": tune.uniform(0, 1), "bad": domain}, metric="m", mode="min")
    s = S2ESearcher(metric="m", mode="min")
    with pytest.raises(ValueError, match="bad"):
        s.set_search_properties(None, None, {"bad": domain})


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        S2ESearcher(SPACE, metric="m", mode="maximize")
    with pytest.raises(ValueError, match="single metric"):
        S2ESearcher(SPACE, metric=["a", "b"], mode=["min", "max"])
    with pytest.raises(ValueError, match="samples_per_round"):
        S2ESearcher(SPACE, metric="m", mode="min", samples_per_round=1)
    with pytest.raises(ValueError, match="utility"):
        S2ESearcher(SPACE, metric="m", mode="min", utility="nope")


def test_set_search_properties_like_ray_adapters() -> None:
    s = S2ESearcher()
    with pytest.raises(RuntimeError, match="no search space"):
        s.suggest("t0")
    assert s.set_search_properties("loss", "min", SPACE) is True
    assert s.set_search_properties("other", "max", SPACE) is False  # already set
    assert (s.metric, s.mode) == ("loss", "min")
    cfg = s.suggest("t0")
    assert cfg["opt"]["momentum"] == 0.9 and cfg["name"] == "const"
    assert -1.0 <= cfg["x"] <= 2.0 and 1e-4 <= cfg["opt"]["lr"] <= 1e-1
    # a constructor space plus a metric/mode from TuneConfig
    s2 = S2ESearcher(SPACE)
    with pytest.raises(RuntimeError, match="metric"):
        s2.suggest("t0")
    assert s2.set_search_properties("loss", "max", {}) is False
    assert s2.suggest("t0") is not None and s2.s2e.maximize


# ------------------------------------------------------------- round protocol
def test_round_protocol_waits_and_finishes() -> None:
    s = _searcher(rounds=2)
    ids = [f"t{i}" for i in range(3)]
    cfgs = [s.suggest(i) for i in ids]
    assert all(isinstance(c, dict) for c in cfgs)
    assert s.suggest("extra") is None  # round full, results outstanding
    for i, c in zip(ids, cfgs, strict=True):
        s.on_trial_complete(i, {"loss": _objective(c)})
    assert len(s.history) == 1
    ids2 = [f"u{i}" for i in range(3)]
    cfgs2 = [s.suggest(i) for i in ids2]
    assert s.suggest("extra2") is None  # still waiting, not FINISHED yet
    for i, c in zip(ids2, cfgs2, strict=True):
        s.on_trial_complete(i, {"loss": _objective(c)})
    assert s.suggest("late") == Searcher.FINISHED
    hist = s.history
    assert [h["round"] for h in hist] == [0, 1]
    assert set(hist[0]["mean"]) == {"x", "opt/lr"}
    assert hist[0]["mean"]["x"] == pytest.approx(0.5)  # uniform on [-1, 2]
    assert hist[0]["var"]["x"] == pytest.approx(9 / 12)
    json.dumps(hist, allow_nan=False)
    best_value, best_cfg = s.best
    assert best_value == min(hist[0]["values"] + hist[1]["values"])


def test_failures_count_as_results_and_round_completes() -> None:
    s = _searcher(samples_per_round=7)
    ids = [f"t{i}" for i in range(7)]
    for i in ids:
        assert s.suggest(i) is not None
    s.on_trial_result("t0", {"loss": 0.1})
    s.on_trial_complete("t0", None, error=True)  # errored -> worst, despite earlier result
    s.on_trial_complete("t1", {"loss": float("nan")})
    s.on_trial_complete("t2", {"loss": float("inf")})
    s.on_trial_complete("t3", {"other": 1.0})  # metric missing, nothing reported before
    s.on_trial_result("t4", {"loss": 0.7})
    s.on_trial_result("t4", {"loss": 0.5})
    s.on_trial_complete("t4", {"other": 1.0})  # metric missing -> last reported value
    s.on_trial_complete("t5", {"loss": "not a number"})
    s.on_trial_complete("not-ours", {"loss": 0.0})  # ignored
    assert len(s.history) == 0
    s.on_trial_complete("t6", {"loss": 2.0})  # early-stopped/normal: last result
    s.on_trial_complete("t6", {"loss": 3.0})  # duplicate completion ignored
    assert len(s.history) == 1
    values = s.history[0]["values"]
    assert all(math.isnan(v) for v in values[:2]) and values[2] == math.inf
    assert math.isnan(values[3]) and values[4] == 0.5 and math.isnan(values[5]) and values[6] == 2.0
    assert s.best[0] == 0.5
    assert s.suggest("next") is not None  # the search goes on


def test_all_failed_round_does_not_crash() -> None:
    s = _searcher()
    for i in range(3):
        s.suggest(f"t{i}")
    for i in range(3):
        s.on_trial_complete(f"t{i}", None, error=True)
    assert len(s.history) == 1 and s.suggest("t3") is not None


# ------------------------------------------------------------ save / restore
def _drive(s: S2ESearcher, prefix: str, n: int) -> list:
    """Suggest up to n trials, completing each round as it fills."""
    out, open_ids = [], []
    for i in range(n):
        tid = f"{prefix}{i}"
        cfg = s.suggest(tid)
        if cfg is None:
            for o, c in open_ids:
                s.on_trial_complete(o, {"loss": _objective(c)})
            open_ids = []
            cfg = s.suggest(tid)
        out.append(cfg)
        open_ids.append((tid, cfg))
    for o, c in open_ids:
        s.on_trial_complete(o, {"loss": _objective(c)})
    return out


def _mid_round(s: S2ESearcher) -> None:
    _drive(s, "a", 6)  # two complete rounds
    s.suggest("b0")
    s.suggest("b1")
    s.on_trial_result("b1", {"loss": 9.0})
    s.on_trial_complete("b0", {"loss": 1.0})  # b1 still running


def _continue(s: S2ESearcher) -> list:
    s.on_trial_complete("b1", {"other": 0})  # uses its last reported 9.0
    b2 = s.suggest("b2")
    s.on_trial_complete("b2", {"loss": _objective(b2)})
    return [b2] + _drive(s, "c", 7) + [s.history[-1]["a"], s.best]


def test_save_restore_file_mid_round_gives_identical_suggestions(tmp_path) -> None:
    ref, a = _searcher(seed=5), _searcher(seed=5)
    _mid_round(ref)
    _mid_round(a)
    path = tmp_path / "searcher.pkl"
    a.save(str(path))
    restored = S2ESearcher()  # bare, as Tuner.restore would rebuild it
    restored.restore(str(path))
    assert (restored.metric, restored.mode) == ("loss", "min")
    via_state = S2ESearcher(seed=123)
    via_state.set_state(a.get_state())
    via_pickle = pickle.loads(pickle.dumps(a))
    expected = _continue(ref)
    assert _continue(restored) == expected
    assert _continue(via_state) == expected
    assert _continue(via_pickle) == expected
    # the core state inside is plain JSON
    json.dumps(restored.get_state()["s2e"], allow_nan=False)


def test_restore_from_dir_round_trip(tmp_path) -> None:
    s = _searcher()
    _mid_round(s)
    s.save_to_dir(str(tmp_path), session_str="x")
    t = S2ESearcher()
    t.restore_from_dir(str(tmp_path))
    assert t.get_state()["s2e"] == s.get_state()["s2e"]


def test_history_from_state_of_a_real_searcher() -> None:
    s = _searcher(rounds=3)
    assert S2ESearcher.history_from_state(s.get_state()) is None  # never started
    ids = [f"t{i}" for i in range(9)]
    for r in range(3):
        cfgs = [(i, s.suggest(i)) for i in ids[3 * r : 3 * r + 3]]
        for j, (i, c) in enumerate(cfgs):
            s.on_trial_complete(i, {"loss": math.nan if (r, j) == (1, 2) else _objective(c)})
    state = pickle.loads(pickle.dumps(s.get_state()))  # as Tune saves it
    doc = S2ESearcher.history_from_state(state, fixed={"name": "const"})
    json.dumps(doc, allow_nan=False)
    assert "seed" not in doc and doc["version"] == 1 and doc["fixed"] == {"name": "const"}
    assert doc["params"] == [
        {"name": "x", "low": -1.0, "high": 2.0, "log": False},
        {"name": "opt/lr", "low": 1e-4, "high": 1e-1, "log": True},
    ]
    hist = s.history
    assert [r["round"] for r in doc["rounds"]] == [0, 1, 2]
    assert doc["rounds"][1]["values"][2] is None  # the NaN, as null
    for got, want in zip(doc["rounds"], hist, strict=True):
        want = {**want, "values": [v if math.isfinite(v) else None for v in want["values"]]}
        assert got == want
    assert S2ESearcher.history_from_state(state)["fixed"] is None
    # params from the S2E state when the searcher's own are absent
    assert S2ESearcher.history_from_state({**state, "params": None})["params"] == doc["params"]


# ----------------------------------------------------------------- Tuner runs
@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _score(config):
    tune.report({"score": -((config["x"] - 0.3) ** 2) - (math.log10(config["lr"]) + 2) ** 2})


def _multi_step(config):
    for i in range(4):
        tune.report({"score": -((config["x"] - 0.3) ** 2) * (1 + 1 / (i + 1))})


def _run(tmp_path, trainable, alg, num_samples, name, scheduler=None):
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 0.5}),
        param_space={"x": tune.uniform(0.0, 1.0), "lr": tune.loguniform(1e-4, 1.0), "tag": "fixed"},
        tune_config=tune.TuneConfig(
            search_alg=alg,
            scheduler=scheduler,
            metric="score",
            mode="max",
            num_samples=num_samples,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0),
    )
    return tuner.fit()


def test_tuner_runs_exactly_num_samples(ray_session, tmp_path) -> None:
    alg = S2ESearcher(samples_per_round=3, seed=1)
    res = _run(tmp_path, _score, alg, 7, "plain")
    assert len(res) == 7 and res.num_errors == 0
    assert all(r.config["tag"] == "fixed" for r in res)
    assert len(alg.history) == 2  # two full rounds of 3, the 7th trial starts round 3
    assert len({r.config["x"] for r in res}) == 7


def test_tuner_with_concurrency_limiter(ray_session, tmp_path) -> None:
    alg = S2ESearcher(samples_per_round=3, seed=2)
    res = _run(tmp_path, _score, ConcurrencyLimiter(alg, max_concurrent=2), 6, "limited")
    assert len(res) == 6 and res.num_errors == 0
    assert len(alg.history) == 2


def test_tuner_with_asha(ray_session, tmp_path) -> None:
    from ray.tune.schedulers import ASHAScheduler

    alg = S2ESearcher(samples_per_round=4, seed=3)
    asha = ASHAScheduler(max_t=4, grace_period=1, reduction_factor=2)
    res = _run(tmp_path, _multi_step, alg, 8, "asha", scheduler=asha)
    assert len(res) == 8 and res.num_errors == 0
    assert len(alg.history) == 2  # early-stopped trials completed their rounds
    iters = [r.metrics["training_iteration"] for r in res]
    assert min(iters) < 4  # ASHA did stop some trials early


class _InterruptAfter(tune.Callback):
    """Interrupts the run (SIGUSR1, Tune's Ctrl+C path) after ``n`` trials complete.

    Unlike a ``Stopper.stop_all`` (which marks the search finished), this is
    the interruption ``Tuner.restore`` is meant to resume.  Disarmed when
    pickled, so the restored run is not interrupted again.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.done = 0
        self.armed = True

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.done += 1
        if self.armed and self.done == self.n:
            os.kill(os.getpid(), signal.SIGUSR1)

    def __getstate__(self) -> dict:
        return {"n": self.n, "done": 0, "armed": False}


@pytest.mark.slow
def test_tuner_restore_continues_the_search(ray_session, tmp_path) -> None:
    trainable = tune.with_resources(_score, {"cpu": 0.5})
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0.0, 1.0), "lr": tune.loguniform(1e-4, 1.0)},
        tune_config=tune.TuneConfig(
            search_alg=S2ESearcher(samples_per_round=3, seed=4),
            metric="score",
            mode="max",
            num_samples=9,
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="resume", verbose=0, callbacks=[_InterruptAfter(4)]),
    )
    first = tuner.fit()
    assert len(first) < 9
    res = tune.Tuner.restore(str(tmp_path / "resume"), trainable).fit()
    xs = [r.config["x"] for r in res]
    assert len(res) == 9 and res.num_errors == 0
    # continued with new configurations, not restarted from the seed's first round
    assert len(set(xs)) == 9
