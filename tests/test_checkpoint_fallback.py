"""A corrupt ``trainer.pt`` (truncated, garbled, not a trainer state) makes its trial fall back to
its previous checkpoint or restart from epoch 0, with a one-line warning, never crash the search."""

import json
import os

import pandas as pd
import pyarrow.fs as pafs
import pytest
import ray
import torch
from ray import tune

from noisylabels.spaces import coteaching_default
from results.parquet_log import ParquetLogger
from results.schema import METRIC_COLUMNS
from results.store import Store
from results.tables import read_epochs
from s2e_tune.config import ExperimentConfig
from s2e_tune.experiment import run_experiment
from tests.faults import FaultyTrainable, faulty_trainable, truncate
from trainables.engine import Trainer
from trainables.trainable import CHECKPOINT_FILE, DIGEST_SUFFIX, NoisyLabelTrainable, write_state

CFG = {"method": "coteaching", "epochs": 4, "seed": 3, "device": "cpu", **coteaching_default(0.5)}
STABLE = [m for m in METRIC_COLUMNS if m != "epoch_time_s"]  # all but the clock


def local_trainable(data):
    """NoisyLabelTrainable outside Ray: its data given by the class, not by ``tune.with_parameters``."""

    class Local(NoisyLabelTrainable):
        def setup(self, config):
            super().setup(config, data=data)

    return Local


@pytest.fixture(params=["local", "s3"])
def trial_dir(request, tmp_path):
    """(filesystem, path of an empty trial directory) on local disk or on the S3 test server."""
    if request.param == "local":
        return pafs.LocalFileSystem(), str(tmp_path / "trial_x")
    bucket = request.getfixturevalue("s3_server")["bucket"]
    store = Store.from_uri(f"s3://{bucket}/{tmp_path.name}/trial_x")
    return store.fs, store.root


def write_checkpoints(fs, trial_dir, data, epochs, tmp_path):
    """``checkpoint_00000<i>`` after epoch i + 1 of one uninterrupted trainer; its states by epoch."""
    tr, states = Trainer(CFG, data), {}
    for i in range(epochs):
        tr.train_epoch()
        local = tmp_path / f"ckpt{i}"
        local.mkdir(parents=True)
        write_state(tr.state_dict(), str(local / CHECKPOINT_FILE))
        fs.create_dir(f"{trial_dir}/checkpoint_{i:06d}")
        pafs.copy_files(str(local), f"{trial_dir}/checkpoint_{i:06d}", destination_filesystem=fs)
        states[tr.epoch] = {k: v.clone() for k, v in tr.nets[0].state_dict().items()}
    return states


def restored(data, fs, path):
    t = local_trainable(data)(config=CFG)
    t.restore(tune.Checkpoint(path, filesystem=fs))
    return t


def same_weights(trainable, state) -> bool:
    return all(torch.equal(v, state[k]) for k, v in trainable.trainer.nets[0].state_dict().items())


