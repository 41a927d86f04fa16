"""The Trainable inside a real Ray Tune experiment."""

import pytest
import ray
from ray import tune

from noisylabels.spaces import coteaching_default
from tests.test_engine import METRICS
from trainables.trainable import NoisyLabelTrainable


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_two_trials_report_every_metric_every_epoch(ray_local, small_data, tmp_path):
    trainable = tune.with_parameters(NoisyLabelTrainable, data=small_data)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"method": "coteaching", "epochs": 3, **coteaching_default(0.5),
                     "tau": tune.grid_search([0.2, 0.5])},
        tune_config=tune.TuneConfig(metric="val_acc", mode="max"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="t", verbose=0),
    )
    grid = tuner.fit()
    assert len(grid) == 2 and not grid.errors
    for res in grid:
        hist = res.metrics_dataframe
        assert list(hist["epoch"]) == [1, 2, 3]
        assert METRICS <= set(hist.columns)
        assert hist["kept_ratio"].iloc[0] == 1.0
        assert hist["kept_ratio"].iloc[-1] == pytest.approx(1 - res.config["tau"])


def test_trainable_checkpoint_restores_the_next_epoch(ray_local, small_data, tmp_path):
    cfg = {"method": "coteaching", "epochs": 3, "seed": 1, "device": "cpu", **coteaching_default(0.5)}
    cls = tune.with_parameters(NoisyLabelTrainable, data=small_data)
    a = cls(config=cfg)
    a.train()
    ckpt = a.save(str(tmp_path / "ckpt"))
    expected = a.train()
    b = cls(config=cfg)
    b.restore(ckpt)
    got = b.train()
    keys = METRICS - {"epoch_time_s"}
    assert {k: got[k] for k in keys} == {k: expected[k] for k in keys}
    assert got["done"] is False and b.train()["done"] is True
