"""W&B logging, read back on content: a real Tune run logs to offline W&B runs and to Parquet at
once, and every run's history (``results.wandb_log.read_offline_run``) must equal the trial's
``epochs/`` rows; plus the summary run and the online-mode key check.

No network and no API key are used: every test points W&B's config dir and netrc at an
empty temporary directory and removes ``WANDB_API_KEY``.
"""

from __future__ import annotations

import copy
import math
import time
from types import SimpleNamespace

import pandas as pd
import pytest
import ray
from matplotlib.figure import Figure
from ray import tune

from noisylabels.errors import UserError
from results.parquet_log import ParquetLogger
from results.schema import CONFIG_PREFIX, METRIC_COLUMNS
from results.store import Store
from results.tables import read_epochs
from results.wandb_log import (
    EXPERIMENT_KEY,
    NO_KEY,
    TRIAL_METRICS,
    WandbTrialLogger,
    check_wandb_mode,
    log_summary_run,
    read_offline_runs,
    wandb_callback,
)

EXPERIMENT, SEARCHER, SEED = "exp1", "random", 3
TAGS = ["mnist1d", "sym50", "random"]
XS, EPOCHS = (0.2, 0.8), 3


def _no_credentials(mp: pytest.MonkeyPatch, home) -> None:
    home.mkdir(parents=True, exist_ok=True)
    mp.delenv("WANDB_API_KEY", raising=False)
    mp.delenv("WANDB_MODE", raising=False)
    mp.setenv("WANDB_CONFIG_DIR", str(home))
    mp.setenv("WANDB_CACHE_DIR", str(home / "cache"))
    mp.setenv("WANDB_DATA_DIR", str(home / "data"))
    mp.setenv("NETRC", str(home / "netrc"))
    mp.setenv("WANDB_SILENT", "true")


@pytest.fixture(autouse=True)
def no_wandb_credentials(tmp_path, monkeypatch):
    _no_credentials(monkeypatch, tmp_path / "wandb-home")


@pytest.fixture(scope="module")
def ray_local():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


def _trainable(config):
    """Every metric of ``results.schema``, distinct per trial and epoch; ``label_precision_net2`` is
    NaN (a single-network method's), which W&B leaves out and Parquet keeps."""
    for epoch in range(1, EPOCHS + 1):
        row = {m: config["x"] / (i + 3) + epoch / 7 for i, m in enumerate(METRIC_COLUMNS)}
        row["label_precision_net2"] = math.nan
        tune.report({**row, "epoch": epoch, "diverged": epoch == EPOCHS})


def _finished_runs(local_dir, n: int, timeout: float = 60.0):
    """The offline runs under ``local_dir`` once ``n`` of them are finished: W&B's service writes
    the ``.wandb`` files asynchronously, shortly after ``run.finish()`` returns."""
    deadline = time.monotonic() + timeout
    while True:
        runs = read_offline_runs(local_dir)
        if (len(runs) >= n and all(r.finished for r in runs)) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


@pytest.fixture(scope="module")
def logged(ray_local, tmp_path_factory):
    """One real search of two trials x three epochs, with the Parquet and the W&B callbacks."""
    root = tmp_path_factory.mktemp("logged")
    with pytest.MonkeyPatch.context() as mp:
        _no_credentials(mp, root / "wandb-home")
        store = Store.from_uri(str(root / "results"))
        cb = wandb_callback("offline", EXPERIMENT, SEARCHER, SEED, TAGS, root / "results")
        assert isinstance(cb, WandbTrialLogger)
        tuner = tune.Tuner(
            _trainable,
            param_space={"x": tune.grid_search(list(XS)), "schedule": "coteaching"},
            run_config=tune.RunConfig(
                name="t",
                storage_path=str(root / "ray"),
                callbacks=[ParquetLogger(store, SEARCHER, SEED), cb],
                verbose=0,
            ),
        )
        assert not tuner.fit().errors
        runs = _finished_runs(root / "results", len(XS))
    return SimpleNamespace(runs=runs, epochs=read_epochs(store))


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _mismatches(history: list[dict], epochs: pd.DataFrame) -> list[str]:
    """How a run's W&B history differs from its trial's ``epochs/`` rows: steps that are not the
    epochs, and per step the logged keys (W&B's own ``_*`` left out) and values against the row's
    ``TRIAL_METRICS`` that have a value (the callback leaves NaN out)."""
    rows = {int(r["epoch"]): r for r in epochs.to_dict("records")}
    out = []
    if sorted(h.get("_step") for h in history) != sorted(rows):
        out.append(f"steps {[h.get('_step') for h in history]} != epochs {sorted(rows)}")
    for h in history:
        step, row = h.get("_step"), rows.get(h.get("_step"))
        if row is None:
            continue
        logged = {k: v for k, v in h.items() if not k.startswith("_")}
        expected = {m: row[m] for m in TRIAL_METRICS if not _missing(row[m])}
        if set(logged) != set(expected):
            out.append(f"step {step}: keys differ in {sorted(set(logged) ^ set(expected))}")
        if logged.get("epoch") != step:
            out.append(f"step {step}: epoch {logged.get('epoch')}")
        for k in sorted(set(logged) & set(expected)):
            v, want = logged[k], expected[k]
            if v != want or isinstance(v, bool) != isinstance(want, bool):
                out.append(f"step {step}: {k} = {v!r}, Parquet has {want!r}")
    return out


