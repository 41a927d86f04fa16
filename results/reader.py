"""Read an experiment's results back: ``results.load(DIR)`` (local directory or ``s3://`` URI).

What a data scientist gets without knowing the tree's layout (README, "Results"):

* :func:`load` -> :class:`Results`: the per-epoch and per-trial DataFrames, each with ``searcher``
  and ``seed`` columns, plus the manifest and the stored summary table;
* :func:`epochs_dataset`: the Hive-partitioned ``epochs/`` tree as one ``pyarrow.dataset``, the
  form DuckDB, Polars or pyarrow scan directly, on local and S3 storage alike.

Column dtypes (pandas), fixed here and tested:

========================  =====================================================================
``searcher``, ``trial_id``  strings (pandas 3: ``str``; pandas 2: ``object``)
``seed``, ``epoch``         ``int64``
metrics                     ``float64`` (:data:`results.schema.METRIC_COLUMNS`; NaN where a
                            method has no second network, or a network selected nothing)
``diverged``                ``bool``
``timestamp``               ``datetime64[*, UTC]`` (when the epoch's result arrived)
``config.<key>``            as the trial's config held them (decoded: ``p``, never ``p__log10``)
========================  =====================================================================

Trials (:data:`results.schema.TRIAL_COLUMNS`): one row per trial, derived from the epoch rows and
the trials' end-status rows (``status`` is ``RUNNING`` for a trial that has not ended).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from noisylabels.errors import UserError
from results import layout
from results.manifest import read_manifest
from results.store import Store
from results.tables import build_trials, read_epochs


@dataclass
class Results:
    """One experiment's results: what :func:`load` returns."""

    epochs: pd.DataFrame  # one row per (searcher, seed, trial_id, epoch), sorted by them
    trials: pd.DataFrame  # one row per trial (results.schema.TRIAL_COLUMNS + config.*)
    manifest: dict[str, Any] | None  # manifest.json: config, versions, commit, host, data
    summary: pd.DataFrame | None  # summary.parquet (the best trial per search), when written
    where: str  # the directory or URI it was read from

    @property
    def searchers(self) -> list[str]:
        return sorted(self.epochs["searcher"].unique())

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.epochs["seed"].unique())


def open_store(where: Store | str | os.PathLike) -> tuple[Store, str]:
    """``(Store, uri)`` for a results directory or ``s3://`` URI; a :class:`UserError` naming it
    when it cannot be opened (bad scheme, unreachable bucket)."""
    if isinstance(where, Store):
        return where, where.root
    uri = str(where)
    try:
        return Store.from_uri(uri), uri
    except Exception as exc:  # noqa: BLE001 - bad scheme, unreachable bucket, ...
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot open results at {uri} ({first})") from None


def read_results(store: Store, where: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any] | None]:
    """Epoch rows, trial rows and manifest; a one-line :class:`UserError` when there are none."""
    try:
        if not store.exists(store.root):
            raise UserError(f"no results directory at {where}; pass the <storage>/<name> directory of a run")
        epochs = read_epochs(store)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable files, permissions, network
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot read results at {where} ({first})") from None
    if epochs.empty:
        raise UserError(
            f"no Parquet results under {where}/{layout.EPOCHS}/; pass the <storage>/<name> directory of a "
            "python -m s2e_tune.run experiment"
        )
    return epochs, build_trials(store), read_manifest(store)


def load(where: Store | str | os.PathLike) -> Results:
    """The results of the experiment at ``where`` (``<storage>/<name>``, local or ``s3://``)."""
    store, uri = open_store(where)
    epochs, trials, manifest = read_results(store, uri)
    summary_path = store.path(layout.SUMMARY_TABLE)
    summary = store.read_table(summary_path).to_pandas() if store.exists(summary_path) else None
    return Results(epochs=epochs, trials=trials, manifest=manifest, summary=summary, where=uri)


def epochs_dataset(where: Store | str | os.PathLike) -> pads.Dataset:
    """The ``epochs/`` tree as one Hive-partitioned ``pyarrow.dataset`` (``searcher`` string, ``seed``
    int64 partition columns).  Its schema is the union of every part file's, so a searcher whose
    trials carry other ``config.*`` keys (``default``: Co-teaching's own schedule) keeps them."""
    store, uri = open_store(where)
    files = store.list_files(store.path(layout.EPOCHS))
    if not files:
        raise UserError(f"no Parquet results under {uri}/{layout.EPOCHS}/; pass the <storage>/<name> directory")
    fmt = pads.ParquetFileFormat()
    schema = pa.unify_schemas([fmt.inspect(f, filesystem=store.fs) for f in files], promote_options="permissive")
    partitioning = pads.partitioning(pa.schema([("searcher", pa.string()), ("seed", pa.int64())]), flavor="hive")
    for name, typ in (("searcher", pa.string()), ("seed", pa.int64())):
        schema = schema.append(pa.field(name, typ))
    return pads.dataset(
        files,
        schema=schema,
        format=fmt,
        filesystem=store.fs,
        partitioning=partitioning,
        partition_base_dir=store.path(layout.EPOCHS),
    )
