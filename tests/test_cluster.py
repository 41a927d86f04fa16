"""A real multi-node Ray cluster (ray.cluster_utils.Cluster): placement across nodes and node loss."""

import subprocess
import sys
import time

import pytest
from ray.cluster_utils import Cluster

from results.store import Store
from results.tables import read_epochs
from s2e_tune.run import main


@pytest.fixture
def cluster():
    c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c, worker
    c.shutdown()


def small_config(tmp_path, samples=1000):
    f = tmp_path / "small.yaml"
    f.write_text(f"mnist1d_samples: {samples}\n")
    return str(f)


@pytest.mark.slow
def test_search_through_address_runs_trials_on_both_nodes(cluster, tmp_path, data_dir, capsys):
    c, _ = cluster
    # trials long enough (~10 s) that the second node's actor is up before the first node has done them all
    argv = ["--config", small_config(tmp_path, 3000), "--address", c.address, "--searcher", "s2e", "--trials", "4",
            "--epochs", "8", "--samples-per-round", "4", "--storage", str(tmp_path / "out"), "--name", "c",
            "--data-dir", str(data_dir), "--quiet", "--wandb", "off"]
    assert main([*argv, "--gpus", "1"]) == 2  # the cluster has no GPU
    assert "has 0 GPUs" in capsys.readouterr().err
    assert main(argv) == 0
    epochs = read_epochs(Store.from_uri(str(tmp_path / "out" / "c")))
    assert epochs["trial_id"].nunique() == 4
    assert epochs["node_id"].nunique() == 2  # both nodes trained


@pytest.fixture
def two_workers():
    """A head that runs no trial and two 1-CPU worker nodes, so that either worker can be lost."""
    c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [c.add_node(num_cpus=1), c.add_node(num_cpus=1)]
    c.wait_for_nodes()
    yield c, workers
    c.shutdown()


@pytest.mark.slow
def test_losing_a_worker_node_mid_search_does_not_lose_the_search(two_workers, tmp_path, data_dir):
    c, workers = two_workers
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "s2e_tune.run", "--config", small_config(tmp_path), "--address", c.address,
           "--searcher", "random", "--trials", "6", "--epochs", "4", "--storage", str(out), "--name", "n",
           "--data-dir", str(data_dir), "--quiet", "--wandb", "off"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = Store.from_uri(str(out / "n"))
    deadline = time.time() + 240
    lost = None  # the first worker seen training: Tune may put every trial on one of them
    while lost is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.3)
        try:
            epochs = read_epochs(store)
        except Exception:  # a part file being replaced right now
            continue
        seen = set() if epochs.empty else set(epochs["node_id"])
        lost = next((w for w in workers if w.node_id in seen), None)
    assert lost is not None, "no trial reached a worker node while the search ran"
    c.remove_node(lost)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    trials = store.read_table(store.path("trials.parquet")).to_pandas()
    assert len(trials) == 6
    assert (trials["epochs_run"] == 4).all() and (trials["status"] == "TERMINATED").all()
    epochs = read_epochs(store)
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert set(epochs["node_id"]) - {lost.node_id}  # work continued on the other worker
