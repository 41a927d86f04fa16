"""W&B logging: offline runs per trial from a real Tune run, and the online-mode key check.

No network and no API key are used: every test points W&B's config dir and netrc at an
empty temporary directory and removes ``WANDB_API_KEY``.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
import ray
from matplotlib.figure import Figure
from ray import tune

from noisylabels.errors import UserError
from results.wandb_log import (
    NO_KEY,
    WandbTrialLogger,
    check_wandb_mode,
    log_summary_run,
    wandb_callback,
)


@pytest.fixture(autouse=True)
def no_wandb_credentials(tmp_path, monkeypatch):
    home = tmp_path / "wandb-home"
    home.mkdir()
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("NETRC", str(home / "netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(scope="module")
def ray_local():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


def _trainable(config):
    for epoch in (1, 2):
        tune.report(
            {
                "epoch": epoch,
                "val_acc": config["x"] * epoch / 2,
                "test_acc": 0.5,
                "label_precision": 0.9,
                "kept_ratio": 1.0 - 0.1 * epoch,
                "diverged": False,
            }
        )


def _wandb_bytes(run_dir, needles=(), timeout=30.0):
    """The run's ``.wandb`` file once it holds every needle: W&B's service writes it
    asynchronously, shortly after ``run.finish()`` returns (completely at process exit)."""
    files = list(run_dir.glob("*.wandb"))
    assert len(files) == 1, f"expected one .wandb file in {run_dir}"
    deadline = time.monotonic() + timeout
    while True:
        data = files[0].read_bytes()
        if all(n in data for n in needles) or time.monotonic() > deadline:
            return data
        time.sleep(0.2)


def test_offline_callback_writes_one_run_per_trial(ray_local, tmp_path):
    local = tmp_path / "results"
    cb = wandb_callback("offline", "exp1", "random", 3, ["mnist1d", "sym50", "random"], local)
    assert isinstance(cb, WandbTrialLogger)
    tuner = tune.Tuner(
        _trainable,
        param_space={"x": tune.grid_search([0.2, 0.8]), "schedule": "coteaching"},
        run_config=tune.RunConfig(name="t", storage_path=str(tmp_path / "ray"), callbacks=[cb], verbose=0),
    )
    results = tuner.fit()
    assert not results.errors
    runs = sorted((local / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, [r.name for r in runs]
    trial_ids = {r.metrics["trial_id"] for r in results}
    for run in runs:
        data = _wandb_bytes(run, (b"exp1/random-seed3", b"val_acc", b"label_precision", b"sym50"))
        assert b"exp1/random-seed3" in data  # the group
        assert b"val_acc" in data and b"label_precision" in data
        assert b"sym50" in data  # a tag
        assert any(tid.encode() in data for tid in trial_ids)


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
    runs = list((tmp_path / "res" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and where is not None
    data = _wandb_bytes(runs[0], (b"search_efficiency", b"exp1/summary"))
    assert b"search_efficiency" in data and b"exp1/summary" in data
    assert log_summary_run("off", "exp1", summary) is None
