"""``results.load`` and the README's DuckDB query on the output of a real run (local here; the S3
test in tests/test_s3_storage.py reads a run written to a real S3 server the same way)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

import results
from noisylabels.errors import UserError
from results.schema import METRIC_COLUMNS, TRIAL_COLUMNS
from s2e_tune.run import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    """random (the `s2e` space: f*_a*, w* keys) and default (Co-teaching's tau, c, t_k) on two seeds."""
    out = tmp_path_factory.mktemp("reader")
    cfg = out / "small.yaml"
    cfg.write_text("mnist1d_samples: 1000\n")
    argv = ["--config", str(cfg), "--searcher", "random,default", "--seeds", "0,1", "--trials", "2",
            "--epochs", "2", "--storage", str(out), "--name", "r", "--data-dir", str(data_dir),
            "--quiet", "--wandb", "off"]  # fmt: skip
    assert main(argv) == 0
    return out / "r"


def readme_duckdb_query(where: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r'duckdb\.sql\("""(.*?)"""\)', text, flags=re.S)
    assert block, "README lost its DuckDB example"
    return block.group(1).replace("s2e-results/NAME", where)


def check_loaded(run: results.Results, parts: dict[str, pd.DataFrame], searchers, seeds) -> None:
    """What ``results.load`` returns, against the part files read one by one with pyarrow."""
    e = run.epochs
    assert run.searchers == sorted(searchers) and run.seeds == sorted(seeds)
    assert len(e) == sum(len(p) for p in parts.values()) > 0
    assert pd.api.types.is_string_dtype(e["searcher"]) and pd.api.types.is_string_dtype(e["trial_id"])
    assert e["seed"].dtype == "int64" and e["epoch"].dtype == "int64" and e["diverged"].dtype == bool
    assert all(e[m].dtype == "float64" for m in METRIC_COLUMNS)
    assert isinstance(e["timestamp"].dtype, pd.DatetimeTZDtype) and str(e["timestamp"].dt.tz) == "UTC"
    for path, part in parts.items():
        searcher, seed = re.search(r"searcher=([^/]+)/seed=(\d+)/", path).groups()
        mine = e[e["trial_id"].isin(part["trial_id"])]
        assert (mine["searcher"] == searcher).all() and (mine["seed"] == int(seed)).all()
        cols = ["trial_id", "epoch", *METRIC_COLUMNS]
        pd.testing.assert_frame_equal(
            mine[cols].reset_index(drop=True), part[cols].sort_values("epoch").reset_index(drop=True)
        )
    t = run.trials
    assert list(t.columns[: len(TRIAL_COLUMNS)]) == TRIAL_COLUMNS
    assert len(t) == e["trial_id"].nunique() == len(parts) and (t["status"] == "TERMINATED").all()
    assert run.summary is not None and len(run.summary) == len(searchers) * len(seeds)
    assert run.manifest["config"]["searchers"] == list(searchers)


def check_duckdb(run: results.Results, got: pd.DataFrame) -> None:
    want = (
        run.epochs.groupby(["searcher", "seed"])
        .agg(best_val_acc=("val_acc", "max"), trials=("trial_id", "nunique"))
        .reset_index()
    )
    got = got.sort_values(["searcher", "seed"]).reset_index(drop=True)
    assert list(got["searcher"]) == list(want["searcher"]) and list(got["seed"]) == list(want["seed"])
    assert list(got["trials"]) == list(want["trials"])
    assert got["best_val_acc"].tolist() == pytest.approx(want["best_val_acc"].tolist())


def test_load_gives_every_part_with_searcher_and_seed(run_dir):
    parts = {str(p): pq.read_table(p).to_pandas() for p in sorted((run_dir / "epochs").rglob("*.parquet"))}
    run = results.load(run_dir)
    check_loaded(run, parts, ["random", "default"], [0, 1])
    assert "config.f1_a1" in run.epochs and "config.tau" in run.epochs  # both searchers' keys kept
    assert run.epochs.loc[run.epochs["searcher"] == "default", "config.f1_a1"].isna().all()


def test_readme_duckdb_query_on_local_output(run_dir):
    run = results.load(run_dir)
    got = duckdb.sql(readme_duckdb_query(str(run_dir))).df()
    check_duckdb(run, got)


def test_duckdb_over_the_epochs_dataset(run_dir):
    run = results.load(str(run_dir))
    epochs = results.epochs_dataset(run_dir)  # noqa: F841 - DuckDB finds it by name
    assert {"config.tau", "config.f1_a1", "searcher", "seed"} <= set(epochs.schema.names)
    got = duckdb.sql(readme_duckdb_query("x").split("FROM", 1)[0] + "FROM epochs GROUP BY searcher, seed").df()
    check_duckdb(run, got)


def test_load_of_a_missing_or_empty_directory_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no results directory"):
        results.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no Parquet results"):
        results.load(tmp_path / "empty")
    with pytest.raises(UserError, match="no Parquet results"):
        results.epochs_dataset(tmp_path / "empty")
