"""Run one comparison: every (seed, searcher) pair as its own Tune experiment.

Layout under ``<storage>/<name>/``: ``manifest.json``; one Tune experiment
directory per ``<searcher>-seed<seed>`` (trials, checkpoints, searcher state);
the Parquet results of ``results.parquet_log``; ``trials.parquet`` and
``summary.parquet``; ``searches/<searcher>-seed<seed>.done`` once a search has
finished, so ``--resume`` restores unfinished searches with ``Tuner.restore``
and skips finished ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pickle
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import ray
from ray import tune

from noisylabels.data import prepare
from noisylabels.errors import UserError
from noisylabels.spaces import get_space
from results.history import write_s2e_history_from_state
from results.manifest import write_manifest
from results.parquet_log import ParquetLogger
from results.store import Store
from results.tables import write_trials
from results.wandb_log import check_wandb_mode, log_summary_run, wandb_callback
from s2e_tune.config import ExperimentConfig
from s2e_tune.report import build_report
from s2e_tune.search_algs import METRIC, MODE, build_search


class LineProgress(tune.Callback):
    """One line per finished trial: ``[s2e seed 0] trial 3/16 ... val_acc=0.412``."""

    def __init__(self, label: str, total: int, stream=None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stdout
        self.epochs = 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.epochs += 1

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        r = trial.last_result or {}
        print(
            f"[{self.label}] trial {self.done}/{self.total} {trial.trial_id}: "
            f"epochs={r.get('epoch', 0)} val_acc={r.get('val_acc', math.nan):.4f} "
            f"label_precision={r.get('label_precision', math.nan):.3f} (search epochs {self.epochs})",
            file=self.stream,
            flush=True,
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[{self.label}] trial {trial.trial_id} failed: see {trial.path}", file=self.stream, flush=True)


def check_storage(cfg: ExperimentConfig) -> None:
    """Write and delete a probe file under ``--storage`` (a directory or s3://...) before anything runs."""
    try:
        if "://" not in cfg.storage:
            Path(cfg.storage).resolve().mkdir(parents=True, exist_ok=True)
        store = Store.from_uri(cfg.storage)
        probe = store.path(f".write-test-{os.getpid()}")
        store.write_bytes(probe, b"ok")
        store.fs.delete_file(probe)
    except (OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"storage {cfg.storage} is not writable ({reason}); pass --storage DIR or s3://bucket/prefix you can write"
        ) from None


def check_address(address: str) -> None:
    """Fail fast on a cluster address nothing listens at (``ray.init`` would retry for minutes)."""
    if address == "auto":
        if os.environ.get("RAY_ADDRESS") or Path(tempfile.gettempdir(), "ray", "ray_current_cluster").exists():
            return
        raise UserError("--address auto found no running Ray cluster on this machine; start one with `ray start "
                        "--head` or pass --address HOST:PORT")
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address} is not HOST:PORT, ray://HOST:PORT or auto; fix --address")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot join Ray cluster at {address} ({exc.strerror or exc}); start it or fix --address"
        ) from None


