"""Trial faults: retried from the last checkpoint, repeated failures and divergence end cleanly."""

import math

import pandas as pd
import pytest
import ray
from ray import tune

from noisylabels.spaces import coteaching_default
from results.store import Store
from s2e_tune.config import ExperimentConfig
from s2e_tune.experiment import run_experiment
from tests.faults import FaultyTrainable, NaNTrainer, faulty_trainable

STABLE = ["val_acc", "val_loss", "test_acc", "label_precision", "train_loss", "kept_ratio"]


def test_faulted_trial_is_retried_from_its_checkpoint_and_ends_like_an_unfaulted_one(small_data, tmp_path):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        marker = str(tmp_path / "fault-happened")
        base = {"method": "coteaching", "epochs": 3, "seed": 4, **coteaching_default(0.5)}
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(FaultyTrainable, data=small_data), {"cpu": 1}),
            param_space={**base, "fault_raise_epoch": tune.grid_search([None, 2]), "fault_marker": marker},
            run_config=tune.RunConfig(
                storage_path=str(tmp_path), name="f", verbose=0,
                failure_config=tune.FailureConfig(max_failures=1),
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1),
            ),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    assert not grid.errors
    assert (tmp_path / "fault-happened").exists()  # the fault really fired
    by_fault = {r.config["fault_raise_epoch"]: r.metrics for r in grid}
    assert by_fault[2]["epoch"] == by_fault[None]["epoch"] == 3
    assert {k: by_fault[2][k] for k in STABLE} == {k: by_fault[None][k] for k in STABLE}


def test_diverging_training_reports_the_worst_objective_and_stops(small_data):
    cfg = {"method": "coteaching", "epochs": 4, "fault_nan_epoch": 2, **coteaching_default(0.5)}
    tr = NaNTrainer(cfg, small_data)
    assert tr.train_epoch()["diverged"] is False
    m = tr.train_epoch()
    assert m["diverged"] is True and math.isnan(m["train_loss"])
    assert m["val_acc"] == 0.0 and m["val_loss"] == math.inf


@pytest.mark.slow
def test_trials_that_keep_failing_or_diverge_do_not_stop_the_search(tmp_path, data_dir):
    base = ExperimentConfig(
        searchers=("s2e",), trials=2, epochs=2, samples_per_round=2, mnist1d_samples=1000,
        data_dir=str(data_dir), storage=str(tmp_path), quiet=True, wandb="off",
    )
    failing = run_experiment(base.replace(name="fail"), trainable=faulty_trainable(raise_epoch=2))
    diverging = run_experiment(base.replace(name="nan"), trainable=faulty_trainable(nan_epoch=1))
    for name, summary, status, epochs in (("fail", failing, "ERROR", 1), ("nan", diverging, "DIVERGED", 1)):
        trials = pd.read_parquet(Store.from_uri(str(tmp_path / name)).path("trials.parquet"))
        assert len(trials) == 2 and set(trials["status"]) == {status}
        assert set(trials["epochs_run"]) == {epochs}
        assert summary["trials"].tolist() == [2]