def test_fallback_selection(small_data, trial_dir, tmp_path, capsys):
    fs, trial = trial_dir
    states = write_checkpoints(fs, trial, small_data, 3, tmp_path)
    ckpt = [f"{trial}/checkpoint_{i:06d}" for i in range(3)]

    t = restored(small_data, fs, ckpt[2])  # intact: no warning
    assert t.trainer.epoch == t.iteration == 3 and same_weights(t, states[3])
    assert capsys.readouterr().err == "" and t.step()["restore_warning"] == ""

    truncate(fs, f"{ckpt[2]}/{CHECKPOINT_FILE}")  # corrupt newest -> the previous one
    t = restored(small_data, fs, ckpt[2])
    assert t.trainer.epoch == t.iteration == 2 and same_weights(t, states[2])
    (line,) = capsys.readouterr().err.splitlines()
    uri = f"s3://{ckpt[2]}" if fs.type_name == "s3" else ckpt[2]
    assert line.startswith(f"warning: checkpoint {uri}/{CHECKPOINT_FILE} ")
    assert "unreadable" in line or "SHA-256" in line
    assert line.endswith(f"restored from {uri[:-1]}1 (epoch 2)")
    m = t.step()  # the warning travels with the next result, then is cleared
    assert m["epoch"] == 3 and m["restore_warning"] == line and t.step()["restore_warning"] == ""

    # without a digest (a checkpoint written before there were digests), torch.load alone
    # must find the truncation; a loadable file without a trainer state is corrupt too
    fs.delete_file(f"{ckpt[1]}/{CHECKPOINT_FILE}{DIGEST_SUFFIX}")
    truncate(fs, f"{ckpt[1]}/{CHECKPOINT_FILE}")
    with fs.open_output_stream(f"{ckpt[0]}/{CHECKPOINT_FILE}") as f:
        torch.save({"epoch": 1}, f)
    fs.delete_file(f"{ckpt[0]}/{CHECKPOINT_FILE}{DIGEST_SUFFIX}")
    t = restored(small_data, fs, ckpt[2])  # all corrupt -> restart from scratch
    assert t.trainer.epoch == t.iteration == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert line.count(f"/{CHECKPOINT_FILE} ") == 3 and "PytorchStreamReader" in line
    assert "has no nets, opts, shuffle_gen, torch_rng" in line
    assert line.endswith("no usable checkpoint left: the trial restarts from epoch 0")
    fresh = Trainer(CFG, small_data)  # the restart is the trial from scratch: same first epoch
    assert t.step()["val_acc"] == fresh.train_epoch()["val_acc"]


def test_gone_checkpoint_and_flipped_byte(small_data, tmp_path, capsys):
    fs, trial = pafs.LocalFileSystem(), str(tmp_path / "trial_y")
    states = write_checkpoints(fs, trial, small_data, 2, tmp_path / "w")
    # a checkpoint Tune names that is gone (its snapshot lagged): the newest one, silently
    t = restored(small_data, fs, f"{trial}/checkpoint_000007")
    assert t.trainer.epoch == 2 and same_weights(t, states[2]) and capsys.readouterr().err == ""

    newest = f"{trial}/checkpoint_000001/{CHECKPOINT_FILE}"
    data = bytearray(open(newest, "rb").read())
    data[len(data) // 2] ^= 0xFF  # torch.load reads this without complaint: only the digest sees it
    open(newest, "wb").write(bytes(data))
    t = restored(small_data, fs, f"{trial}/checkpoint_000001")
    assert t.trainer.epoch == 1 and same_weights(t, states[1])
    assert "its SHA-256 differs from trainer.pt.sha256" in capsys.readouterr().err


def test_tune_trial_with_a_truncated_checkpoint_falls_back_or_restarts(small_data, tmp_path):
    """Three trials of one config: none faulted; its checkpoint of epoch 1 truncated, then killed
    (nothing older: restart); its checkpoint of epoch 2 truncated, then killed (fall back to epoch
    1).  All end TERMINATED with the unfaulted trial's values, and one Parquet row per epoch."""
    store = Store.from_uri(str(tmp_path / "out"))
    marker = str(tmp_path / "truncated")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        logs = ray._private.worker._global_node.get_logs_dir_path()
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(FaultyTrainable, data=small_data), {"cpu": 1}),
            param_space={**CFG, "fault_truncate_epoch": tune.grid_search([None, 2, 3]), "fault_marker": marker},
            run_config=tune.RunConfig(
                storage_path=str(tmp_path),
                name="t",
                verbose=0,
                callbacks=[ParquetLogger(store, "grid", 0)],
                failure_config=tune.FailureConfig(max_failures=2),
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2),
            ),
        )
        grid = tuner.fit()
        stderr = "".join(open(os.path.join(logs, f)).read() for f in os.listdir(logs) if f.endswith(".err"))
    finally:
        ray.shutdown()
    assert not grid.errors
    by_fault = {r.config["fault_truncate_epoch"]: r for r in grid}
    epochs = read_epochs(store)
    for fault in (2, 3):
        trial_id = by_fault[fault].metrics["trial_id"]
        record = json.load(open(f"{marker}-{trial_id}.json"))  # the fault really fired
        assert record["epoch"] == fault
        start = f"warning: checkpoint {record['truncated']}/{CHECKPOINT_FILE} "
        (line,) = [line for line in stderr.splitlines() if line.startswith(start)]
        assert line.endswith("restarts from epoch 0" if fault == 2 else "checkpoint_000000 (epoch 1)")
        history = by_fault[fault].metrics_dataframe  # Tune's progress.csv: every result, columns aligned
        assert [w for w in history["restore_warning"].fillna("") if w] == [line]
        seen, at = history["epoch"].tolist(), history["restore_warning"].fillna("").tolist().index(line)
        assert seen[at:] == list(range(fault - 1, 5))  # re-trained from the epoch after the one restored
        # before the kill: epochs 1.. in order; Tune may not have logged the last result before the kill
        assert seen[:at] == list(range(1, at + 1)) and fault - 2 <= at <= fault - 1
        rows = epochs[epochs["trial_id"] == trial_id].sort_values("epoch")
        assert rows["epoch"].tolist() == [1, 2, 3, 4]  # each epoch once, re-trained ones included
        before = rows[rows["epoch"] == fault - 1].iloc[0]  # the re-trained epoch = the original
        assert all(before[k] == pytest.approx(record["before"][k], nan_ok=True) for k in STABLE)
    clean = epochs[epochs["trial_id"] == by_fault[None].metrics["trial_id"]].sort_values("epoch")
    for fault in (2, 3):
        assert by_fault[fault].metrics["epoch"] == 4
        rows = epochs[epochs["trial_id"] == by_fault[fault].metrics["trial_id"]].sort_values("epoch")
        pd.testing.assert_frame_equal(rows[STABLE].reset_index(drop=True), clean[STABLE].reset_index(drop=True))


