"""The results schema (``results.schema``): the epoch Parquet columns and the one best-trial rule.

Every frame is built so that a wrong rule picks a different trial: the shorter trial has the
higher ``val_acc``, the NaN trial comes first, and so on.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from results import layout
from results.efficiency import best_so_far
from results.parquet_log import ParquetLogger, epoch_table
from results.schema import (
    EPOCH_METRICS,
    EPOCH_SCHEMA_FIXED,
    METRIC_COLUMNS,
    SUMMARY_COLUMNS,
    best_trials,
    summary_rows,
)
from results.store import Store
from results.tables import build_trials, read_epochs


def test_epoch_parts_hold_exactly_the_schema_metrics(tmp_path):
    """What the logger writes for an epoch that reports every metric: the fixed columns in order,
    the metrics as float64 with their values, then the trial's config columns."""
    store = Store.from_uri(str(tmp_path / "exp"))
    logger = ParquetLogger(store, "s2e", 0)
    trial = SimpleNamespace(trial_id="t1", config={"epochs": 1, "schedule": "s2e", "w1": 0.5}, status="TERMINATED")
    result = {m: 0.01 * (i + 1) for i, m in enumerate(METRIC_COLUMNS)}
    result.update(epoch=1, diverged=False, time_this_iter_s=2.0, timestamp=1_800_000_000, node_id="n")
    assert set(result) >= set(EPOCH_METRICS)
    logger.on_trial_result(0, [], trial, result)
    table = store.read_table(store.path(layout.part_file(layout.EPOCHS, "s2e", 0, "t1")))
    names = table.schema.names
    assert names == [n for n, _ in EPOCH_SCHEMA_FIXED] + ["config.epochs", "config.schedule", "config.w1"]
    start = names.index("epoch") + 1
    assert tuple(names[start : start + len(METRIC_COLUMNS)]) == METRIC_COLUMNS
    assert names[start + len(METRIC_COLUMNS)] == "diverged"
    row = table.to_pylist()[0]
    for m in METRIC_COLUMNS:
        assert table.schema.field(m).type == pa.float64()
        assert row[m] == pytest.approx(result[m]), m
    read = read_epochs(store)
    assert set(METRIC_COLUMNS) <= set(read.columns) and len(read) == 1


def _trials(rows):
    cols = ["searcher", "seed", "trial_id", "epochs_run", "final_val_acc", "test_acc_at_final"]
    df = pd.DataFrame(rows, columns=cols)
    df["mean_label_precision"] = 0.5
    df["wall_time_s"] = df["epochs_run"] * 1.5
    return df


TRIALS = _trials(
    [
        ("s2e", 0, "short", 1, 0.95, 0.10),  # highest val_acc, but ran 1 of 3 epochs
        ("s2e", 0, "full_lo", 3, 0.50, 0.20),
        ("s2e", 0, "full_hi", 3, 0.60, 0.30),  # the best full-length trial
        ("random", 0, "a", 2, 0.40, 0.40),  # no full-length trial: every trial is a candidate
        ("random", 0, "b", 1, 0.45, 0.50),
        ("tpe", 1, "nan", 3, math.nan, 0.90),  # diverged, listed first
        ("tpe", 1, "ok", 3, 0.20, 0.60),
        ("bo", 0, "x", 3, math.nan, 0.70),  # only diverged trials: no best
        ("bo", 0, "y", 3, math.nan, 0.80),
    ]
)


def _picked(best):
    return {(r.searcher, r.seed): r.trial_id for r in best.itertuples()}


def test_best_trial_is_the_highest_final_val_acc_among_full_length_trials():
    assert _picked(best_trials(TRIALS, full_epochs=3)) == {
        ("s2e", 0): "full_hi",
        ("random", 0): "b",
        ("tpe", 1): "ok",
    }
    # without a full length every trial is a candidate: the short one wins
    assert _picked(best_trials(TRIALS))[("s2e", 0)] == "short"
    assert list(best_trials(TRIALS, 3).columns) == list(TRIALS.columns)
    assert best_trials(TRIALS.iloc[0:0], 3).empty


def test_nan_never_wins():
    only_nan = TRIALS[TRIALS["searcher"] == "bo"]
    assert best_trials(only_nan, 3).empty and best_trials(only_nan).empty
    nan_first = TRIALS[TRIALS["searcher"] == "tpe"]
    assert _picked(best_trials(nan_first))[("tpe", 1)] == "ok"


def test_summary_rows_columns_and_values():
    s = summary_rows(TRIALS, full_epochs=3)
    assert list(s.columns) == SUMMARY_COLUMNS
    assert [(r.searcher, r.seed) for r in s.itertuples()] == [("bo", 0), ("random", 0), ("s2e", 0), ("tpe", 1)]
    r = s.set_index("searcher")
    assert r.loc["s2e", "best_trial"] == "full_hi" and r.loc["s2e", "best_val_acc"] == 0.60
    assert r.loc["s2e", "test_acc"] == 0.30 and r.loc["s2e", "label_precision"] == 0.5
    assert r.loc["s2e", "trials"] == 3 and r.loc["s2e", "epochs_used"] == 7
    assert r.loc["s2e", "train_time_s"] == pytest.approx(10.5)
    assert math.isnan(r.loc["bo", "best_val_acc"]) and r.loc["bo", "trials"] == 2
    assert r.loc["random", "best_val_acc"] == 0.45 and r.loc["tpe", "best_val_acc"] == 0.20
    assert list(summary_rows(TRIALS.iloc[0:0]).columns) == SUMMARY_COLUMNS


def test_best_so_far_ends_at_the_best_trial(tmp_path):
    """The search-efficiency curve (results.efficiency) applies the same rule as it goes: its
    last value is the best trial's val_acc, on random searches with short and NaN trials."""
    rng = np.random.default_rng(0)
    store = Store.from_uri(str(tmp_path / "exp"))
    t = 0
    for searcher, seed in (("s2e", 0), ("s2e", 1), ("random", 0)):
        for k in range(6):
            n = int(rng.integers(1, 4))
            vals = rng.random(n)
            if k == 2:
                vals[-1] = math.nan
            rows = []
            for e, v in enumerate(vals, start=1):
                t += 1
                rows.append({"trial_id": f"t{k}", "epoch": e, "val_acc": v, "test_acc": v / 2, "timestamp": t})
            rows = [{**r, "time_this_iter_s": 1.0, "label_precision": 0.5} for r in rows]
            store.write_table(store.path(layout.part_file(layout.EPOCHS, searcher, seed, f"t{k}")), epoch_table(rows))
    epochs, trials = read_epochs(store), build_trials(store)
    for full in (None, 3):
        curve = best_so_far(epochs, full_epochs=full).groupby(["searcher", "seed"]).tail(1)
        want = summary_rows(trials, full).set_index(["searcher", "seed"])["best_val_acc"]
        got = curve.set_index(["searcher", "seed"])["best_val_acc"]
        pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False)
