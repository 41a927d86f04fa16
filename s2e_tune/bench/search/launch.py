"""The driver of ``bench search``: every check first, then the searches of each setting through
the run command's :func:`~s2e_tune.experiment.run_experiment`, the reference rows in this
process, and the tables from the files (``aggregate``, ``render``)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from noisylabels.data import prepare
from noisylabels.errors import UserError
from noisylabels.spaces import coteaching_default
from results import layout
from results import manifest as results_manifest
from results.forget import forget_search
from results.store import Store
from s2e_tune.bench import common
from s2e_tune.bench.search import aggregate, render
from s2e_tune.bench.search.definition import (
    BUDGET_KEYS,
    MARKDOWN_FILE,
    META_FILE,
    REFERENCE_FILE,
    REFERENCE_KINDS,
    SEARCHER_KEYS,
    TRAINED_REFERENCES,
    BenchArgs,
    experiment_dir,
)
from s2e_tune.config import ExperimentConfig
from trainables.engine import Trainer


def setting_config(args: BenchArgs, setting: str, resume: bool = False) -> ExperimentConfig:
    """The run command's configuration of one noise setting: experiment ``<storage>/<setting>``."""
    b = args.bench
    return common.setting_config(
        setting,
        searchers=b.searchers,
        space=args.space,
        data_dir=args.data_dir,
        mnist1d_samples=b.mnist1d_samples,
        val_fraction=b.val_fraction,
        model=b.model,
        epochs=b.epochs,
        trials=b.trials,
        samples_per_round=b.samples_per_round,
        seeds=b.seeds,
        gpus=args.gpus,
        gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial,
        storage=args.storage,
        resume=resume,
        wandb=args.wandb,
        quiet=args.quiet,
        extra={"s2e": dict(args.s2e_options)} if args.s2e_options else {},
    )


