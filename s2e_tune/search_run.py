"""One search as one Ray Tune experiment: ``searcher`` on the data of one seed.

The searcher's plan comes from its registry entry (``searchers.registry``); this module turns it
into a ``tune.Tuner`` with the project's callbacks (Parquet, W&B, progress), checkpointing,
failure handling and storage, restores it on ``--resume``, and keeps what the entry asks to keep
after the fit (S2E: its p_theta per round).  Paths come from ``results.layout``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import pickle
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.execution.tune_controller import TuneController
from ray.tune.search import Searcher

from results import layout
from results.forget import forget_search
from results.history import write_history
from results.parquet_log import ParquetLogger, stored_epochs
from results.schema import MODE, OBJECTIVE
from results.store import Store
from results.wandb_log import wandb_callback
from s2e_tune.config import ExperimentConfig
from s2e_tune.progress import LineProgress
from s2e_tune.tune_log import stale_checkpoint_notes
from searchers import registry
from trainables.trainable import NoisyLabelTrainable


class EpochBudgetStopper(tune.Stopper):
    """Stop the whole search once the trials together have run ``budget`` epochs.

    Tune pickles the stopper with the experiment and restores that copy on ``--resume``; the
    restored copy first counts the epochs the search already has on disk, so a resumed search
    gets what is left of its budget, not the whole budget again.  An epoch a trial trains again
    after a checkpoint fallback (``trainables.trainable``) is counted once, as in
    ``progress.LineProgress``."""

    def __init__(self, budget: int, store: Store, searcher: str, seed: int) -> None:
        self.budget = budget
        self.used = 0
        self.seen: set[tuple[str, Any]] = set()  # (trial, epoch) results counted in used
        self.search = (store, searcher, seed)
        self.restored = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("seen", set())  # a stopper pickled before epochs were deduplicated
        self.restored = True

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if self.restored:  # the first result after a restore: take up the count from the files
            self.used = max(self.used, stored_epochs(*self.search))
            self.restored = False
        key = (trial_id, result.get("epoch"))
        if key not in self.seen:  # one new result = one epoch
            self.seen.add(key)
            self.used += 1
        return False

    def stop_all(self) -> bool:
        return self.used >= self.budget


class NameUnstartedTrials(tune.Callback):
    """Give every trial a directory name before Tune builds its ``ResultGrid``.

    Tune names a trial's directory only when it schedules the trial's actor.  A search that stops
    on its epoch budget (``EpochBudgetStopper.stop_all``) can end with a trial its scheduler has
    just added and never scheduled (seen with Hyperband); ``tuner.fit()`` then fails after the
    search has finished, in ``ResultGrid``, with "Should not access `trial_fs_path` without setting
    `trial_dir_name`".  Naming those trials at the end of the experiment, as scheduling would have,
    lets the fit return; the trial keeps its PENDING status and has no results."""

    def on_experiment_end(self, trials, **info):
        for trial in trials:
            if not trial.storage.trial_dir_name:
                trial.init_local_path()


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


def newest_tune_file(store: Store, label: str, template: str) -> str | None:
    """The newest file of Tune's ``template`` (e.g. ``searcher-state-{}.pkl``) in the experiment
    ``label``, newest by name (``<session start>`` fills the braces), as Tune picks it
    on restore; ``None`` if there is none."""
    pattern = template.format("*")
    files = store.list_files(store.path(label), suffix="." + template.rsplit(".", 1)[-1])
    files = [f for f in files if fnmatch.fnmatch(f.rsplit("/", 1)[-1], pattern)]
    return max(files, key=lambda f: f.rsplit("/", 1)[-1]) if files else None


def newest_searcher_state(store: Store, label: str) -> dict[str, Any] | None:
    """The searcher state Tune saved last in the experiment ``label`` (fresh or resumed search).

    Newest by name, as Tune picks it (``searcher-state-<session start>.pkl``), not by mtime: a
    resumed driver uploads the restored session's files again with its own, and on S3 (mtimes in
    whole seconds) the older state could win the tie and lose the rounds run after the resume."""
    newest = newest_tune_file(store, label, Searcher.CKPT_FILE_TMPL)
    return pickle.loads(store.read_bytes(newest)) if newest is not None else None


def unreadable_tune_state(store: Store, label: str) -> str | None:
    """The path of the experiment state Tune would restore ``label`` from, if it is not JSON.

    Tune restores from its newest ``experiment_state-<session>.json`` (newest by name).  Tune
    writes that file in place in a staging directory while a background thread may still be
    copying the previous one to the storage path; a driver stopped at that moment (Ctrl+C
    raises out of the fit here, or a kill) can leave an empty or cut copy in storage, which
    Tune then fails to restore, logs, and goes on without its searcher's space.  ``None``
    when the state parses (or there is none)."""
    newest = newest_tune_file(store, label, TuneController.CKPT_FILE_TMPL)
    if newest is None:
        return None
    try:
        json.loads(store.read_bytes(newest))
    except ValueError:
        return newest
    return None


@contextlib.contextmanager
def tune_env(**values: str | None):
    """Set Tune's environment variables for one fit, leaving any the user has set (and ``None``s)."""
    mine = {k: v for k, v in values.items() if v is not None and k not in os.environ}
    os.environ.update(mine)
    try:
        yield
    finally:
        for k in mine:
            os.environ.pop(k, None)