def _trial_rows(logged, run) -> pd.DataFrame:
    return logged.epochs[logged.epochs["trial_id"] == run.config["trial_id"]]


def test_offline_callback_writes_one_run_per_trial(logged):
    assert len(logged.runs) == len(XS), [r.run_id for r in logged.runs]
    trial_ids = set(logged.epochs["trial_id"])
    assert sorted(r.config["trial_id"] for r in logged.runs) == sorted(trial_ids)
    assert len({r.run_id for r in logged.runs}) == len(XS)
    for run in logged.runs:
        assert run.finished and run.job_type == "trial"
        assert run.group == f"{EXPERIMENT}/{SEARCHER}-seed{SEED}" and run.tags == TAGS
        cfg = run.config
        assert (cfg["searcher"], cfg["seed"], cfg[EXPERIMENT_KEY]) == (SEARCHER, SEED, EXPERIMENT)
        assert {cfg["x"]} == set(_trial_rows(logged, run)[f"{CONFIG_PREFIX}x"])
        assert cfg["schedule"] == "coteaching"


def test_history_equals_the_parquet_epochs(logged):
    """W&B step == epoch, and every logged value is the trial's epochs/ row's, for every trial."""
    assert len(logged.epochs) == len(XS) * EPOCHS
    assert sum(len(r.history) for r in logged.runs) == len(XS) * EPOCHS
    for run in logged.runs:
        rows = _trial_rows(logged, run)
        assert len(rows) == EPOCHS and len(run.history) == EPOCHS
        assert [h["_step"] for h in run.history] == [h["epoch"] for h in run.history] == [1, 2, 3]
        assert _mismatches(run.history, rows) == []
        assert all("label_precision_net2" not in h for h in run.history)  # NaN: not logged
        assert {"val_acc", "test_acc_net2", "diverged", "time_this_iter_s"} <= set(run.history[-1])


@pytest.mark.parametrize(
    "change",
    ["value", "one-ulp", "missing-key", "extra-key", "bool-as-int", "step", "missing-row"],
)
def test_a_wrong_history_is_detected(logged, change):
    """The comparison of the test above fails on any single wrong value, key or step."""
    run = logged.runs[0]
    history = copy.deepcopy(run.history)
    last = history[-1]
    if change == "value":
        last["val_acc"] += 0.01
    elif change == "one-ulp":
        last["test_acc"] = math.nextafter(last["test_acc"], math.inf)
    elif change == "missing-key":
        del last["kept_ratio"]
    elif change == "extra-key":
        last["label_precision_net2"] = 0.5
    elif change == "bool-as-int":
        last["diverged"] = int(last["diverged"])
    elif change == "step":
        last["_step"] = 4
    else:
        history.pop()
    assert _mismatches(history, _trial_rows(logged, run)) != []


def test_online_without_a_key_is_a_user_error():
    with pytest.raises(UserError) as exc:
        check_wandb_mode("online")
    assert str(exc.value) == NO_KEY
    assert "wandb login" in NO_KEY and "WANDB_API_KEY" in NO_KEY and "--wandb offline" in NO_KEY
    with pytest.raises(UserError, match="needs a W&B API key"):
        wandb_callback("online", "e", "s2e", 0, [], ".")


def test_modes():
    assert wandb_callback("off", "e", "s2e", 0, [], ".") is None
    check_wandb_mode("offline")
    check_wandb_mode("off")
    with pytest.raises(UserError, match="unknown --wandb mode"):
        check_wandb_mode("cloud")


def test_summary_run_offline(tmp_path):
    fig = Figure()  # no pyplot: no backend, no global figure
    fig.subplots().plot([0, 1], [0, 1])
    png = tmp_path / "search_efficiency.png"
    fig.savefig(png)
    summary = pd.DataFrame(
        {"searcher": ["s2e", "random"], "best_val_acc": [0.4, 0.35], "test_acc": [0.7, float("nan")]}
    )
    where = log_summary_run(
        "offline",
        "exp1",
        summary,
        {"search_efficiency": png},
        tags=["mnist1d"],
        local_dir=tmp_path / "res",
        config={"dataset": "mnist1d"},
    )
    (run,) = _finished_runs(tmp_path / "res", 1)
    assert where is not None and run.finished
    assert (run.group, run.job_type, run.tags) == ("exp1/summary", "summary", ["mnist1d"])
    assert run.config[EXPERIMENT_KEY] == "exp1" and run.config["dataset"] == "mnist1d"
    (row,) = run.history
    assert row["search_efficiency"]["_type"] == "image-file" and row["summary"]["_type"] == "table-file"
    assert row["summary"]["nrows"] == 2
    assert run.summary["s2e/best_val_acc"] == 0.4 and run.summary["random/best_val_acc"] == 0.35
    assert run.summary["s2e/test_acc"] == 0.7 and "random/test_acc" not in run.summary  # NaN: left out
    assert log_summary_run("off", "exp1", summary) is None
