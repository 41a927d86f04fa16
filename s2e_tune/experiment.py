"""Run one comparison: every (seed, searcher) pair as its own Tune experiment.

Layout under ``<storage>/<name>/``: one Tune experiment directory per
``<searcher>-seed<seed>`` (trial directories, checkpoints, searcher state), so
``--resume`` can restore each with ``Tuner.restore`` and skip finished ones.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from s2e_tune.config import ExperimentConfig
from s2e_tune.data import prepare
from s2e_tune.errors import UserError
from s2e_tune.search_algs import METRIC, MODE, build_search

DONE_MARKER = "search_done.json"


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
        line = (
            f"[{self.label}] trial {self.done}/{self.total} {trial.trial_id}: "
            f"epochs={r.get('epoch', 0)} val_acc={r.get('val_acc', float('nan')):.4f} "
            f"label_precision={r.get('label_precision', float('nan')):.3f} (search epochs {self.epochs})"
        )
        print(line, file=self.stream, flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[{self.label}] trial {trial.trial_id} failed: see {trial.path}", file=self.stream, flush=True)


@dataclass
class SearchOutcome:
    searcher: str
    seed: int
    best_val_acc: float
    test_acc: float
    label_precision: float
    trials: int
    epochs_used: int
    wall_time_s: float
    best_config: dict[str, Any]
    path: str


def storage_root(cfg: ExperimentConfig) -> str:
    return cfg.storage if "://" in cfg.storage else str(Path(cfg.storage).resolve())


def check_local_storage(cfg: ExperimentConfig) -> None:
    if "://" in cfg.storage:
        return
    root = Path(cfg.storage).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"storage {root} is not writable ({exc.strerror}); pass --storage DIR you can write") from None


def init_ray(cfg: ExperimentConfig) -> None:
    """Join ``--address`` or start a local Ray; check ``--gpus`` against what is really there."""
    if cfg.address:
        try:
            ray.init(address=cfg.address, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's address
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise UserError(f"cannot join Ray cluster at {cfg.address} ({first}); start it or fix --address") from None
        have = ray.cluster_resources().get("GPU", 0)
        if cfg.gpus > have:
            ray.shutdown()
            raise UserError(f"--gpus {cfg.gpus} but the cluster at {cfg.address} has {have:g} GPUs; lower --gpus")
        return
    if cfg.gpus > 0:
        import torch

        have = torch.cuda.device_count()
        if cfg.gpus > have:
            raise UserError(f"--gpus {cfg.gpus:g} but this machine has {have} CUDA GPUs; lower --gpus or use --address")
    ray.init(
        num_cpus=os.cpu_count(),
        num_gpus=int(math.ceil(cfg.gpus)),
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )


def run_search(cfg: ExperimentConfig, name: str, searcher: str, seed: int, data) -> SearchOutcome:
    from trainables.trainable import NoisyLabelTrainable

    label = f"{searcher}-seed{seed}"
    exp_path = f"{storage_root(cfg)}/{name}"
    trainable = tune.with_resources(
        tune.with_parameters(NoisyLabelTrainable, data=data),
        {"cpu": cfg.cpus_per_trial, "gpu": cfg.trial_gpus},
    )
    plan = build_search(searcher, cfg, seed)
    total = plan.num_samples if plan.stopper is None else cfg.trials
    callbacks = [] if cfg.quiet else [LineProgress(f"{searcher} seed {seed}", total)]
    t0 = time.time()
    tuner = tune.Tuner(
        trainable,
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=plan.search_alg,
            scheduler=plan.scheduler,
            num_samples=plan.num_samples,
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(
            name=label,
            storage_path=exp_path,
            stop=plan.stopper,
            callbacks=callbacks,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=1),
        ),
    )
    grid = tuner.fit()
    return summarise(grid, searcher, seed, time.time() - t0, f"{exp_path}/{label}")


def summarise(grid, searcher: str, seed: int, wall: float, path: str) -> SearchOutcome:
    frames = [r.metrics_dataframe for r in grid if r.metrics_dataframe is not None]
    epochs_used = int(sum(len(f) for f in frames))
    best = None
    for r in grid:
        m = r.metrics or {}
        v = m.get(METRIC)
        if v is not None and math.isfinite(v) and (best is None or v > best.metrics[METRIC]):
            best = r
    if best is None:
        return SearchOutcome(searcher, seed, math.nan, math.nan, math.nan, len(grid), epochs_used, wall, {}, path)
    hist = best.metrics_dataframe
    searched = {k: v for k, v in best.config.items() if not isinstance(v, dict)}
    return SearchOutcome(
        searcher=searcher,
        seed=seed,
        best_val_acc=float(best.metrics[METRIC]),
        test_acc=float(best.metrics["test_acc"]),
        label_precision=float(hist["label_precision"].mean()),
        trials=len(grid),
        epochs_used=epochs_used,
        wall_time_s=wall,
        best_config=searched,
        path=path,
    )


def format_table(outcomes: list[SearchOutcome]) -> str:
    head = (
        f"{'searcher':<10} {'seed':>4} {'best val_acc':>12} {'test_acc':>9} {'label prec':>10} "
        f"{'trials':>6} {'epochs':>7} {'wall s':>8}"
    )
    rows = [head, "-" * len(head)]
    for o in outcomes:
        rows.append(
            f"{o.searcher:<10} {o.seed:>4} {o.best_val_acc:>12.4f} {o.test_acc:>9.4f} {o.label_precision:>10.3f} "
            f"{o.trials:>6} {o.epochs_used:>7} {o.wall_time_s:>8.1f}"
        )
    return "\n".join(rows)


def run_experiment(cfg: ExperimentConfig) -> list[SearchOutcome]:
    """Validate, start Ray, run every (seed, searcher) search, return one outcome each."""
    cfg.validate()
    check_local_storage(cfg)
    name = cfg.name or time.strftime("%Y%m%d-%H%M%S") + f"-{cfg.dataset}-{cfg.noise}{round(cfg.noise_rate * 100)}"
    datasets = {seed: prepare(cfg.data_spec(seed)) for seed in cfg.seeds}  # bad data stops before Ray
    init_ray(cfg)
    outcomes = []
    try:
        for seed in cfg.seeds:
            for searcher in cfg.searchers:
                outcomes.append(run_search(cfg, name, searcher, seed, datasets[seed]))
    finally:
        ray.shutdown()
    if not cfg.quiet:
        print()
    print(format_table(outcomes))
    print(f"\nresults: {storage_root(cfg)}/{name}")
    return outcomes