# ------------------------------------------------------------------------------ files
def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of the experiment at ``path`` (``results.manifest.read_manifest``)."""
    return results_manifest.read_manifest(Store.from_uri(str(path)))


def load_meta(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / META_FILE).read_text())
    except (OSError, ValueError):
        return {}


def check_same_budget(
    cfg: ExperimentConfig, manifest: dict[str, Any] | None, where: Path, rerun: Sequence[str] = ()
) -> None:
    """``--resume``/``--report-only`` must see the flags the results were made with (``rerun``:
    searchers whose results are about to be replaced, so the keys only they read may change)."""
    old = (manifest or {}).get("config") or {}
    new = cfg.to_dict()
    for key in BUDGET_KEYS:
        if SEARCHER_KEYS.get(key) in rerun:
            continue
        if key in old and old[key] != new[key]:
            if key == "extra":  # the benchmark's extra is S2E's options alone
                hint = f"--s2e-options '{json.dumps((old[key] or {}).get('s2e', {}))}', or --rerun s2e"
            else:
                hint = f"{'--' + key.replace('_', '-')} {old[key]}"
            raise UserError(
                f"results at {where} were made with {key}={old[key]!r}, not {new[key]!r}; "
                f"pass the same flags as the first run (e.g. {hint}) or another --storage"
            )


def forget_searches(out: Path, searchers: Sequence[str], seeds: Sequence[int]) -> list[Path]:
    """Delete everything the (searcher, seed) searches left in the experiment ``out``
    (:func:`results.forget.forget_search`), so a ``--resume`` runs those searches again from
    scratch.  Other searchers' files are not touched; ``trials.parquet``, ``summary.parquet`` and
    the plots are rebuilt from the parts by the run.  Returns the paths removed."""
    store = Store.from_uri(str(out))
    return [Path(p) for searcher in searchers for seed in seeds for p in forget_search(store, searcher, seed)]


def record_rerun(out: Path, cfg: ExperimentConfig, searchers: Sequence[str], when: str, sha: str) -> None:
    """Note a ``--rerun`` in the experiment's manifest: the searchers, date and commit, and the
    new values of the keys only those searchers read (``SEARCHER_KEYS``)."""
    path = out / layout.MANIFEST
    manifest = json.loads(path.read_text())
    config = manifest.setdefault("config", {})
    new = cfg.to_dict()
    changed = {}
    for key, owner in SEARCHER_KEYS.items():
        if owner in searchers and config.get(key) != new[key]:
            changed[key] = {"from": config.get(key), "to": new[key]}
            config[key] = new[key]
    manifest.setdefault("reruns", []).append(
        {"searchers": list(searchers), "at": when, "git_commit": sha, "changed": changed}
    )
    common.write_json(path, manifest, indent=2)


# ------------------------------------------------------------------------------ reference rows
def run_references(cfg: ExperimentConfig, out: Path, quiet: bool = False) -> pd.DataFrame:
    """Co-teaching's default schedule and standard training, one full-length run per seed on the
    seed's data (the data every searcher of that seed saw), in this process.  Cached in
    ``out/reference.parquet``; rows already there (same epochs) are not rerun."""
    path = out / REFERENCE_FILE
    have = pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=["kind", "seed", "epochs"])
    rows = [r for r in have.to_dict("records") if int(r["epochs"]) == cfg.epochs]
    done = {(r["kind"], int(r["seed"])) for r in rows}
    for seed in cfg.seeds:
        todo = [k for k in TRAINED_REFERENCES if (k, seed) not in done]
        if not todo:
            continue
        data = prepare(cfg.data_spec(seed))
        for kind in todo:
            method = "standard" if kind == "standard" else "coteaching"
            config = {**cfg.train_config(seed), "method": method, **coteaching_default(cfg.noise_rate)}
            t0 = time.perf_counter()
            trainer = Trainer(config, data)
            hist = [trainer.train_epoch() for _ in range(cfg.epochs)]
            last = hist[-1]
            rows.append(
                {
                    "kind": kind,
                    "seed": int(seed),
                    "epochs": int(cfg.epochs),
                    "val_acc": float(last["val_acc"]),
                    "test_acc": float(last["test_acc"]),
                    "label_precision": float(np.mean([h["label_precision"] for h in hist])),
                    "seconds": time.perf_counter() - t0,
                }
            )
            if not quiet:
                print(
                    f"[reference {cfg.name} seed {seed}] {REFERENCE_KINDS[kind]}: val_acc {last['val_acc']:.4f} "
                    f"test_acc {last['test_acc']:.4f}",
                    flush=True,
                )
            df = pd.DataFrame(rows)
            df.to_parquet(path, index=False)  # after every run: an interruption loses at most one
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ the run
def check_settings(args: BenchArgs) -> dict[str, ExperimentConfig]:
    """Every check before anything runs: one configuration per setting (and, to replay, the
    recording against the benchmark)."""
    if args.bench.backend == "replay" and not args.report_only:
        from s2e_tune.bench.search.replay import load_recording_meta

        load_recording_meta(args)
    cfgs = {}
    for setting in args.bench.settings:
        out = experiment_dir(args, setting)
        manifest = read_manifest(out)
        if manifest is not None and not (args.resume or args.report_only):
            raise UserError(
                f"results for {setting} already exist at {out}; pass --resume to continue them, "
                "--report-only to tabulate them, or another --storage"
            )
        cfg = setting_config(args, setting, resume=args.resume and manifest is not None)
        if manifest is not None:
            check_same_budget(cfg, manifest, out, args.rerun)
        cfgs[setting] = cfg
    return cfgs


def start_meta(args: BenchArgs, meta: dict[str, Any], argv: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The benchmark's metadata for this invocation and the record its wall time goes to: the
    run's own, or on ``--rerun`` a new record in ``meta["reruns"]`` (the first run's stays)."""
    sha = common.short_commit()
    resumed = args.resume
    this = common.command_line("search", argv)
    # every distinct command that wrote into this storage, in order (a --resume may name other settings)
    before = (meta.get("commands") or [meta["command"]]) if resumed and meta.get("command") else []
    meta = {
        **meta,
        "command": before[0] if before else this,
        "commands": before + ([this] if this not in before else []),
        "started": meta.get("started") if resumed and meta.get("started") else common.now(),
        "loadavg_start": meta.get("loadavg_start") if resumed and meta.get("loadavg_start") else common.loadavg(),
        "machine": common.machine_line(),
        "versions": common.versions(),
        # a rerun keeps the first run's commit; its own goes into its record below
        "commit": meta.get("commit") if args.rerun and meta.get("commit") else sha,
    }
    if not resumed:
        meta["wall_s"] = 0.0
    if not args.rerun:
        meta["invocations"] = int(meta.get("invocations") or 0) + 1
        return meta, meta
    target = {"searchers": list(args.rerun), "started": common.now(), "commit": sha, "wall_s": 0.0}
    meta.setdefault("reruns", []).append(target)
    return meta, target


