"""A search whose driver is killed with SIGKILL continues with --resume and ends like an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time

import pytest

from results.store import Store
from results.tables import read_epochs

SEARCHERS = "s2e,random"
TRIALS, EPOCHS = 4, 3


def command(tmp_path, storage, data_dir, *extra):
    cfg = tmp_path / "small.yaml"
    cfg.write_text("mnist1d_samples: 1000\n")
    return [
        sys.executable, "-m", "s2e_tune.run", "--config", str(cfg), "--searcher", SEARCHERS,
        "--trials", str(TRIALS), "--epochs", str(EPOCHS), "--samples-per-round", "2",
        "--storage", storage, "--name", "R", "--data-dir", str(data_dir), "--quiet", "--wandb", "off", *extra,
    ]


def epoch_rows(storage) -> int:
    store = Store.from_uri(f"{storage}/R")
    try:
        return len(read_epochs(store))
    except Exception:  # a part file being replaced right now
        return -1


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "out")
    server = request.getfixturevalue("s3_server")
    return f"s3://{server['bucket']}/{tmp_path.name}"


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_rows", [1, 9])
def test_sigkilled_search_resumes_to_the_same_result_shape(tmp_path, storage, data_dir, kill_after_rows):
    if storage.startswith("s3://") and kill_after_rows != 9:
        pytest.skip("one kill point is enough on object storage")
    proc = subprocess.Popen(command(tmp_path, storage, data_dir), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while epoch_rows(storage) < kill_after_rows and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, f"search ended before the kill point: {proc.stderr.read()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started die at once
    proc.wait()
    killed_at = epoch_rows(storage)
    assert killed_at < len(SEARCHERS.split(",")) * TRIALS * EPOCHS

    done = subprocess.run(command(tmp_path, storage, data_dir, "--resume"), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store.from_uri(f"{storage}/R")
    epochs = read_epochs(store)
    assert not epochs.duplicated(["searcher", "seed", "trial_id", "epoch"]).any()
    trials = store.read_table(store.path("trials.parquet")).to_pandas()
    for searcher in SEARCHERS.split(","):
        mine = trials[trials["searcher"] == searcher]
        assert len(mine) == TRIALS, mine
        assert (mine["epochs_run"] == EPOCHS).all()
        assert (mine["status"] == "TERMINATED").all()
        rows = epochs[epochs["searcher"] == searcher]
        assert sorted(rows.groupby("trial_id")["epoch"].apply(list).tolist()) == [[1, 2, 3]] * TRIALS
