"""S2E's K when --samples-per-round is not given: one per parallel trial slot, >= 2, <= trials / 2."""

import json

import pytest

from noisylabels.errors import UserError
from results.store import Store
from s2e_tune import preflight as experiment
from s2e_tune.config import ExperimentConfig


@pytest.fixture
def cluster(monkeypatch):
    resources = {}
    monkeypatch.setattr(experiment.ray, "cluster_resources", lambda: dict(resources))
    return resources


def k_for(tmp_path, **kw):
    cfg = ExperimentConfig(storage=str(tmp_path), **kw)
    cfg.validate()
    return experiment.resolve_k(cfg, Store.from_uri(str(tmp_path / "x"))).samples_per_round


@pytest.mark.parametrize(
    "resources,kw,k",
    [
        ({"CPU": 2.0}, {"trials": 16}, 2),  # the laptop: two 1-CPU trials at a time
        ({"CPU": 16.0}, {"trials": 16}, 8),  # 16 slots, but at least two rounds: K <= trials / 2
        ({"CPU": 16.0}, {"trials": 6}, 3),
        ({"CPU": 16.0}, {"trials": 3}, 2),  # never below 2
        ({"CPU": 16.0}, {"trials": 64, "cpus_per_trial": 4}, 4),
        ({"CPU": 64.0, "GPU": 8.0}, {"trials": 64, "gpus": 8}, 8),  # one GPU per trial
        ({"CPU": 64.0, "GPU": 8.0}, {"trials": 64, "gpus": 8, "gpus_per_trial": 0.5}, 16),
        ({"CPU": 64.0, "GPU": 8.0}, {"trials": 64, "gpus": 2}, 2),  # --gpus caps the slots, not the cluster
        ({"CPU": 2.0}, {"trials": 16, "samples_per_round": 5}, 5),  # given: kept
    ],
)
def test_k_is_one_per_parallel_slot(tmp_path, cluster, resources, kw, k):
    cluster.update(resources)
    assert k_for(tmp_path, **kw) == k


def test_a_resumed_run_keeps_its_k(tmp_path, cluster):
    cluster.update({"CPU": 16.0})
    store = Store.from_uri(str(tmp_path / "x"))
    store.write_bytes(store.path("manifest.json"), json.dumps({"config": {"samples_per_round": 5}}).encode())
    cfg = ExperimentConfig(storage=str(tmp_path), trials=16, resume=True)
    assert experiment.resolve_k(cfg, store).samples_per_round == 5
    assert experiment.resolve_k(ExperimentConfig(storage=str(tmp_path), trials=16), store).samples_per_round == 8


def test_k_below_two_is_refused():
    with pytest.raises(UserError, match="at least 2"):
        ExperimentConfig(samples_per_round=1).validate()
