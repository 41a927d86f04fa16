"""The results schema: what one epoch reports, what ``trials.parquet`` and ``summary.parquet`` hold,
and the one rule that picks a search's best trial (README, "Results" and "Architecture").

The Trainer emits exactly :data:`EPOCH_METRICS` every epoch (a test holds it to that); the Parquet
logger, the W&B logger, the tables, the report and the benchmarks read the names from here.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

OBJECTIVE, MODE = "val_acc", "max"  # what every searcher optimises; test_acc is never shown to one

METRIC_COLUMNS = (
    "kept_ratio",
    "label_precision",
    "label_precision_net1",
    "label_precision_net2",
    "train_loss",
    "val_acc",
    "val_loss",
    "test_acc",
    "test_acc_net1",
    "test_acc_net2",
    "epoch_time_s",
)
EPOCH_METRICS = ("epoch", *METRIC_COLUMNS, "diverged")  # exactly the keys of Trainer.train_epoch()

EPOCH_SCHEMA_FIXED = [  # the columns of every epochs/ part file, before its config.* columns
    ("trial_id", pa.string()),
    ("epoch", pa.int64()),
    *[(m, pa.float64()) for m in METRIC_COLUMNS],
    ("diverged", pa.bool_()),
    ("time_this_iter_s", pa.float64()),
    ("timestamp", pa.timestamp("s", tz="UTC")),
    ("node_id", pa.string()),  # the Ray node the epoch ran on
]
CONFIG_PREFIX = "config."  # config.<key> columns: the trial's flattened, decoded config

TRIAL_COLUMNS = [
    "searcher",
    "seed",
    "trial_id",
    "status",
    "epochs_run",
    "final_val_acc",
    "best_val_acc",
    "test_acc_at_final",
    "mean_label_precision",
    "cumulative_epochs_at_end",
    "wall_time_s",
    "started_at",
    "finished_at",
]

SUMMARY_COLUMNS = [
    "searcher",
    "seed",
    "best_val_acc",
    "test_acc",
    "label_precision",
    "trials",
    "epochs_used",
    "train_time_s",
    "best_trial",
]

SEARCH_KEY = ["searcher", "seed"]


def best_trials(trials: pd.DataFrame, full_epochs: int | None = None) -> pd.DataFrame:
    """The best trial of each (searcher, seed) search: the highest ``final_val_acc`` (the objective
    at a trial's last epoch) among the trials that ran ``full_epochs`` epochs when the search has
    any, else among all its trials; NaN objectives (diverged) never win.  One row per search that
    has a candidate, with the columns of ``trials``."""
    if trials is None or trials.empty:
        return trials
    rows = []
    for _, g in trials.groupby(SEARCH_KEY, sort=True):
        pool = g
        if full_epochs is not None:
            full = g[g["epochs_run"] >= full_epochs]
            pool = full if not full.empty else g
        pool = pool[pool["final_val_acc"].notna()]
        if not pool.empty:
            rows.append(pool.loc[pool["final_val_acc"].idxmax()])
    return pd.DataFrame(rows).reset_index(drop=True) if rows else trials.iloc[0:0]


def summary_rows(trials: pd.DataFrame, full_epochs: int | None = None) -> pd.DataFrame:
    """Searcher x seed (:data:`SUMMARY_COLUMNS`): the best trial's ``val_acc`` (:func:`best_trials`),
    its clean test accuracy, mean label precision and id, with the trials run, epochs used and
    training time summed over the search's trials.  Rows sorted by searcher name and seed."""
    if trials is None or trials.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    g = trials.groupby(SEARCH_KEY, sort=True)
    out = pd.DataFrame(
        {"trials": g.size(), "epochs_used": g["epochs_run"].sum(), "train_time_s": g["wall_time_s"].sum()}
    )
    best = best_trials(trials, full_epochs)
    best = best.set_index(SEARCH_KEY) if not best.empty else pd.DataFrame(index=out.index[:0])
    out["best_val_acc"] = best.get("final_val_acc")
    out["test_acc"] = best.get("test_acc_at_final")
    out["label_precision"] = best.get("mean_label_precision")
    out["best_trial"] = best.get("trial_id")
    out = out.reset_index()
    out["seed"] = out["seed"].astype(int)
    return out[SUMMARY_COLUMNS]
