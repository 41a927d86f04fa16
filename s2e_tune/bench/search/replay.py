"""``bench search --backend replay``: every (setting, searcher, seed) search of the benchmark
replayed against a recording (``s2e_tune.replay``) instead of trained, written to the same results
layout as a real run (one ``epochs/`` and one ``trials/`` part per search, a done marker, a
manifest), so ``aggregate`` and ``render`` read both backends alike.

The searcher and scheduler objects are the run command's (``searchers.registry`` ->
``SearchPlan``), driven by ``s2e_tune.replay.simulator`` with ``definition.SLOTS`` trials at once.
A search seed ``s`` replays the recording of data seed ``s`` when the recording has it, else of
``data_seeds[s % n]`` (its own noise draws: another training seed on the same data); the searcher's
seed is ``s`` either way.  Searches run in ``--workers`` processes; a finished search is never
replayed again (``--resume``), and ``--rerun`` forgets the named searchers' searches first.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from noisylabels.errors import UserError
from noisylabels.spaces import coteaching_default
from results import layout
from results.manifest import write_manifest
from results.parquet_log import end_status, epoch_table, flat_config, status_table
from results.store import Store
from s2e_tune.bench import common
from s2e_tune.bench.search.definition import REFERENCE_FILE, SLOTS, BenchArgs, experiment_dir
from s2e_tune.config import ExperimentConfig
from s2e_tune.replay.recording import META_FILE, SHIPPED, TABLE_FILE
from s2e_tune.replay.table import REPLAYED, ReplayTable, draw_of, query_curve
from searchers import registry

PART = "replay.parquet"  # the one part file of a replayed search, in each partition
T0 = 1_800_000_000  # virtual timestamps: T0 + the simulator's clock (one second per epoch)
# the recording's keys that must equal the benchmark's: the replay answers for these only
MATCH = {"epochs": "epochs", "mnist1d_samples": "mnist1d_samples", "val_fraction": "val_fraction", "model": "model"}


def table_dir(args: BenchArgs) -> Path:
    return Path(args.table) if args.table else SHIPPED


def load_recording_meta(args: BenchArgs) -> dict[str, Any]:
    """The recording's ``recording.json``, checked against the benchmark (one line if they differ)."""
    where = table_dir(args)
    try:
        meta = json.loads((where / META_FILE).read_text())
    except (OSError, ValueError):
        raise UserError(
            f"no recording at {where} (recording.json); make one with python -m s2e_tune.bench record --out DIR "
            "and pass --table DIR"
        ) from None
    spec, b = meta["spec"], args.bench
    for mine, theirs in MATCH.items():
        if getattr(b, mine) != spec[theirs]:
            raise UserError(
                f"the recording at {where} has {theirs}={spec[theirs]!r}, the benchmark {mine}={getattr(b, mine)!r}; "
                f"pass --{mine.replace('_', '-')} {spec[theirs]} or record another table"
            )
    missing = [s for s in b.settings if common.recorded_as(s)[0] not in spec["settings"]]
    if missing:
        raise UserError(f"the recording at {where} has no {missing[0]} trainings; record it or drop the setting")
    return meta


def data_seed_of(seed: int, data_seeds: list[int]) -> int:
    return seed if seed in data_seeds else data_seeds[seed % len(data_seeds)]


# ------------------------------------------------------------------------------ one search
@lru_cache(maxsize=4)
def _recording(path: str) -> pd.DataFrame:
    return pd.read_parquet(path)


@lru_cache(maxsize=32)
def _table(path: str, setting: str, data_seed: int, objective: str) -> ReplayTable:
    return ReplayTable.from_recording(_recording(path), setting, data_seed, objective)


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)


def replay_one(
    cfg: ExperimentConfig, setting: str, searcher: str, seed: int, recording: str, data_seeds: list[int]
) -> int:
    """Replay one search and write its parts and done marker; returns the epochs it consumed."""
    import random

    from s2e_tune.replay.simulator import replay_search

    _quiet()
    np.random.seed(seed)  # ASHA and Hyperband draw from the global generators
    random.seed(seed)
    base, objective = common.recorded_as(setting)
    table = _table(recording, base, data_seed_of(seed, data_seeds), objective)
    answers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def evaluate(config: dict[str, Any], epoch: int) -> dict[str, Any]:
        key = id(config)
        if key not in answers:
            q = query_curve(config, table.epochs)
            answers[key] = (q, table.answer(q, draw_of(seed, q)))
        q, a = answers[key]
        return {"kept_ratio": float(q[epoch - 1]), **dict(zip(REPLAYED, a[epoch - 1].tolist(), strict=True))}

    plan = registry.get(searcher).plan(cfg.search_context(seed))
    rows = replay_search(plan, evaluate, cfg.epochs, slots=SLOTS)
    write_search(Store.from_uri(str(Path(cfg.storage) / cfg.name)), searcher, seed, rows, cfg.epochs)
    return len(rows)


