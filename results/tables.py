"""Read the Parquet results back and derive ``trials.parquet`` from them (pandas, no Ray, no torch).

Paths: :mod:`results.layout`; columns: :mod:`results.schema`."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from results import layout
from results.schema import CONFIG_PREFIX, SEARCH_KEY, TRIAL_COLUMNS
from results.store import Store


def _read_partitioned(store: Store, kind: str) -> pd.DataFrame:
    """Concatenate the part files of ``kind`` (``layout.EPOCHS`` or ``layout.TRIALS``) with the
    searcher and seed of their partition as columns."""
    tables = []
    for path in store.list_files(store.path(kind)):
        parts = layout.partition_values(path)
        t = store.read_table(path)
        t = t.append_column("searcher", pa.array([parts["searcher"]] * t.num_rows, pa.string()))
        t = t.append_column("seed", pa.array([int(parts["seed"])] * t.num_rows, pa.int64()))
        tables.append(t)
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables(tables, promote_options="default").to_pandas()


def read_epochs(store: Store) -> pd.DataFrame:
    """One row per (searcher, seed, trial, epoch), sorted."""
    df = _read_partitioned(store, layout.EPOCHS)
    if df.empty:
        return df
    front = [*SEARCH_KEY, "trial_id", "epoch"]
    df = df[front + [c for c in df.columns if c not in front]]
    return df.sort_values(front, kind="stable").reset_index(drop=True)


def build_trials(store: Store) -> pd.DataFrame:
    """One row per trial, derived from the epoch rows and the trials' end-status rows."""
    epochs = read_epochs(store)
    if epochs.empty:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    status = _read_partitioned(store, layout.TRIALS)
    key = [*SEARCH_KEY, "trial_id"]
    g = epochs.groupby(key, sort=True)
    last = g.tail(1).set_index(key)
    out = pd.DataFrame(
        {
            "epochs_run": g.size(),
            "final_val_acc": last["val_acc"],
            "best_val_acc": g["val_acc"].max(),
            "test_acc_at_final": last["test_acc"],
            "mean_label_precision": g["label_precision"].mean(),
            "wall_time_s": g["time_this_iter_s"].sum(),
            "started_at": (epochs["timestamp"] - pd.to_timedelta(epochs["time_this_iter_s"], unit="s"))
            .groupby([epochs[k] for k in key])
            .min(),
        }
    )
    if not status.empty:
        out = out.join(status.set_index(key)[["status", "cumulative_epochs_at_end", "finished_at"]])
    else:
        out["status"], out["cumulative_epochs_at_end"], out["finished_at"] = "RUNNING", pd.NA, pd.NaT
    out["status"] = out["status"].fillna("RUNNING")
    config_cols = [c for c in epochs.columns if c.startswith(CONFIG_PREFIX)]
    out = out.join(last[config_cols]).reset_index()
    return out[TRIAL_COLUMNS + config_cols]


def write_trials(store: Store) -> pd.DataFrame:
    """:func:`build_trials`, written to ``layout.TRIALS_TABLE``."""
    trials = build_trials(store)
    store.write_table(store.path(layout.TRIALS_TABLE), pa.Table.from_pandas(trials, preserve_index=False))
    return trials
