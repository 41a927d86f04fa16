"""Run one comparison: every (seed, searcher) pair as its own Tune experiment (``search_run``).

Layout under ``<storage>/<name>/``: ``results.layout``.  Finished searches leave a done marker,
so ``--resume`` restores unfinished searches with ``Tuner.restore`` and skips finished ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

import pandas as pd
import pyarrow as pa
import ray
from ray import tune

from noisylabels.data import prepare
from noisylabels.errors import UserError
from results import layout
from results.lock import ExperimentLock
from results.manifest import read_manifest, write_manifest
from results.schema import summary_rows
from results.store import Store
from results.summary import format_seed_table
from results.tables import write_trials
from results.wandb_log import check_wandb_mode, log_summary_run
from s2e_tune.config import ExperimentConfig
from s2e_tune.identity import check_fresh, manifest_config, resumed_config
from s2e_tune.preflight import check_storage, device_info, init_ray, resolve_k
from s2e_tune.report import build_report
from s2e_tune.search_run import local_dir, run_search, wandb_tags
from trainables.trainable import NoisyLabelTrainable


def experiment_name(cfg: ExperimentConfig) -> str:
    return cfg.name or time.strftime("%Y%m%d-%H%M%S") + f"-{cfg.dataset}-{cfg.noise}{round(cfg.noise_rate * 100)}"


def run_experiment(
    cfg: ExperimentConfig,
    trainable: type[tune.Trainable] = NoisyLabelTrainable,
    given: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Validate, start Ray, run every (seed, searcher) search of ``trainable``; write and print
    the summary (searcher x seed, :data:`results.schema.SUMMARY_COLUMNS`) and return it.

    ``given``: the config keys the user set (the run command passes its flags, file and preset);
    ``None`` = all of them.  An existing experiment needs ``--resume``, which continues it with its
    stored identity (``s2e_tune.identity``); the run holds the experiment's lock (``results.lock``)
    from before anything is written until the end."""
    cfg.validate()
    check_wandb_mode(cfg.wandb_mode)
    check_storage(cfg)
    name = experiment_name(cfg)
    where = f"{cfg.storage.rstrip('/')}/{name}"
    store = Store.from_uri(where)
    exists = store.exists(store.path(layout.MANIFEST))
    if cfg.resume and not exists:
        raise UserError(f"nothing to resume at {where}; check --name and --storage")
    check_fresh(exists, where, cfg.resume)
    stored = None
    if exists:
        stored = (read_manifest(store) or {}).get("config")
        if not isinstance(stored, dict):
            raise UserError(f"cannot read the config in {where}/{layout.MANIFEST}; repair it or use another --name")
        cfg = resumed_config(cfg, stored, given, where)
        cfg.validate()
    with ExperimentLock(store, where):
        return _run(cfg, trainable, store, name, stored)


def _run(cfg: ExperimentConfig, trainable, store: Store, name: str, stored: dict | None) -> pd.DataFrame:
    datasets = {seed: prepare(cfg.data_spec(seed)) for seed in cfg.seeds}  # bad data stops before Ray
    # Tune's own console tables are replaced by LineProgress (one line per finished trial)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    init_ray(cfg)
    try:
        cfg = resolve_k(cfg, store)
        if "s2e" in cfg.searchers and not cfg.quiet:
            print(f"S2E: K = {cfg.samples_per_round} trials per round (--samples-per-round)", flush=True)
        data_info = {str(s): d.info for s, d in datasets.items()}
        config = cfg.to_dict() if stored is None else manifest_config(stored, cfg)
        write_manifest(store, config, device_info(cfg), name=name, data=data_info)
        for seed in cfg.seeds:
            for searcher in cfg.searchers:
                run_search(cfg, store, searcher, seed, datasets[seed], trainable)
    finally:
        ray.shutdown()
    trials = write_trials(store)
    summary = summary_rows(trials, cfg.epochs)
    order = {name: i for i, name in enumerate(cfg.searchers)}  # the order the user asked for
    summary = summary.sort_values(["seed", "searcher"], key=lambda c: c.map(order) if c.name == "searcher" else c)
    summary = summary.reset_index(drop=True)
    store.write_table(store.path(layout.SUMMARY_TABLE), pa.Table.from_pandas(summary, preserve_index=False))
    if not cfg.quiet:
        print()
    print(format_seed_table(summary))
    labels = "clean (the seed paper's setting)" if cfg.val_labels == "clean" else "noisy (no clean label used)"
    print(f"objective: val_acc on {labels} validation labels, last epoch; test_acc is reported, never searched on")
    report = build_report(store)
    log_summary_run(
        cfg.wandb_mode,
        name,
        report.summary,
        report.images,
        tags=wandb_tags(cfg),
        local_dir=local_dir(store),
        config=cfg.to_dict(),
    )
    where = f"{cfg.storage.rstrip('/')}/{name}" if "://" in cfg.storage else store.root
    print(f"\nresults: {where} (plots/, trials.parquet, epochs/, manifest.json)")
    if cfg.wandb_mode == "offline":
        print(f"W&B offline runs: wandb sync {local_dir(store)}/wandb/offline-run-*")
    return summary
