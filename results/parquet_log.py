"""A Tune callback writing one Parquet row per (trial, epoch) and one status row per trial.

Where the rows go is :mod:`results.layout` (``epochs/`` and ``trials/``, Hive-partitioned by
searcher and seed so that repeated comparisons never share a file); their columns are
:mod:`results.schema` (README, "Results").

Each part file is rewritten whole (atomically) after every epoch of its trial,
keyed by epoch, and re-read when a resumed driver meets the trial again: after a
crash and ``--resume`` every (trial, epoch) row exists exactly once.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pyarrow as pa
from ray import tune

from noisylabels.spaces import decode_config
from results import layout
from results.schema import CONFIG_PREFIX, EPOCH_SCHEMA_FIXED, METRIC_COLUMNS, OBJECTIVE
from results.store import Store


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config.<key>`` columns for every scalar config value (None and nested values dropped);
    log10-encoded keys of searchers such as BO are decoded, so every searcher has the same columns."""
    out = {}
    for k, v in decode_config(config).items():
        if isinstance(v, bool | int | float | str):
            out[f"{CONFIG_PREFIX}{k}"] = v
    return out


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def epoch_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The rows of one trial as an ``epochs/`` part: :data:`~results.schema.EPOCH_SCHEMA_FIXED`,
    then its ``config.*`` columns sorted by name."""
    fixed = {name: pa.array([r.get(name) for r in rows], type=t) for name, t in EPOCH_SCHEMA_FIXED}
    config_keys = sorted({k for r in rows for k in r if k.startswith(CONFIG_PREFIX)})
    cols = dict(fixed)
    for k in config_keys:
        cols[k] = pa.array([r.get(k) for r in rows])
    return pa.table(cols)


def end_status(status: str, epochs_run: int, planned: Any, diverged: bool) -> str:
    """A trial's status in ``trials/``: Tune's, with ``STOPPED_EARLY`` for a TERMINATED trial that
    ran fewer than its planned epochs and ``DIVERGED`` for one whose training diverged."""
    if status == "TERMINATED" and planned is not None and epochs_run < int(planned):
        status = "STOPPED_EARLY"
    return "DIVERGED" if diverged else status


def status_table(trial_ids: list[str], statuses: list[str], used: list[int], finished_at: list[int]) -> pa.Table:
    """End-status rows as a ``trials/`` part: id, status, the search's epochs consumed when the
    trial ended, and when (Unix seconds)."""
    return pa.table(
        {
            "trial_id": pa.array(trial_ids, pa.string()),
            "status": pa.array(statuses, pa.string()),
            "cumulative_epochs_at_end": pa.array(used, type=pa.int64()),
            "finished_at": pa.array(finished_at, type=pa.timestamp("s", tz="UTC")),
        }
    )


def stored_epochs(store: Store, searcher: str, seed: int) -> int:
    """The epoch rows one search has on disk: the epochs it has consumed (non-zero after --resume)."""
    parts = store.list_files(store.path(layout.partition(layout.EPOCHS, searcher, seed)))
    return sum(store.read_table(p).num_rows for p in parts)


def stored_finals(store: Store, searcher: str, seed: int) -> list[tuple[int, float]]:
    """``(epochs_run, val_acc at the last epoch)`` of each trial one search has on disk and that has
    ended (it has a ``trials/`` status row): what the run command's progress line takes up after
    ``--resume``."""
    ended = set()
    for path in store.list_files(store.path(layout.partition(layout.TRIALS, searcher, seed))):
        ended |= set(store.read_table(path).column("trial_id").to_pylist())
    out = []
    for path in store.list_files(store.path(layout.partition(layout.EPOCHS, searcher, seed))):
        t = store.read_table(path).to_pandas()
        if not t.empty and t["trial_id"].iloc[0] in ended:
            last = t.sort_values("epoch").iloc[-1]
            out.append((int(last["epoch"]), float(last[OBJECTIVE])))
    return out


class ParquetLogger(tune.Callback):
    """Write every epoch of every trial of one (searcher, seed) search to Parquet."""

    def __init__(self, store: Store, searcher: str, seed: int) -> None:
        self.store, self.searcher, self.seed = store, searcher, seed
        self.rows: dict[str, dict[int, dict[str, Any]]] = {}
        # epochs already consumed by this search (non-zero after --resume)
        self.used = stored_epochs(store, searcher, seed)

    def _parts(self, kind: str) -> list[str]:
        return self.store.list_files(self.store.path(layout.partition(kind, self.searcher, self.seed)))

    def _part(self, kind: str, trial_id: str) -> str:
        return self.store.path(layout.part_file(kind, self.searcher, self.seed, trial_id))

    def _rows_of(self, trial_id: str) -> dict[int, dict[str, Any]]:
        if trial_id not in self.rows:
            path = self._part(layout.EPOCHS, trial_id)
            existing = self.store.read_table(path).to_pylist() if self.store.exists(path) else []
            self.rows[trial_id] = {int(r["epoch"]): r for r in existing}
        return self.rows[trial_id]

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" not in result:
            return
        rows = self._rows_of(trial.trial_id)
        epoch = int(result["epoch"])
        if epoch not in rows:
            self.used += 1
        rows[epoch] = {
            "trial_id": trial.trial_id,
            "epoch": epoch,
            **{m: _float(result.get(m)) for m in METRIC_COLUMNS},
            "diverged": bool(result.get("diverged", False)),
            "time_this_iter_s": _float(result.get("time_this_iter_s")),
            "timestamp": int(result.get("timestamp", time.time())),
            "node_id": str(result.get("node_id", "")),
            **flat_config(trial.config),
        }
        ordered = [rows[e] for e in sorted(rows)]
        self.store.write_table(self._part(layout.EPOCHS, trial.trial_id), epoch_table(ordered))

    def _finish(self, trial, status: str) -> None:
        rows = self._rows_of(trial.trial_id)
        status = end_status(status, len(rows), trial.config.get("epochs"), any(r["diverged"] for r in rows.values()))
        table = status_table([trial.trial_id], [status], [self.used], [int(time.time())])
        self.store.write_table(self._part(layout.TRIALS, trial.trial_id), table)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "ERROR")

    def on_experiment_end(self, trials, **info):
        """Drop part files of trials that Tune does not know (started after the last experiment
        snapshot of a driver that then died; the resumed search replaced them), and write the
        end-status row of trials that ended without a complete/error event."""
        known = {t.trial_id for t in trials}
        # trials ended by a search-wide stop (the epoch budget) get no complete event, nor do trials
        # restored by --resume that were paused when the budget ran out: every trial with epoch
        # rows on disk gets its end-status row
        for t in trials:
            has_rows = t.trial_id in self.rows or self.store.exists(self._part(layout.EPOCHS, t.trial_id))
            if has_rows and not self.store.exists(self._part(layout.TRIALS, t.trial_id)):
                self._finish(t, "ERROR" if t.status == "ERROR" else "TERMINATED")
        for kind in (layout.EPOCHS, layout.TRIALS):
            keep = {self._part(kind, t).rsplit("/", 1)[-1] for t in known}  # their part files' names
            for path in self._parts(kind):
                if path.rsplit("/", 1)[-1] not in keep:
                    self.store.fs.delete_file(path)