def pending_trials(n: int | None):
    """``TUNE_MAX_PENDING_TRIALS_PG = n`` for one fit (S2E: a round's K trials start at once)."""
    return tune_env(TUNE_MAX_PENDING_TRIALS_PG=None if n is None else str(n))


def run_search(
    cfg: ExperimentConfig,
    store: Store,
    searcher: str,
    seed: int,
    data,
    trainable: type[tune.Trainable] = NoisyLabelTrainable,
    callbacks: Sequence[tune.Callback] = (),
) -> None:
    """One Tune experiment: ``searcher`` on the data of ``seed``; skipped if already finished.

    ``trainable``: the Trainable to run (``NoisyLabelTrainable`` or a subclass); ``callbacks``:
    Tune callbacks run beside the project's own.  Ctrl+C (SIGINT) raises ``KeyboardInterrupt``
    out of the fit instead of Tune's graceful stop, so an interrupted search is never marked
    done and ``--resume`` restores it."""
    label = layout.tune_experiment(searcher, seed)
    done = store.path(layout.done_marker(searcher, seed))
    if store.exists(done):
        if not cfg.quiet:
            print(f"[{searcher} seed {seed}] already finished, skipped", flush=True)
        return
    spec = registry.get(searcher)
    ctx = cfg.search_context(seed)
    plan = spec.plan(ctx)
    resources = {"cpu": cfg.cpus_per_trial, "gpu": cfg.trial_gpus}
    trainable = tune.with_resources(tune.with_parameters(trainable, data=data), resources)
    total = plan.num_samples if plan.epoch_budget is None else cfg.trials
    callbacks = [ParquetLogger(store, searcher, seed), NameUnstartedTrials(), *callbacks]
    experiment = store.root.rsplit("/", 1)[-1]
    wandb_cb = wandb_callback(
        cfg.wandb_mode, experiment, searcher, seed, tags=wandb_tags(cfg, searcher), local_dir=local_dir(store)
    )
    if wandb_cb is not None:
        callbacks.append(wandb_cb)
    if not cfg.quiet:
        search = (store, searcher, seed)
        callbacks.append(LineProgress(f"{searcher} seed {seed}", total, cfg.budget_epochs, cfg.epochs, search=search))
    fs = None if store.is_local else store.fs
    run_config = tune.RunConfig(
        name=label,
        storage_path=store.root,
        storage_filesystem=fs,
        stop=None if plan.epoch_budget is None else EpochBudgetStopper(plan.epoch_budget, store, searcher, seed),
        callbacks=callbacks,
        verbose=0,
        failure_config=tune.FailureConfig(max_failures=2),
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2),
        # keep the experiment snapshot on remote storage fresh: it is what --resume restores
        sync_config=tune.SyncConfig(sync_period=5),
    )
    tune_path = store.path(label)
    broken = unreadable_tune_state(store, label) if cfg.resume else None
    if broken is not None:  # nothing to restore from: this one search starts again, cleanly
        forget_search(store, searcher, seed)
        print(
            f"[{searcher} seed {seed}] warning: Tune's saved state {broken} is unreadable (cut off "
            "when the run stopped); this search starts again from scratch, its partial rows removed",
            file=sys.stderr, flush=True,
        )
    if cfg.resume and tune.Tuner.can_restore(tune_path, storage_filesystem=fs):
        tuner = tune.Tuner.restore(tune_path, trainable, resume_errored=True, storage_filesystem=fs)
        if not cfg.quiet:  # a resumed search without this line started afresh (no Tune state to restore)
            where = tune_path if store.is_local else f"{store.fs.type_name}://{tune_path}"
            print(f"[{searcher} seed {seed}] restored from {where}", flush=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=plan.param_space,
            tune_config=tune.TuneConfig(
                metric=OBJECTIVE,
                mode=MODE,
                search_alg=plan.search_alg,
                scheduler=plan.scheduler,
                num_samples=plan.num_samples,
                reuse_actors=True,  # no process start-up per trial (NoisyLabelTrainable.reset_config)
                trial_dirname_creator=trial_dirname,
            ),
            run_config=run_config,
        )
    with pending_trials(plan.max_pending), tune_env(TUNE_DISABLE_SIGINT_HANDLER="1"), stale_checkpoint_notes():
        tuner.fit()
    if spec.history is not None:  # the searcher's own record of the search (S2E: p_theta per round)
        state = newest_searcher_state(store, label)
        doc = spec.history(state, ctx.space.fixed) if state is not None else None
        if doc is not None:
            write_history(store, searcher, seed, doc)
    store.write_bytes(done, b"done\n")