def init_ray(cfg: ExperimentConfig) -> None:
    """Join ``--address`` or start a local Ray; check ``--gpus`` against what is really there."""
    if cfg.address:
        check_address(cfg.address)
        try:
            ray.init(address=cfg.address, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's address
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise UserError(f"cannot join Ray cluster at {cfg.address} ({first}); start it or fix --address") from None
        have = ray.cluster_resources().get("GPU", 0)
        if cfg.gpus > have:
            ray.shutdown()
            raise UserError(f"--gpus {cfg.gpus:g} but the cluster at {cfg.address} has {have:g} GPUs; lower --gpus")
        return
    if cfg.gpus > 0:
        import torch

        have = torch.cuda.device_count()
        if cfg.gpus > have:
            raise UserError(f"--gpus {cfg.gpus:g} but this machine has {have} CUDA GPUs; lower --gpus or use --address")
    ray.init(
        address="local",  # always a new local instance, never another run's cluster left on this machine
        num_cpus=os.cpu_count(),
        num_gpus=int(math.ceil(cfg.gpus)),
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )


def resolve_k(cfg: ExperimentConfig, store: Store) -> ExperimentConfig:
    """S2E's K when ``--samples-per-round`` is not given: one trial per parallel trial slot of
    the Ray cluster, so a round (Algorithm 2, steps 3-6) runs as one wave and no slot idles while
    the round waits for its last trial; at least 2 (S2E ranks a round's samples) and at most half
    the trials (at least two rounds, i.e. one update of p_theta that the budget still uses).
    A resumed run keeps the K it started with (``manifest.json``)."""
    if cfg.samples_per_round is not None:
        return cfg
    path = store.path("manifest.json")
    if cfg.resume and store.exists(path):
        old = (json.loads(store.read_bytes(path)).get("config") or {}).get("samples_per_round")
        if isinstance(old, int) and old >= 2:
            return dataclasses.replace(cfg, samples_per_round=old)
    res = ray.cluster_resources()
    slots = res.get("CPU", 1.0) / cfg.cpus_per_trial
    if cfg.trial_gpus > 0:
        slots = min(slots, min(cfg.gpus, res.get("GPU", 0.0)) / cfg.trial_gpus)
    k = max(2, min(int(slots + 1e-9), cfg.trials // 2))
    return dataclasses.replace(cfg, samples_per_round=k)


def trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def local_dir(store: Store) -> str:
    """A local directory for files that tools need on local disk (W&B offline runs)."""
    if store.is_local:
        return store.root
    return str(Path(tempfile.gettempdir()) / "s2e-tune" / store.root.replace("/", "_"))


def wandb_tags(cfg: ExperimentConfig, searcher: str | None = None) -> list[str]:
    tags = [cfg.dataset, f"{cfg.noise}{round(cfg.noise_rate * 100)}", cfg.method]
    return tags + ([searcher] if searcher else [])


def newest_searcher_state(store: Store, label: str) -> dict[str, Any] | None:
    """The searcher state Tune saved last in the experiment ``label`` (fresh or resumed search)."""
    files = store.list_files(store.path(label), suffix=".pkl")
    files = [f for f in files if f.rsplit("/", 1)[-1].startswith("searcher-state-")]
    if not files:
        return None
    newest = max(files, key=lambda f: store.fs.get_file_info(f).mtime)
    return pickle.loads(store.read_bytes(newest))


@contextlib.contextmanager
def pending_trials(n: int | None):
    """Set ``TUNE_MAX_PENDING_TRIALS_PG`` to ``n`` for one fit, unless the user has set it."""
    key = "TUNE_MAX_PENDING_TRIALS_PG"
    if n is None or key in os.environ:
        yield
        return
    os.environ[key] = str(n)
    try:
        yield
    finally:
        os.environ.pop(key, None)


def run_search(cfg: ExperimentConfig, store: Store, searcher: str, seed: int, data) -> None:
    """One Tune experiment: ``searcher`` on the data of ``seed``; skipped if already finished."""
    from trainables.trainable import NoisyLabelTrainable

    label = f"{searcher}-seed{seed}"
    done = store.path("searches", f"{label}.done")
    if store.exists(done):
        if not cfg.quiet:
            print(f"[{searcher} seed {seed}] already finished, skipped", flush=True)
        return
    trainable = tune.with_resources(
        tune.with_parameters(NoisyLabelTrainable, data=data),
        {"cpu": cfg.cpus_per_trial, "gpu": cfg.trial_gpus},
    )
    plan = build_search(searcher, cfg, seed)
    total = plan.num_samples if plan.stopper is None else cfg.trials
    callbacks: list[tune.Callback] = [ParquetLogger(store, searcher, seed)]
    wandb_cb = wandb_callback(
        cfg.wandb_mode,
        store.root.rsplit("/", 1)[-1],
        searcher,
        seed,
        tags=wandb_tags(cfg, searcher),
        local_dir=local_dir(store),
    )
    if wandb_cb is not None:
        callbacks.append(wandb_cb)
    if not cfg.quiet:
        callbacks.append(LineProgress(f"{searcher} seed {seed}", total))
    fs = None if store.is_local else store.fs
    run_config = tune.RunConfig(
        name=label,
        storage_path=store.root,
        storage_filesystem=fs,
        stop=plan.stopper,
        callbacks=callbacks,
        verbose=0,
        failure_config=tune.FailureConfig(max_failures=2),
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2),
        # keep the experiment snapshot on remote storage fresh: it is what --resume restores
        sync_config=tune.SyncConfig(sync_period=5),
    )
    tune_path = store.path(label)
    if cfg.resume and tune.Tuner.can_restore(tune_path, storage_filesystem=fs):
        tuner = tune.Tuner.restore(tune_path, trainable, resume_errored=True, storage_filesystem=fs)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=plan.param_space,
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode=MODE,
                search_alg=plan.search_alg,
                scheduler=plan.scheduler,
                num_samples=plan.num_samples,
                reuse_actors=True,  # no process start-up per trial (NoisyLabelTrainable.reset_config)
                trial_dirname_creator=trial_dirname,
            ),
            run_config=run_config,
        )
    # Tune keeps one pending trial at a time for searchers other than random sampling; S2E
    # proposes a round of K independent samples, so let all K start at once (on every node)
    with pending_trials(cfg.samples_per_round if searcher == "s2e" else None):
        tuner.fit()
    if searcher == "s2e":  # how p_theta moved, for schedules.png
        state = newest_searcher_state(store, label)
        if state is not None:
            write_s2e_history_from_state(store, seed, state, fixed=get_space(cfg.space).fixed)
    store.write_bytes(done, b"done\n")


