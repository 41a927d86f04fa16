"""``python -m s2e_tune.bench record``: train many R(t) schedules once, for ``bench search --backend replay``.

For each noise setting and data seed, ``--schedules`` schedules (Co-teaching's default, R = 1, then
prior draws from the s2e, s2e-authors and coteaching spaces in turn) are trained with Co-teaching
through the real Trainer, and ``--repeat-schedules`` of them ``--repeats`` more times with other
training seeds (the replay's noise is measured from those).  Every per-epoch metric goes to
``<out>/parts/<job>.parquet`` as each training ends; ``--workers`` processes train in parallel
(one torch thread each).  At the end (and on ``--max-minutes``) the parts are joined into
``<out>/recording.parquet`` (zstd) with ``<out>/recording.json`` (what was recorded, how, the
command, commit, machine and wall time).  ``--resume`` continues an interrupted recording with the
same flags; trainings already in ``parts/`` are not run again.  The recording that ships is in
``s2e_tune/replay/data/``; BENCHMARKS.md says how it was made.

Examples::

    python -m s2e_tune.bench record --out /tmp/rec --schedules 6 --epochs 3 --seeds 0   # a minute
    python -m s2e_tune.bench record --out rec --resume                                    # continue
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from noisylabels.errors import UserError, run_cli
from s2e_tune.bench import common
from s2e_tune.config import parse_seeds
from s2e_tune.replay import quality
from s2e_tune.replay import recording as rec
from s2e_tune.replay.recording import META_FILE, TABLE_FILE

PARTS = "parts"
DEFAULTS = rec.RecordingSpec(
    settings=common.ALL_SETTINGS,
    data_seeds=(0, 1, 2),
    schedules=128,
    repeat_schedules=4,
    repeats=3,
    epochs=50,
    mnist1d_samples=6250,
    val_fraction=0.2,
    model="mlp",
    batch_size=128,
    lr=1e-3,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UserError(f"{message}; see python -m s2e_tune.bench record --help")


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = _Parser(
        prog="python -m s2e_tune.bench record",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="directory of the recording")
    p.add_argument("--settings", default=",".join(d.settings), help=f"comma list of {', '.join(common.SETTINGS)}")
    p.add_argument("--seeds", default=",".join(map(str, d.data_seeds)), help="data seeds, list or ranges")
    p.add_argument("--schedules", type=int, default=d.schedules, help=f"per setting and seed [{d.schedules}]")
    p.add_argument("--repeat-schedules", type=int, default=d.repeat_schedules, help="schedules also repeated")
    p.add_argument("--repeats", type=int, default=d.repeats, help=f"extra trainings of each [{d.repeats}]")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"T [{d.epochs}]")
    p.add_argument("--mnist1d-samples", type=int, default=d.mnist1d_samples, help="signals generated")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="of the training pool")
    p.add_argument("--model", default=d.model, choices=["mlp", "cnn1d"], help=f"[{d.model}]")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel trainings [CPUs]")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop starting trainings after this long (0: only rebuild the table)",
    )
    p.add_argument("--data-dir", default=None, help="where MNIST-1D is cached")
    p.add_argument("--resume", action="store_true", help="continue the recording in --out (same flags)")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: print what the recording in --out measures (noise, density, memorisation)",
    )
    p.add_argument("--quiet", action="store_true")
    return p


def parse(argv: list[str]) -> tuple[argparse.Namespace, rec.RecordingSpec]:
    a = build_parser().parse_args(argv)
    settings = tuple(dict.fromkeys(s.strip() for s in a.settings.split(",") if s.strip()))
    trained = [s for s in common.SETTINGS if s not in common.CLEAN_VALIDATION]  # -clean: same trainings
    bad = [s for s in settings if s not in trained]
    if bad or not settings:
        raise UserError(
            f"unknown setting {bad[0] if bad else ''!r}; use a comma list of {', '.join(trained)} "
            "(a recording holds both validation objectives)"
        )
    for name in ("schedules", "epochs", "workers"):
        if getattr(a, name) < 1:
            raise UserError(f"--{name} must be at least 1, got {getattr(a, name)}")
    if a.repeats < 0 or a.repeat_schedules < 0:
        raise UserError("--repeats and --repeat-schedules must be >= 0")
    spec = rec.RecordingSpec(
        settings=settings,
        data_seeds=tuple(parse_seeds(a.seeds)),
        schedules=a.schedules,
        repeat_schedules=min(a.repeat_schedules, a.schedules),
        repeats=a.repeats,
        epochs=a.epochs,
        mnist1d_samples=a.mnist1d_samples,
        val_fraction=a.val_fraction,
        model=a.model,
        batch_size=DEFAULTS.batch_size,
        lr=DEFAULTS.lr,
    )
    # the run command's checks of the same values (one line each)
    common.setting_config(settings[0], mnist1d_samples=spec.mnist1d_samples, val_fraction=spec.val_fraction)
    return a, spec


def _work(spec: rec.RecordingSpec, job: rec.Job, out: str, data_dir: str | None) -> tuple[str, float]:
    common.one_thread()
    noise, rate = common.SETTINGS[job.setting]
    t0 = time.perf_counter()
    df = rec.train(spec, job, noise, rate, data_dir)
    path = Path(out) / PARTS / f"{job.key}.parquet"
    tmp = path.with_name("." + path.name)
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)  # a part is whole or absent
    return job.key, time.perf_counter() - t0


def consolidate(out: Path) -> pd.DataFrame:
    """Join the parts into ``recording.parquet`` (compressed; the form that ships)."""
    parts = sorted((out / PARTS).glob("*.parquet"))
    df = (
        pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        if parts
        else pd.DataFrame(columns=rec.COLUMNS)
    )
    df = df.sort_values(list(rec.KEY_COLUMNS) + ["epoch"]).reset_index(drop=True)
    for c in df.columns:  # float32 keeps accuracies on 1,000 signals exact; epoch times to the ms
        if df[c].dtype == "float64":
            df[c] = (df[c].round(3) if c == "epoch_time_s" else df[c]).astype("float32")
    tmp = out / f".{TABLE_FILE}"
    df.to_parquet(tmp, index=False, compression="zstd", compression_level=19)
    os.replace(tmp, out / TABLE_FILE)
    return df


def record(a: argparse.Namespace, spec: rec.RecordingSpec, argv: list[str]) -> dict[str, Any]:
    out = Path(a.out)
    meta_path = out / META_FILE
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if not a.resume:
            raise UserError(f"a recording exists at {out}; pass --resume to continue it or another --out")
        if old.get("spec") != spec.as_dict():
            diff = [k for k, v in spec.as_dict().items() if old.get("spec", {}).get(k) != v]
            raise UserError(
                f"the recording at {out} was made with other {', '.join(diff)}; pass its flags or another --out"
            )
        meta = old
    else:
        meta = {
            "spec": spec.as_dict(),
            "command": common.command_line("record", argv),
            "started": common.now(),
            "wall_s": 0.0,
        }
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    meta.update(commit=common.short_commit(), machine=common.machine_line(), versions=common.versions())
    noise_rates = {s: common.SETTINGS[s][1] for s in spec.settings}
    every = rec.jobs(spec, noise_rates)
    todo = [j for j in every if not (out / PARTS / f"{j.key}.parquet").exists()]
    total = len(every)
    done0 = total - len(todo)
    if not a.quiet:
        print(f"recording {total} trainings in {out} ({done0} already there), {a.workers} workers", flush=True)
    deadline = time.monotonic() + 60 * a.max_minutes if a.max_minutes is not None else None
    with common.WallClock(meta_path, meta) as clock:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=a.workers, mp_context=ctx) as pool:
            pending: set[cf.Future] = set()
            it = iter(todo)
            t0, finished = time.perf_counter(), 0
            while True:
                while len(pending) < a.workers and (deadline is None or time.monotonic() < deadline):
                    job = next(it, None)
                    if job is None:
                        break
                    pending.add(pool.submit(_work, spec, job, str(out), a.data_dir))
                if not pending:
                    break
                ready, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for f in ready:
                    key, seconds = f.result()
                    finished += 1
                    if not a.quiet:
                        rate = (time.perf_counter() - t0) / finished
                        left = (len(todo) - finished) * rate
                        print(
                            f"[{done0 + finished}/{total}] {key} {seconds:.1f} s; ~{left / 60:.0f} min left", flush=True
                        )
        df = consolidate(out)
        clock.save(
            finished=common.now(),
            trainings=int(df.groupby(list(rec.KEY_COLUMNS)).ngroups),
            complete=done0 + finished == total,
        )
    return meta


def report(out: Path) -> str:
    """Markdown: per setting and objective, mean over data seeds of the final-epoch noise SD, the
    replay's leave-one-out error and the spread of recorded finals; then memorisation (R = 1)."""
    try:
        df = pd.read_parquet(out / TABLE_FILE)
        meta = json.loads((out / META_FILE).read_text())
    except (OSError, ValueError):
        raise UserError(f"no recording at {out}; make one with python -m s2e_tune.bench record --out {out}") from None
    spec = rec.RecordingSpec.from_dict(meta["spec"])
    rows, mem = [], []
    for setting in spec.settings:
        for objective in ("noisy", "clean"):
            n = [quality.noise(df, setting, d, objective) for d in spec.data_seeds]
            loo = [quality.leave_one_out(df, setting, d, objective) for d in spec.data_seeds]
            rows.append(
                [
                    setting,
                    objective,
                    str(sum(x["trainings"] for x in loo)),
                    f"{sum(x['val_acc'] for x in n) / len(n):.4f}",
                    f"{sum(x['test_acc'] for x in n) / len(n):.4f}",
                    f"{sum(x['loo_rmse'] for x in loo) / len(loo):.4f}",
                    f"{sum(x['mean_w2'] for x in loo) / len(loo):.2f}",
                    f"{sum(x['finals_sd'] for x in loo) / len(loo):.4f}",
                ]
            )
        for d in spec.data_seeds:
            m = quality.memorisation(df, setting, d)
            cells = [f"{m[k]['peak']:.3f} @ {m[k]['peak_epoch']} -> {m[k]['final']:.3f}" if k in m else "–"
                     for k in ("keep-all", "coteaching-default")]  # fmt: skip
            mem.append([setting, str(d), *cells])
    head = ["setting", "val labels", "trainings", "noise SD val", "noise SD test", "LOO RMSE val", "mean Σw²",
            "SD of finals"]  # fmt: skip
    return "\n".join(
        [
            f"Recording `{out}`: {meta.get('trainings', '?')} trainings, {spec.epochs} epochs, "
            f"{meta.get('wall_s', 0) / 60:.0f} min ({meta.get('machine', '?')}, commit {meta.get('commit', '?')})",
            "",
            common.md_table(head, rows, "ll" + "r" * 6),
            "",
            "Test accuracy peak @ epoch -> final (the seed's own training):",
            "",
            common.md_table(["setting", "data seed", "R = 1 (standard)", "Co-teaching default"], mem, "llrr"),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> None:
        a, spec = parse(argv)
        if a.report_only:
            print(report(Path(a.out)), end="")
            return
        meta = record(a, spec, argv)
        print(f"written: {Path(a.out) / TABLE_FILE} ({meta['trainings']} trainings, {meta['wall_s'] / 60:.1f} min)")

    return run_cli(body, "interrupted; continue with the same flags and --resume")