def forget_reruns(args: BenchArgs, cfgs: dict[str, ExperimentConfig], target: dict[str, Any]) -> None:
    """``--rerun``: delete the rerun searchers' results in every setting that has results."""
    for setting, cfg in cfgs.items():
        out = experiment_dir(args, setting)
        if read_manifest(out) is None:
            continue  # nothing there yet: the searches run the first time
        removed = forget_searches(out, args.rerun, args.bench.seeds)
        record_rerun(out, cfg, args.rerun, target["started"], target["commit"])
        if not args.quiet:
            print(f"--rerun: removed {len(removed)} paths of {', '.join(args.rerun)} in {out}", flush=True)


def run_searches(args: BenchArgs, cfgs: dict[str, ExperimentConfig], argv: Sequence[str]) -> dict[str, Any]:
    """Run (or continue) every setting's searches and reference rows; returns the metadata."""
    # Ray Tune is imported only when searches run: --report-only needs none of it
    from s2e_tune.experiment import run_experiment

    meta, target = start_meta(args, load_meta(args.root), argv)
    meta["backend"] = args.bench.backend
    if args.rerun:
        forget_reruns(args, cfgs, target)
    if args.bench.backend == "replay":
        from s2e_tune.bench.search.replay import run_replay

        with common.WallClock(args.root / META_FILE, meta, target) as clock:
            run_replay(args, cfgs, meta, clock)
            target.update(finished=common.now(), loadavg_end=common.loadavg())
        return meta
    with common.WallClock(args.root / META_FILE, meta, target) as clock:
        for setting, cfg in cfgs.items():
            if not args.quiet:
                print(
                    f"== {setting}: {len(cfg.searchers)} searchers x {len(cfg.seeds)} seeds, "
                    f"{cfg.trials} trials x {cfg.epochs} epochs ==",
                    flush=True,
                )
            run_experiment(cfg)
            if args.reference:
                run_references(cfg, experiment_dir(args, setting), quiet=args.quiet)
            target.update(finished=common.now(), loadavg_end=common.loadavg())  # the run's, or the rerun's record
            clock.save()
    return meta


def run_benchmark(args: BenchArgs, argv: Sequence[str]) -> str:
    """Run what ``args`` asks for, then write and return the Markdown of every setting."""
    cfgs = check_settings(args)
    meta = load_meta(args.root) if args.report_only else run_searches(args, cfgs, argv)
    results = [aggregate.analyse_setting(args, s) for s in args.bench.settings]
    first = read_manifest(experiment_dir(args, args.bench.settings[0])) or {}
    data_info = next(iter((first.get("data") or {}).values()), None)
    ranks = aggregate.rank_table(results, args.bench.searchers) if len(results) > 1 else None
    doc = render.document(args, results, ranks, meta, data_info)
    (args.root / MARKDOWN_FILE).write_text(doc)
    if args.summary_json:
        common.write_json(Path(args.summary_json), render.summary_json(args, results, meta), indent=2)
    return doc
