"""Results on an S3-compatible object store (a real moto server started by the test)."""

import json

import duckdb
import pandas as pd
import pyarrow.fs as pafs
import pytest

import results
from results import layout
from results.store import Store
from s2e_tune.run import main


def test_search_writes_its_results_to_s3_and_resume_skips_finished_searches(s3_server, tmp_path, data_dir, capsys):
    cfg = tmp_path / "small.yaml"
    cfg.write_text("mnist1d_samples: 1000\n")
    flags = "--searcher random --trials 2 --epochs 2 --storage s3://s2e-results/runs --name s3test --wandb off"
    argv = ["--config", str(cfg), "--data-dir", str(data_dir), *flags.split(), "--quiet"]
    assert main(argv) == 0
    store = Store.from_uri("s3://s2e-results/runs/s3test")
    assert isinstance(store.fs, pafs.S3FileSystem)
    manifest = json.loads(store.read_bytes(store.path("manifest.json")))
    assert manifest["config"]["storage"] == "s3://s2e-results/runs"
    trials = store.read_table(store.path("trials.parquet")).to_pandas()
    assert len(trials) == 2 and (trials["epochs_run"] == 2).all()
    assert store.exists(store.path("random-seed0"))  # Tune's own experiment state is there too
    run = results.load("s3://s2e-results/runs/s3test")  # the reader and DuckDB on S3 output
    assert len(run.epochs) == 4 and set(run.epochs["searcher"]) == {"random"} and set(run.epochs["seed"]) == {0}
    assert sorted(run.trials["trial_id"]) == sorted(trials["trial_id"]) and run.manifest["name"] == "s3test"
    epochs = results.epochs_dataset("s3://s2e-results/runs/s3test")  # noqa: F841 - DuckDB finds it by name
    got = duckdb.sql("SELECT trial_id, max(val_acc) AS v, count(*) AS n FROM epochs GROUP BY trial_id").df()
    want = run.epochs.groupby("trial_id")["val_acc"].max()
    assert dict(zip(got["trial_id"], got["n"], strict=True)) == dict.fromkeys(want.index, 2)
    assert dict(zip(got["trial_id"], got["v"], strict=True)) == pytest.approx(want.to_dict())

    def untouched():  # the part files, Tune's experiment, the done marker: byte for byte
        kept = (layout.EPOCHS, layout.TRIALS, layout.tune_experiment("random", 0), layout.SEARCHES)
        return {p: store.read_bytes(p) for k in kept for p in store.list_files(store.path(k), suffix="")}

    files = untouched()
    assert any("/epochs/" in p for p in files) and any("/experiment_state-" in p for p in files)
    capsys.readouterr()
    assert main([a for a in argv if a != "--quiet"] + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "[random seed 0] already finished, skipped" in out and "restored from" not in out
    assert untouched() == files  # nothing was trained again
    again = store.read_table(store.path("trials.parquet")).to_pandas()
    pd.testing.assert_frame_equal(trials, again)


def test_unwritable_bucket_is_one_line(s3_server, capsys):
    assert main(["--storage", "s3://no-such-bucket/x", "--trials", "1", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: storage s3://no-such-bucket/x is not writable") and err.count("\n") == 1