def summary_rows(trials: pd.DataFrame, epochs_per_trial: int) -> pd.DataFrame:
    """Searcher x seed -> best val_acc (among full-length trials when there are any), its test
    accuracy and mean label precision, trials, epochs used and summed training time."""
    rows = []
    for (searcher, seed), g in trials.groupby(["searcher", "seed"], sort=False):
        full = g[g["epochs_run"] >= epochs_per_trial]
        pool = full if not full.empty else g
        pool = pool[pool["final_val_acc"].notna()]
        best = pool.loc[pool["final_val_acc"].idxmax()] if not pool.empty else None
        rows.append(
            {
                "searcher": searcher,
                "seed": int(seed),
                "best_val_acc": float(best["final_val_acc"]) if best is not None else math.nan,
                "test_acc": float(best["test_acc_at_final"]) if best is not None else math.nan,
                "label_precision": float(best["mean_label_precision"]) if best is not None else math.nan,
                "trials": len(g),
                "epochs_used": int(g["epochs_run"].sum()),
                "train_time_s": float(g["wall_time_s"].sum()),
                "best_trial": best["trial_id"] if best is not None else None,
            }
        )
    return pd.DataFrame(rows)


def format_table(summary: pd.DataFrame) -> str:
    head = (
        f"{'searcher':<10} {'seed':>4} {'best val_acc':>12} {'test_acc':>9} {'label prec':>10} "
        f"{'trials':>6} {'epochs':>7} {'train s':>8}"
    )
    rows = [head, "-" * len(head)]
    for o in summary.itertuples():
        rows.append(
            f"{o.searcher:<10} {o.seed:>4} {o.best_val_acc:>12.4f} {o.test_acc:>9.4f} {o.label_precision:>10.3f} "
            f"{o.trials:>6} {o.epochs_used:>7} {o.train_time_s:>8.1f}"
        )
    return "\n".join(rows)


def device_info(cfg: ExperimentConfig) -> dict[str, Any]:
    info: dict[str, Any] = {"gpus": cfg.gpus, "gpus_per_trial": cfg.trial_gpus, "cpus_per_trial": cfg.cpus_per_trial}
    if ray.is_initialized():
        info["cluster_resources"] = {k: v for k, v in ray.cluster_resources().items() if "node:" not in k}
    if cfg.gpus > 0 and not cfg.address:
        import torch

        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def experiment_name(cfg: ExperimentConfig) -> str:
    return cfg.name or time.strftime("%Y%m%d-%H%M%S") + f"-{cfg.dataset}-{cfg.noise}{round(cfg.noise_rate * 100)}"


def run_experiment(cfg: ExperimentConfig) -> pd.DataFrame:
    """Validate, start Ray, run every (seed, searcher) search; write and print the summary."""
    cfg.validate()
    check_wandb_mode(cfg.wandb_mode)
    check_storage(cfg)
    name = experiment_name(cfg)
    store = Store.from_uri(f"{cfg.storage.rstrip('/')}/{name}")
    if cfg.resume and not store.exists(store.path("manifest.json")):
        raise UserError(f"nothing to resume at {cfg.storage.rstrip('/')}/{name}; check --name and --storage")
    datasets = {seed: prepare(cfg.data_spec(seed)) for seed in cfg.seeds}  # bad data stops before Ray
    # Tune's own console tables are replaced by LineProgress (one line per finished trial)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    init_ray(cfg)
    try:
        cfg = resolve_k(cfg, store)
        if "s2e" in cfg.searchers and not cfg.quiet:
            print(f"S2E: K = {cfg.samples_per_round} trials per round (--samples-per-round)", flush=True)
        data_info = {str(s): d.info for s, d in datasets.items()}
        write_manifest(store, cfg.to_dict(), device_info(cfg), name=name, data=data_info)
        for seed in cfg.seeds:
            for searcher in cfg.searchers:
                run_search(cfg, store, searcher, seed, datasets[seed])
    finally:
        ray.shutdown()
    trials = write_trials(store)
    summary = summary_rows(trials, cfg.epochs)
    order = {name: i for i, name in enumerate(cfg.searchers)}  # the order the user asked for
    summary = summary.sort_values(["seed", "searcher"], key=lambda c: c.map(order) if c.name == "searcher" else c)
    store.write_table(store.path("summary.parquet"), pa.Table.from_pandas(summary, preserve_index=False))
    if not cfg.quiet:
        print()
    print(format_table(summary))
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