def write_search(store: Store, searcher: str, seed: int, rows: list[dict[str, Any]], epochs: int) -> None:
    """The parts a real search leaves (``results.parquet_log``), one file per partition, then the
    done marker.  As ``ParquetLogger.on_experiment_end``: a trial the budget cut (running or
    paused) gets its end-status row at the end, with the search's final epoch count."""
    out, status, cut, used = [], [], [], 0
    for r in rows:
        used += 1
        out.append(
            {
                **{k: v for k, v in r.items() if k not in ("config", "clock", "status")},
                "diverged": False,
                "time_this_iter_s": float(r.get("epoch_time_s", 1.0)),
                "timestamp": int(T0 + r["clock"]),
                "node_id": "replay",
                **flat_config(r["config"]),
            }
        )
        if r.get("status") == "TERMINATED":
            status.append(
                (r["trial_id"], end_status("TERMINATED", r["epoch"], epochs, False), used, int(T0 + r["clock"]))
            )
        elif "status" in r:
            cut.append(r)
    end = int(T0 + max((r["clock"] for r in rows), default=0))
    status += [(r["trial_id"], end_status("TERMINATED", r["epoch"], epochs, False), used, end) for r in cut]
    store.write_table(store.path(f"{layout.partition(layout.EPOCHS, searcher, seed)}/{PART}"), epoch_table(out))
    trials = status_table(*(list(c) for c in zip(*status, strict=True))) if status else status_table([], [], [], [])
    store.write_table(store.path(f"{layout.partition(layout.TRIALS, searcher, seed)}/{PART}"), trials)
    store.write_bytes(store.path(layout.done_marker(searcher, seed)), b"done\n")


# ------------------------------------------------------------------------------ references
def replay_references(cfg: ExperimentConfig, setting: str, recording: str, data_seeds: list[int], out: Path) -> None:
    """The reference rows from the recording: Co-teaching's default schedule and R = 1 (no
    selection), answered like any query (a recorded curve: that training itself)."""
    base, objective = common.recorded_as(setting)
    rows = []
    for seed in cfg.seeds:
        table = _table(recording, base, data_seed_of(seed, data_seeds), objective)
        for kind, config in (
            ("coteaching-default", coteaching_default(cfg.noise_rate)),
            ("keep-all", {"schedule": "constant", "keep": 1.0}),
        ):
            q = query_curve(config, table.epochs)
            a = table.answer(q, draw_of(seed, q))
            last = dict(zip(REPLAYED, a[-1].tolist(), strict=True))
            rows.append(
                {
                    "kind": kind,
                    "seed": int(seed),
                    "epochs": int(cfg.epochs),
                    "val_acc": last["val_acc"],
                    "test_acc": last["test_acc"],
                    "label_precision": float(np.mean(a[:, REPLAYED.index("label_precision")])),
                    "seconds": float(np.sum(a[:, REPLAYED.index("epoch_time_s")])),
                }
            )
    pd.DataFrame(rows).to_parquet(out / REFERENCE_FILE, index=False)


# ------------------------------------------------------------------------------ the run
def _init_worker() -> None:
    common.one_thread()
    _quiet()


def run_replay(args: BenchArgs, cfgs: dict[str, ExperimentConfig], meta: dict[str, Any], clock: Any) -> None:
    """Replay every search of every setting not yet done; progress one line per search."""
    rec_meta = load_recording_meta(args)
    recording = str(table_dir(args) / TABLE_FILE)
    data_seeds = list(rec_meta["spec"]["data_seeds"])
    meta["recording"] = {"path": str(table_dir(args)), "spec": rec_meta["spec"], "commit": rec_meta.get("commit")}
    todo = []
    for setting, cfg in cfgs.items():
        out = experiment_dir(args, setting)
        store = Store.from_uri(str(out))
        write_manifest(store, cfg.to_dict(), {"backend": "replay"}, recording=meta["recording"])
        replay_references(cfg, setting, recording, data_seeds, out)
        for searcher in cfg.searchers:
            for seed in cfg.seeds:
                if not store.exists(store.path(layout.done_marker(searcher, seed))):
                    todo.append((cfg, setting, searcher, seed))
    if not args.quiet:
        print(f"replaying {len(todo)} searches with {args.workers} workers ({recording})", flush=True)
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = {
            pool.submit(replay_one, cfg, s, name, seed, recording, data_seeds): (s, name, seed)
            for cfg, s, name, seed in todo
        }
        for i, f in enumerate(cf.as_completed(futures), 1):
            s, name, seed = futures[f]
            used = f.result()
            if not args.quiet:
                left = (time.perf_counter() - t0) / i * (len(todo) - i)
                print(f"[{i}/{len(todo)}] {s} {name} seed {seed}: {used} epochs; ~{left / 60:.1f} min left", flush=True)
            clock.save()
