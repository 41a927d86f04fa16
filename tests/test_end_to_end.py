"""A tiny two-searcher search through the run command, checked from its files alone."""

import json

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from results.schema import METRIC_COLUMNS
from results.store import Store
from results.tables import read_epochs
from s2e_tune.run import main

TRIALS, EPOCHS = 3, 2


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("e2e")
    cfg = tmp / "small.yaml"
    cfg.write_text("mnist1d_samples: 1000\n")
    flags = f"--searcher s2e,asha --trials {TRIALS} --epochs {EPOCHS} --samples-per-round 2 --name e2e"
    argv = ["--config", str(cfg), "--storage", str(tmp), "--data-dir", str(data_dir), *flags.split()]
    argv += ["--wandb", "offline", "--quiet"]
    assert main(argv) == 0
    return tmp / "e2e"


def test_epoch_rows_match_what_the_trials_ran(run_dir):
    store = Store.from_uri(str(run_dir))
    epochs = read_epochs(store)
    assert not epochs.duplicated(["searcher", "seed", "trial_id", "epoch"]).any()
    trial_dirs = sorted((run_dir / "s2e-seed0").glob("trial_*"))  # Tune's own record of each trial
    assert len(trial_dirs) == TRIALS, trial_dirs
    for trial_dir in trial_dirs:
        progress = pd.read_csv(trial_dir / "progress.csv")
        mine = epochs[epochs["trial_id"] == trial_dir.name.removeprefix("trial_")]
        assert mine["epoch"].tolist() == progress["epoch"].tolist()
        assert np.allclose(mine["val_acc"], progress["val_acc"])
    s2e = epochs[epochs["searcher"] == "s2e"]
    assert len(s2e) == TRIALS * EPOCHS and s2e["trial_id"].nunique() == TRIALS
    asha = epochs[epochs["searcher"] == "asha"]
    assert 0 < len(asha) <= TRIALS * EPOCHS  # the same budget in epochs


def test_column_types_are_as_documented(run_dir):
    part = next((run_dir / "epochs" / "searcher=s2e" / "seed=0").glob("part-*.parquet"))
    schema = pq.read_schema(part)
    assert schema.field("epoch").type == pa.int64()
    assert all(schema.field(m).type == pa.float64() for m in METRIC_COLUMNS)
    assert schema.field("diverged").type == pa.bool_()
    assert schema.field("trial_id").type == pa.string()
    assert pa.types.is_timestamp(schema.field("timestamp").type)
    assert schema.field("config.f1_a1").type == pa.float64()


def test_trials_table_agrees_with_the_epoch_rows(run_dir):
    store = Store.from_uri(str(run_dir))
    epochs = read_epochs(store)
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert len(trials) == epochs.groupby(["searcher", "trial_id"]).ngroups
    for t in trials.itertuples():
        rows = epochs[(epochs["searcher"] == t.searcher) & (epochs["trial_id"] == t.trial_id)]
        assert t.epochs_run == len(rows)
        assert t.final_val_acc == rows["val_acc"].iloc[-1] and t.best_val_acc == rows["val_acc"].max()
        assert t.test_acc_at_final == rows["test_acc"].iloc[-1]
        assert t.mean_label_precision == pytest.approx(rows["label_precision"].mean())
        assert t.status in ("TERMINATED", "STOPPED_EARLY")
    s2e = trials[trials["searcher"] == "s2e"].sort_values("cumulative_epochs_at_end")
    assert s2e["cumulative_epochs_at_end"].max() == TRIALS * EPOCHS


def test_manifest_is_complete(run_dir):
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["config"]["searchers"] == ["s2e", "asha"] and m["seeds"] == [0]
    assert m["packages"]["ray"] and m["packages"]["torch"] and m["packages"]["pyarrow"]
    assert m["host"]["cpu_count"] and m["device"]["gpus"] == 0
    assert 0.4 < m["data"]["0"]["realised_noise_rate"] < 0.6
    assert "git_commit" in m and "created_at" in m


def test_plots_are_real_images(run_dir):
    for name in ("search_efficiency.png", "label_precision.png", "schedules.png"):
        path = run_dir / "plots" / name
        assert path.stat().st_size > 20_000
        img = mpimg.imread(path)
        assert img.shape[0] > 300 and img.shape[1] > 500
        assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 50  # not a blank canvas
    assert (run_dir / "plots" / "summary.md").read_text().count("|") > 10


def test_one_wandb_offline_run_per_trial(run_dir):
    trials = pd.read_parquet(run_dir / "trials.parquet")
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    for t in trials.itertuples():
        assert sum(t.trial_id in r.name for r in runs) == 1, t.trial_id
    others = [r for r in runs if not any(t in r.name for t in trials["trial_id"])]
    assert len(others) == 1  # the summary run; no run for a trial that never reported an epoch
