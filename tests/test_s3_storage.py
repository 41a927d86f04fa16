"""Results on an S3-compatible object store (a real moto server started by the test)."""

import json

import pandas as pd
import pyarrow.fs as pafs

from results.store import Store
from s2e_tune.run import main


def test_search_writes_its_results_to_s3_and_resume_skips_finished_searches(s3_server, tmp_path, data_dir, capsys):
    cfg = tmp_path / "small.yaml"
    cfg.write_text("mnist1d_samples: 1000\n")
    argv = ["--config", str(cfg), "--searcher", "random", "--trials", "2", "--epochs", "2",
            "--storage", "s3://s2e-results/runs", "--name", "s3test", "--data-dir", str(data_dir),
            "--quiet", "--wandb", "off"]
    assert main(argv) == 0
    store = Store.from_uri("s3://s2e-results/runs/s3test")
    assert isinstance(store.fs, pafs.S3FileSystem)
    manifest = json.loads(store.read_bytes(store.path("manifest.json")))
    assert manifest["config"]["storage"] == "s3://s2e-results/runs"
    trials = store.read_table(store.path("trials.parquet")).to_pandas()
    assert len(trials) == 2 and (trials["epochs_run"] == 2).all()
    assert store.exists(store.path("random-seed0"))  # Tune's own experiment state is there too
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert "already finished" not in capsys.readouterr().out  # --quiet
    again = store.read_table(store.path("trials.parquet")).to_pandas()
    pd.testing.assert_frame_equal(trials, again)


def test_unwritable_bucket_is_one_line(s3_server, capsys):
    assert main(["--storage", "s3://no-such-bucket/x", "--trials", "1", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: storage s3://no-such-bucket/x is not writable") and err.count("\n") == 1