@pytest.mark.slow
def test_search_with_truncated_checkpoints_completes(tmp_path, data_dir):
    """The run command's search (S2E, Parquet, num_to_keep=2, max_failures=2): every trial's
    checkpoint of epoch 2 truncated and its worker killed; every trial ends TERMINATED."""
    cfg = ExperimentConfig(
        searchers=("s2e",),
        trials=2,
        epochs=3,
        samples_per_round=2,
        mnist1d_samples=1000,
        data_dir=str(data_dir),
        storage=str(tmp_path),
        quiet=True,
        wandb="off",
        name="trunc",
    )
    marker = str(tmp_path / "truncated")
    summary = run_experiment(cfg, trainable=faulty_trainable(truncate_epoch=3, marker=marker))
    store = Store.from_uri(str(tmp_path / "trunc"))
    trials = pd.read_parquet(store.path("trials.parquet"))
    assert len(trials) == 2 and set(trials["status"]) == {"TERMINATED"} and set(trials["epochs_run"]) == {3}
    assert summary["trials"].tolist() == [2]
    epochs = read_epochs(store)
    assert sorted(epochs.groupby("trial_id")["epoch"].apply(list).tolist()) == [[1, 2, 3], [1, 2, 3]]
    for trial_id in trials["trial_id"]:
        record = json.load(open(f"{marker}-{trial_id}.json"))
        assert record["epoch"] == 3
        row = epochs[(epochs["trial_id"] == trial_id) & (epochs["epoch"] == 2)].iloc[0]
        assert all(row[k] == pytest.approx(record["before"][k], nan_ok=True) for k in STABLE)
    results = [os.path.join(d, "result.json") for d, _, files in os.walk(tmp_path / "trunc") if "result.json" in files]
    warnings = [json.loads(r)["restore_warning"] for p in results for r in open(p)]
    assert sum(w.endswith("(epoch 1)") and "restored from" in w for w in warnings) == 2
