"""``python -m s2e_tune.bench search``: S2E against random, BO, TPE, Hyperband, ASHA and BOHB on MNIST-1D.

For each noise setting (sym-20 %, sym-50 %, pair-45 %: the seed's three) the
benchmark runs every (seed, searcher) search of Co-teaching's R(t) through
:func:`s2e_tune.experiment.run_experiment` -- one experiment per setting,
``<storage>/<setting>/``, with the usual Parquet results, plots and manifest --
and two reference rows per seed on the same data: Co-teaching's default
schedule (tau = noise rate, c = 1, T_k = 10) and standard training, each one
full-length run with :class:`trainables.engine.Trainer` in this process.

It prints, and writes to ``<storage>/search_benchmark.md``, per setting and
searcher (mean ± standard error over seeds):

* the best-so-far ``val_acc`` and the clean test accuracy of the trial holding
  it after 25 %, 50 % and 100 % of the epoch budget (``trials x epochs`` per
  searcher and seed; ``results.analysis.budget_values``);
* the budget fraction at which the searcher's mean first reaches random
  search's final mean (``results.analysis.budget_to_match``);
* the paired difference to random search at the full budget (per seed, then
  mean ± standard error: :func:`paired_difference`);
* the mean rank: searchers ranked per (setting, seed) by best ``val_acc`` at
  the full budget (1 = best, ties share the average rank), averaged over seeds;

and the reference rows' final ``val_acc`` and test accuracy.
``--update-benchmarks FILE`` puts the same Markdown between
``<!-- bench-search:start -->`` and ``<!-- bench-search:end -->`` in FILE
(markers appended when absent), so BENCHMARKS.md is regenerated, never edited.

Examples::

    python -m s2e_tune.bench search                          # the full benchmark (~1 h on 2 idle cores)
    python -m s2e_tune.bench search --quick                  # a few minutes: 2 searchers, 2 seeds, sym-50
    python -m s2e_tune.bench search --resume                 # continue an interrupted run (same flags)
    python -m s2e_tune.bench search --rerun s2e              # after changing S2E: redo its searches only
    python -m s2e_tune.bench search --report-only --update-benchmarks BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from noisylabels.errors import UserError, run_cli
from results.efficiency import BUDGET_FRACTIONS, Efficiency, budget_to_match, budget_values, search_efficiency
from results.summary import per_seed_table
from s2e_tune.bench.methods import SETTINGS, git_sha
from s2e_tune.config import SEARCHERS, ExperimentConfig, parse_searchers, parse_seeds
from searchers.registry import order as order_searchers

START_MARK = "<!-- bench-search:start -->"
END_MARK = "<!-- bench-search:end -->"
MARKDOWN_FILE = "search_benchmark.md"
META_FILE = "search_benchmark.json"
REFERENCE_FILE = "reference.parquet"
REFERENCE = "random"  # budget to match: the final result of this searcher
REFERENCE_KINDS = {
    "coteaching-default": "ref: Co-teaching default",
    "standard": "ref: standard training",
}

# Defaults of the full benchmark; see BENCHMARKS.md ("Searcher comparison") for the measurement
# behind them: 105 searches (3 settings x 5 seeds x 7 searchers) of 8 trials x 8 epochs on 4,000
# MNIST-1D signals are about an hour on an idle 2-core CPU, most of it Ray's per-trial start-up.
DEFAULTS: dict[str, Any] = {
    "searchers": SEARCHERS,
    "settings": ("sym-20", "sym-50", "pair-45"),
    "seeds": (0, 1, 2, 3, 4),
    "trials": 8,
    "epochs": 8,
    "samples_per_round": 2,  # = one per trial slot on 2 cores, the run command's default there
    "mnist1d_samples": 4000,
}
# --quick: a few minutes; still two searchers and two seeds so every column has a value
QUICK: dict[str, Any] = {
    "searchers": ("s2e", "random"),
    "settings": ("sym-50",),
    "seeds": (0, 1),
    "trials": 4,
    "epochs": 3,
    "samples_per_round": 2,
    "mnist1d_samples": 2000,
}
# what makes two runs of one setting comparable: checked on --resume and --report-only
BUDGET_KEYS = (
    "dataset",
    "method",
    "space",
    "noise",
    "noise_rate",
    "epochs",
    "trials",
    "mnist1d_samples",
    "samples_per_round",
    "val_fraction",
    "batch_size",
    "lr",
)
# budget keys that only one searcher reads: a --rerun of that searcher may change them
SEARCHER_KEYS = {"samples_per_round": "s2e"}


# ------------------------------------------------------------------------------ command line
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UserError(f"{message}; see python -m s2e_tune.bench search --help")


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = _Parser(
        prog="python -m s2e_tune.bench search",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes: "
        + ", ".join(f"{k} {_show(v)}" for k, v in QUICK.items())
        + " (flags given override these)",
    )
    p.add_argument("--searchers", help=f"comma list of {', '.join(SEARCHERS)}, or all [all]")
    p.add_argument("--settings", help=f"comma list of {', '.join(SETTINGS)} [{_show(d['settings'])}]")
    p.add_argument("--seeds", help=f"comma list [{_show(d['seeds'])}]")
    p.add_argument("--trials", type=int, help=f"budget in full-length trials per searcher and seed [{d['trials']}]")
    p.add_argument("--epochs", type=int, help=f"epochs T of a full-length trial [{d['epochs']}]")
    p.add_argument(
        "--samples-per-round", type=int, help=f"K, trials per S2E round [{d['samples_per_round']}]"
    )
    p.add_argument("--mnist1d-samples", type=int, help=f"MNIST-1D signals generated [{d['mnist1d_samples']}]")
    p.add_argument("--space", default="s2e", help="R(t) search space [s2e]")
    p.add_argument("--data-dir", default=None, help="where MNIST-1D is cached [~/.cache/s2e-tune/data]")
    p.add_argument(
        "--storage",
        default="bench-results",
        help="results root; one experiment per setting in <storage>/<setting>/ [bench-results]",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted benchmark in --storage (pass the same flags)"
    )
    p.add_argument(
        "--rerun",
        metavar="SEARCHERS",
        help="comma list of searchers whose results in --storage are deleted and run again (e.g. after "
        "changing one), keeping every other searcher's; implies --resume",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="no training: rebuild the tables from the results already in --storage",
    )
    p.add_argument(
        "--update-benchmarks",
        metavar="FILE",
        help=f"replace the section between {START_MARK} and {END_MARK} in FILE with the tables",
    )
    p.add_argument("--no-reference", action="store_true", help="skip the Co-teaching-default/standard rows")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs of one trial [1]")
    p.add_argument("--gpus", type=float, default=0.0, help="GPUs the searches may use [0]")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="GPU share of one trial [1 if --gpus]")
    p.add_argument("--wandb", default="off", choices=["auto", "online", "offline", "off"], help="W&B logging [off]")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    return p


def _show(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple | list) else str(v)


@dataclass(frozen=True)
class BenchArgs:
    searchers: tuple[str, ...]
    settings: tuple[str, ...]
    seeds: tuple[int, ...]
    trials: int
    epochs: int
    samples_per_round: int
    mnist1d_samples: int
    space: str
    data_dir: str | None
    storage: str
    resume: bool
    report_only: bool
    rerun: tuple[str, ...]
    update_benchmarks: str | None
    reference: bool
    cpus_per_trial: float
    gpus: float
    gpus_per_trial: float | None
    wandb: str
    quiet: bool
    quick: bool


def parse_args(argv: Sequence[str] | None) -> BenchArgs:
    a = build_parser().parse_args(argv)
    base = {**DEFAULTS, **(QUICK if a.quick else {})}

    def pick(key: str) -> Any:
        v = getattr(a, key)
        return base[key] if v is None else v

    searchers = parse_searchers(a.searchers) if a.searchers else tuple(base["searchers"])
    bad = [s for s in searchers if s not in SEARCHERS]
    if bad:
        raise UserError(f"unknown searcher {bad[0]!r}; use one of {', '.join(SEARCHERS)}, a comma list or all")
    settings = (
        tuple(dict.fromkeys(s.strip() for s in a.settings.split(",") if s.strip()))
        if a.settings
        else tuple(base["settings"])
    )
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings:
        raise UserError(f"unknown setting {bad[0] if bad else ''!r}; use a comma list of {', '.join(SETTINGS)}")
    seeds = parse_seeds(a.seeds) if a.seeds else tuple(base["seeds"])
    if not seeds:
        raise UserError("no seeds given; pass e.g. --seeds 0,1,2,3,4")
    trials = pick("trials")
    k = a.samples_per_round if a.samples_per_round is not None else base["samples_per_round"]
    if "://" in a.storage:
        raise UserError("the benchmark writes its tables locally; pass a directory as --storage")
    rerun = parse_searchers(a.rerun) if a.rerun else ()
    bad = [s for s in rerun if s not in searchers]
    if bad:
        raise UserError(f"--rerun {bad[0]}: not one of this benchmark's searchers ({', '.join(searchers)})")
    if (a.resume or rerun) and a.report_only:
        raise UserError("--resume/--rerun run searches, --report-only runs none; pass one of them")
    return BenchArgs(
        searchers=searchers,
        settings=settings,
        seeds=seeds,
        trials=trials,
        epochs=pick("epochs"),
        samples_per_round=k,
        mnist1d_samples=pick("mnist1d_samples"),
        space=a.space,
        data_dir=a.data_dir,
        storage=a.storage,
        resume=a.resume or bool(rerun),
        report_only=a.report_only,
        rerun=rerun,
        update_benchmarks=a.update_benchmarks,
        reference=not a.no_reference,
        cpus_per_trial=a.cpus_per_trial,
        gpus=a.gpus,
        gpus_per_trial=a.gpus_per_trial,
        wandb=a.wandb,
        quiet=a.quiet,
        quick=a.quick,
    )


def setting_config(args: BenchArgs, setting: str, resume: bool = False) -> ExperimentConfig:
    """The run command's configuration of one noise setting: experiment ``<storage>/<setting>``."""
    noise, rate = SETTINGS[setting]
    cfg = ExperimentConfig(
        searchers=args.searchers,
        space=args.space,
        dataset="mnist1d",
        data_dir=args.data_dir,
        mnist1d_samples=args.mnist1d_samples,
        noise=noise,
        noise_rate=rate,
        epochs=args.epochs,
        trials=args.trials,
        samples_per_round=args.samples_per_round,
        seeds=args.seeds,
        gpus=args.gpus,
        gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial,
        storage=args.storage,
        name=setting,
        resume=resume,
        wandb=args.wandb,
        quiet=args.quiet,
    )
    cfg.validate()
    return cfg


# ------------------------------------------------------------------------------ files
def experiment_dir(args: BenchArgs, setting: str) -> Path:
    return Path(args.storage).resolve() / setting


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


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
            flag = "--" + key.replace("_", "-")
            raise UserError(
                f"results at {where} were made with {key}={old[key]!r}, not {new[key]!r}; "
                f"pass the same flags as the first run (e.g. {flag} {old[key]}) or another --storage"
            )


def forget_searches(out: Path, searchers: Sequence[str], seeds: Sequence[int]) -> list[Path]:
    """Delete everything the (searcher, seed) searches left in the experiment ``out`` -- the
    Tune experiment ``<searcher>-seed<k>/``, its ``searches/*.done`` marker, its Parquet parts
    ``epochs|trials/searcher=<s>/seed=<k>/`` and S2E's ``<searcher>/seed=<k>/`` history -- so a
    ``--resume`` runs those searches again from scratch.  Other searchers' files are not
    touched; ``trials.parquet``, ``summary.parquet`` and the plots are rebuilt from the parts
    by the run.  Returns the paths removed."""
    removed = []
    for searcher in searchers:
        for seed in seeds:
            label = f"{searcher}-seed{seed}"
            for path in (
                out / "searches" / f"{label}.done",
                out / label,
                out / searcher / f"seed={seed}",
                out / "epochs" / f"searcher={searcher}" / f"seed={seed}",
                out / "trials" / f"searcher={searcher}" / f"seed={seed}",
            ):
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
                else:
                    continue
                removed.append(path)
    return removed


def record_rerun(out: Path, cfg: ExperimentConfig, searchers: Sequence[str], when: str, sha: str) -> None:
    """Note a ``--rerun`` in the experiment's ``manifest.json``: the searchers, date and commit,
    and the new values of the keys only those searchers read (``SEARCHER_KEYS``)."""
    path = out / "manifest.json"
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
    write_json(path, manifest, indent=2)


# ------------------------------------------------------------------------------ reference rows
def run_references(cfg: ExperimentConfig, out: Path, quiet: bool = False) -> pd.DataFrame:
    """Co-teaching's default schedule and standard training, one full-length run per seed on the
    seed's data (the data every searcher of that seed saw), in this process.  Cached in
    ``out/reference.parquet``; rows already there (same epochs) are not rerun."""
    from noisylabels.data import prepare
    from noisylabels.spaces import coteaching_default
    from trainables.engine import Trainer

    path = out / REFERENCE_FILE
    have = pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=["kind", "seed", "epochs"])
    rows = [r for r in have.to_dict("records") if int(r["epochs"]) == cfg.epochs]
    done = {(r["kind"], int(r["seed"])) for r in rows}
    for seed in cfg.seeds:
        todo = [k for k in REFERENCE_KINDS if (k, seed) not in done]
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


def read_references(out: Path, epochs: int) -> pd.DataFrame:
    path = out / REFERENCE_FILE
    if not path.exists():
        return pd.DataFrame(columns=["kind", "seed", "epochs", "val_acc", "test_acc"])
    df = pd.read_parquet(path)
    return df[df["epochs"] == epochs].reset_index(drop=True)


# ------------------------------------------------------------------------------ analysis
def final_values(eff: Efficiency, budget: float) -> pd.DataFrame:
    """Per (searcher, seed): best-so-far ``val_acc`` and the test accuracy of that trial after
    ``budget`` epochs (rows of ``eff.per_seed`` up to that cost; NaN if no trial had finished)."""
    rows = []
    ps = eff.per_seed
    for (searcher, seed), g in ps.groupby(["searcher", "seed"], sort=True):
        g = g[g["cum_epochs"] <= budget + 1e-9]
        last = g.iloc[-1] if not g.empty else None
        rows.append(
            {
                "searcher": searcher,
                "seed": int(seed),
                "best_val_acc": float(last["best_val_acc"]) if last is not None else math.nan,
                "best_test_acc": float(last["best_test_acc"]) if last is not None else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=["searcher", "seed", "best_val_acc", "best_test_acc"])


def ranks(finals: pd.DataFrame, by: Sequence[str] = ("seed",)) -> pd.DataFrame:
    """``finals`` with a column ``rank``: searchers ranked within each group ``by`` (e.g. one
    (setting, seed)) by ``best_val_acc``, 1 = best; ties share the average rank; NaN (no
    finished trial) ranks last."""
    out = finals.copy()
    if out.empty:
        out["rank"] = pd.Series(dtype=float)
        return out
    out["rank"] = out.groupby(list(by))["best_val_acc"].rank(ascending=False, method="average", na_option="bottom")
    return out


def mean_ranks(finals: pd.DataFrame, by: Sequence[str] = ("seed",)) -> pd.Series:
    """Mean over groups of :func:`ranks`: searcher -> mean rank."""
    r = ranks(finals, by)
    return r.groupby("searcher")["rank"].mean() if not r.empty else pd.Series(dtype=float)


@dataclass
class SettingResult:
    setting: str
    table: pd.DataFrame  # one row per searcher
    finals: pd.DataFrame  # searcher, seed, best_val_acc, best_test_acc (at the full budget)
    references: pd.DataFrame  # kind, seed, val_acc, test_acc


def analyse(
    epochs_df: pd.DataFrame,
    trials_df: pd.DataFrame,
    budget: float,
    full_epochs: int,
    searchers: Sequence[str] | None = None,
    reference: str = REFERENCE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The searcher table of one setting and the per-seed final values behind its ranks.

    Table columns: ``searcher, seeds, trials`` (mean per seed), ``val_25, val_25_se, val_50,
    val_50_se, val_100, val_100_se`` (best-so-far ``val_acc`` at that % of ``budget``, mean and
    s.e. over seeds), ``test_25 ... test_100_se`` (test accuracy of the trial holding it),
    ``match`` (budget fraction at which the mean first reaches ``reference``'s final mean; NaN
    if never in the data) and ``rank`` (mean rank over seeds).  ``searchers``: rows to show, in
    this order (missing ones get NaN); default: those in the data.
    """
    eff = search_efficiency(epochs_df, full_epochs=full_epochs, x_max={"epochs": budget})
    names = list(searchers) if searchers is not None else eff.searchers
    if eff.per_seed.empty:
        return pd.DataFrame({"searcher": names}), final_values(eff, budget)
    bv = budget_values(eff, budget, fractions=BUDGET_FRACTIONS)
    match = budget_to_match(eff, reference, budget).set_index("searcher")["fraction"]
    finals = final_values(eff, budget)
    mr = mean_ranks(finals)
    per_seed = per_seed_table(trials_df, full_epochs) if trials_df is not None and not trials_df.empty else None
    rows = []
    for s in names:
        row: dict[str, Any] = {"searcher": s, "seeds": int((finals["searcher"] == s).sum())}
        mine = per_seed[per_seed["searcher"] == s] if per_seed is not None else pd.DataFrame()
        row["trials"] = float(mine["trials"].mean()) if not mine.empty else math.nan
        row["epochs"] = float(mine["epochs_used"].mean()) if not mine.empty else math.nan
        for f in BUDGET_FRACTIONS:
            sel = bv[(bv["searcher"] == s) & np.isclose(bv["fraction"], f)]
            p = round(f * 100)
            first = sel.iloc[0] if not sel.empty else None
            for col, src in (("val", "val_mean"), ("test", "test_mean")):
                row[f"{col}_{p}"] = float(first[src]) if first is not None else math.nan
                row[f"{col}_{p}_se"] = float(first[src.replace("_mean", "_se")]) if first is not None else math.nan
        row["match"] = float(match.get(s, math.nan))
        row["diff"], row["diff_se"] = paired_difference(finals, s, reference)
        row["rank"] = float(mr.get(s, math.nan))
        rows.append(row)
    return pd.DataFrame(rows), finals


def paired_difference(finals: pd.DataFrame, searcher: str, reference: str = REFERENCE) -> tuple[float, float]:
    """Mean and standard error over seeds of ``best_val_acc(searcher) - best_val_acc(reference)``
    at the full budget, paired by seed (each seed's data, noise draw and initialisation are shared
    by both searchers, so the pairing removes the seed-to-seed spread).  NaN for the reference
    itself, or when the two share fewer than two seeds."""
    if searcher == reference:
        return math.nan, math.nan
    f = finals.pivot_table(index="seed", columns="searcher", values="best_val_acc")
    if searcher not in f or reference not in f:
        return math.nan, math.nan
    d = (f[searcher] - f[reference]).dropna()
    if len(d) < 2:
        return math.nan, math.nan
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def analyse_setting(args: BenchArgs, setting: str) -> SettingResult:
    """Read one setting's Parquet results (and reference rows) back and analyse them."""
    from results.store import Store
    from results.tables import build_trials, read_epochs

    out = experiment_dir(args, setting)
    if not (out / "epochs").exists():
        raise UserError(f"no results for {setting} at {out}; run the benchmark first (or check --storage)")
    store = Store.from_uri(str(out))
    epochs_df = read_epochs(store)
    trials_df = build_trials(store)
    epochs_df = epochs_df[epochs_df["seed"].isin(args.seeds) & epochs_df["searcher"].isin(args.searchers)]
    trials_df = trials_df[trials_df["seed"].isin(args.seeds) & trials_df["searcher"].isin(args.searchers)]
    table, finals = analyse(
        epochs_df,
        trials_df,
        budget=float(args.trials * args.epochs),
        full_epochs=args.epochs,
        searchers=order_searchers(args.searchers),
    )
    refs = read_references(out, args.epochs)
    refs = refs[refs["seed"].isin(args.seeds)] if not refs.empty else refs
    return SettingResult(setting, table, finals, refs)


# ------------------------------------------------------------------------------ Markdown
def pm(mean: float, se: float, digits: int = 4, signed: bool = False) -> str:
    if mean is None or pd.isna(mean):
        return "–"
    s = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return s + (f" ± {se:.{digits}f}" if se is not None and not pd.isna(se) else "")


def fmt_fraction(f: float) -> str:
    """A budget fraction as a percentage; ``–`` when the target was not reached within the budget."""
    if f is None or pd.isna(f) or f > 1 + 1e-9:
        return "–"
    return f"{100 * f:.0f} %"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A GitHub Markdown table with padded columns (readable as plain text too)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    align = align or "l" + "r" * (len(header) - 1)
    out = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    out.append(
        "|"
        + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align, strict=True))
        + "|"
    )
    for r in rows:
        cells = [str(c).rjust(w) if a == "r" else str(c).ljust(w) for c, w, a in zip(r, widths, align, strict=True)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


SETTING_TITLES = {"sym-20": "symmetric 20 %", "sym-50": "symmetric 50 %", "pair-45": "pair 45 %"}


def setting_markdown(res: SettingResult, noise_rate: float, epochs: int, digits: int = 4) -> str:
    header = [
        "searcher",
        "trials",
        "epochs",
        "val 25 %",
        "val 50 %",
        "val 100 %",
        "test 25 %",
        "test 50 %",
        "test 100 %",
        f"match {REFERENCE}",
        f"Δ val vs {REFERENCE}",
        "mean rank",
    ]
    rows = []
    for r in res.table.to_dict("records"):
        rows.append(
            [r["searcher"]]
            + ["–" if pd.isna(r.get(c, math.nan)) else f"{r[c]:.1f}" for c in ("trials", "epochs")]
            + [pm(r.get(f"val_{p}"), r.get(f"val_{p}_se"), digits) for p in (25, 50, 100)]
            + [pm(r.get(f"test_{p}"), r.get(f"test_{p}_se"), digits) for p in (25, 50, 100)]
            + [fmt_fraction(r.get("match"))]
            + [pm(r.get("diff"), r.get("diff_se"), digits, signed=True) if not pd.isna(r.get("diff")) else ""]
            + ["–" if pd.isna(r.get("rank", math.nan)) else f"{r['rank']:.2f}"]
        )
    for kind, title in REFERENCE_KINDS.items():
        g = res.references[res.references["kind"] == kind] if not res.references.empty else res.references
        if g.empty:
            continue
        label = title + (f" (tau {noise_rate:g}, c 1, T_k 10)" if kind == "coteaching-default" else "")
        rows.append(
            [
                label,
                "1",
                str(epochs),
                "",
                "",
                pm(g["val_acc"].mean(), _se(g["val_acc"]), digits),
                "",
                "",
                pm(g["test_acc"].mean(), _se(g["test_acc"]), digits),
                "",
                "",
                "",
            ]
        )
    return md_table(header, rows)


def _se(x: pd.Series) -> float:
    x = pd.Series(x).dropna()
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def rank_markdown(results: Sequence[SettingResult], searchers: Sequence[str]) -> str:
    """Mean rank per setting and over all (setting, seed) pairs."""
    finals = pd.concat([r.finals.assign(setting=r.setting) for r in results], ignore_index=True)
    overall = mean_ranks(finals, by=("setting", "seed")) if not finals.empty else pd.Series(dtype=float)
    per = {r.setting: mean_ranks(r.finals) for r in results}

    def cell(s: pd.Series, name: str) -> str:
        v = s.get(name, math.nan)
        return "–" if pd.isna(v) else f"{v:.2f}"

    rows = [[s, *(cell(per[r.setting], s) for r in results), cell(overall, s)] for s in order_searchers(searchers)]
    return md_table(["searcher", *(r.setting for r in results), "all"], rows)


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kb = int(next(ln for ln in meminfo if ln.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}){mem}, {platform.system()} {platform.release()}"


def loadavg() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def versions() -> str:
    import importlib.metadata as md

    out = [f"Python {platform.python_version()}"]
    for pkg in ("torch", "ray"):
        try:
            out.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(out)


DISPLAY_NAMES = {"s2e": "S2E", "bo": "BO", "tpe": "TPE", "hyperband": "Hyperband", "asha": "ASHA", "bohb": "BOHB"}


def title(searchers: Sequence[str]) -> str:
    """``S2E vs random, BO and TPE``: the searchers of the benchmark, S2E first when present."""
    names = [DISPLAY_NAMES.get(s, s) for s in searchers]
    if "S2E" in names and len(names) > 1:
        rest = [n for n in names if n != "S2E"]
        return "S2E vs " + (", ".join(rest[:-1]) + " and " + rest[-1] if len(rest) > 1 else rest[0])
    return ", ".join(names)


def document(args: BenchArgs, results: Sequence[SettingResult], meta: dict[str, Any], data_info: dict | None) -> str:
    """The Markdown of the whole benchmark: header (command, date, machine, commit, budget) and
    one table per setting, then the mean ranks."""
    budget = args.trials * args.epochs
    seeds = ",".join(map(str, args.seeds))
    if data_info:
        data = (
            f"MNIST-1D, {args.mnist1d_samples:,} signals: {data_info.get('n_train', '?'):,} train / "
            f"{data_info.get('n_val', '?'):,} validation (noisy labels: the objective) / "
            f"{data_info.get('n_test', '?'):,} clean test"
        )
    else:
        data = f"MNIST-1D, {args.mnist1d_samples:,} signals, 10 % of the noisy training set held out for validation"
    wall = meta.get("wall_s")
    lines = [
        f"### Results: {title(args.searchers)} on MNIST-1D",
        "",
        "<!-- generated by python -m s2e_tune.bench search: regenerate it, do not edit by hand -->",
        "",
        "```bash",
        meta.get("command", "python -m s2e_tune.bench search"),
        "```",
        "",
        f"- date: {meta.get('finished') or meta.get('started') or '?'}"
        + (f"; wall time {wall / 60:.0f} min" if wall else "")
        + (f" over {meta['invocations']} invocations (--resume)" if (meta.get("invocations") or 1) > 1 else "")
        + (f" (load average at start {meta['loadavg_start']}, 1/5/15 min)" if meta.get("loadavg_start") else ""),
        f"- machine: {meta.get('machine', machine_line())}; {meta.get('versions', versions())}",
        f"- commit: {meta.get('commit') or commit()}",
        *[
            f"- rerun (`--rerun {','.join(r['searchers'])}`): {r.get('finished') or r.get('started') or '?'}"
            + (f", wall time {r['wall_s'] / 60:.0f} min" if r.get("wall_s") else "")
            + f", commit {r.get('commit') or '?'}: the rows of {', '.join(r['searchers'])} come from this run"
            for r in meta.get("reruns") or []
        ],
        f"- budget: {args.trials} trials x {args.epochs} epochs = {budget} epochs per searcher and seed "
        "(Hyperband, ASHA and BOHB spend the same epochs on more, shorter trials); "
        f"seeds {seeds} (each seed: its own noise draw, split and initialisation, shared by every searcher)",
        f"- data: {data}; 1-D CNN, batch 128, Adam 1e-3; Co-teaching, R(t) searched in the `{args.space}` space"
        f" (S2E: K = {args.samples_per_round} trials per round)",
        f"- results: `{args.storage}/<setting>/` (Parquet `epochs/`, `trials.parquet`, `summary.parquet`, "
        "`manifest.json`, `plots/`), reference rows in `<setting>/reference.parquet`",
        "",
        "Columns (mean ± standard error over seeds):",
        "",
        "- val N %: best-so-far `val_acc` (noisy validation labels, last epoch of a full-length trial) after "
        "N % of the epoch budget; test N %: clean test accuracy of the trial holding it; – : in some seed no "
        "full-length trial had finished yet (the mean needs every seed).",
        f"- Δ val vs {REFERENCE}: the searcher's best `val_acc` at the full budget minus {REFERENCE} search's, "
        "paired by seed (mean ± s.e. of the per-seed differences); a difference within about two standard "
        "errors of 0 is not resolved by these seeds.",
        f"- match {REFERENCE}: the budget fraction at which the searcher's mean first reaches {REFERENCE} "
        "search's final mean; – : not within the budget.",
        "- mean rank: searchers ranked per (setting, seed) by best `val_acc` at the full budget (1 = best, ties "
        "averaged), averaged over seeds. trials, epochs: trials run and epochs used per seed (BO may stop "
        "early; Hyperband, ASHA and BOHB may overshoot by the epochs of trials still running at the budget, "
        "which are not counted in val/test 100 %).",
        f"- ref rows: no search; one full-length run ({args.epochs} epochs) per seed on the same data; final "
        "`val_acc` and test accuracy.",
        "",
    ]
    for res in results:
        noise, rate = SETTINGS[res.setting]
        lines += [
            f"#### {res.setting} ({SETTING_TITLES.get(res.setting, res.setting)})",
            "",
            setting_markdown(res, rate, args.epochs),
            "",
        ]
    if len(results) > 1:
        lines += ["#### Mean rank by setting and over all settings", "", rank_markdown(results, args.searchers), ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_section(text: str, body: str, where: str = "the file") -> str:
    """``text`` with the part between the bench-search markers (markers included) replaced by
    the markers around ``body``; the markers are appended at the end when ``text`` has none."""
    block = f"{START_MARK}\n{body.strip()}\n{END_MARK}"
    n_start, n_end = text.count(START_MARK), text.count(END_MARK)
    if n_start == 0 and n_end == 0:
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + block + "\n"
    i, j = text.find(START_MARK), text.find(END_MARK)
    if n_start != 1 or n_end != 1 or j < i:
        raise UserError(f"{where} must hold {START_MARK} once, followed by {END_MARK} once; fix the markers")
    return text[:i] + block + text[j + len(END_MARK) :]


def update_benchmarks(path: str | os.PathLike, body: str) -> None:
    p = Path(path)
    text = p.read_text() if p.exists() else ""
    new = replace_section(text, body, where=str(p))
    if new != text:
        p.write_text(new)


# ------------------------------------------------------------------------------ main
def command_line(argv: Sequence[str]) -> str:
    return "python -m s2e_tune.bench search" + ("" if not argv else " " + shlex.join(argv))


def load_meta(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / META_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_json(path: Path, obj: Any, indent: int = 1) -> None:
    """Write ``obj`` as JSON through a temporary file and a rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=indent, default=str) + "\n")
    os.replace(tmp, path)


def save_meta(root: Path, meta: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / META_FILE, meta)


def commit() -> str:
    """The short commit of the source tree, ``-dirty`` when tracked files have changes."""
    from results.manifest import git_commit

    full = git_commit()
    if not full:
        return git_sha()
    sha, _, dirty = full.partition("-")
    return sha[:7] + (f"-{dirty}" if dirty else "")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class WallClock:
    """Adds this invocation's elapsed time to ``target["wall_s"]`` (``target``: ``meta`` itself,
    or a record inside it such as a rerun's) and saves the metadata every ``every`` seconds and
    on :meth:`save`, so a killed run loses at most ``every`` seconds of it."""

    def __init__(
        self, root: Path, meta: dict[str, Any], target: dict[str, Any] | None = None, every: float = 30.0
    ) -> None:
        self.root, self.meta, self.every = root, meta, every
        self.target = meta if target is None else target
        self.base = float(self.target.get("wall_s") or 0.0)
        self.t0 = time.perf_counter()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        while not self.done.wait(self.every):
            self.save()

    def save(self, **changes: Any) -> None:
        with self.lock:
            self.meta.update(changes)
            self.target["wall_s"] = self.base + time.perf_counter() - self.t0
            save_meta(self.root, self.meta)

    def __enter__(self) -> WallClock:
        self.save()
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        self.thread.join()
        self.save()


def run_benchmark(args: BenchArgs, argv: Sequence[str]) -> str:
    root = Path(args.storage).resolve()
    cfgs = {}
    for setting in args.settings:  # every check before anything runs
        out = experiment_dir(args, setting)
        manifest = read_manifest(out)
        if manifest is not None and not (args.resume or args.report_only):
            raise UserError(
                f"results for {setting} already exist at {out}; pass --resume to continue them, "
                "--report-only to tabulate them, or another --storage"
            )
        resume = args.resume and manifest is not None
        cfg = setting_config(args, setting, resume=resume)
        if manifest is not None:
            check_same_budget(cfg, manifest, out, args.rerun)
        cfgs[setting] = cfg
    meta = load_meta(root)
    if not args.report_only:
        sha = commit()
        meta = {
            **meta,
            "command": meta.get("command") if args.resume and meta.get("command") else command_line(argv),
            "started": meta.get("started") if args.resume and meta.get("started") else now(),
            "loadavg_start": meta.get("loadavg_start") if args.resume and meta.get("loadavg_start") else loadavg(),
            "machine": machine_line(),
            "versions": versions(),
            # a rerun keeps the first run's commit; its own goes into its record below
            "commit": meta.get("commit") if args.rerun and meta.get("commit") else sha,
        }
        if not args.resume:
            meta["wall_s"] = 0.0
        target = meta
        if args.rerun:
            # the first run's wall time stays; the rerun gets its own record
            target = {"searchers": list(args.rerun), "started": now(), "commit": sha, "wall_s": 0.0}
            meta.setdefault("reruns", []).append(target)
            for setting, cfg in cfgs.items():
                out = experiment_dir(args, setting)
                if read_manifest(out) is None:
                    continue  # nothing there yet: the searches run the first time
                removed = forget_searches(out, args.rerun, args.seeds)
                record_rerun(out, cfg, args.rerun, target["started"], target["commit"])
                if not args.quiet:
                    print(f"--rerun: removed {len(removed)} paths of {', '.join(args.rerun)} in {out}", flush=True)
        else:
            meta["invocations"] = int(meta.get("invocations") or 0) + 1
        from s2e_tune.experiment import run_experiment

        with WallClock(root, meta, target) as clock:
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
                target.update(finished=now(), loadavg_end=loadavg())  # the run's, or the rerun's record
                clock.save()
    results = [analyse_setting(args, s) for s in args.settings]
    first = read_manifest(experiment_dir(args, args.settings[0])) or {}
    data_info = next(iter((first.get("data") or {}).values()), None)
    doc = document(args, results, meta, data_info)
    (root / MARKDOWN_FILE).write_text(doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> None:
        args = parse_args(argv)
        doc = run_benchmark(args, argv)
        print()
        print(doc, end="")
        root = Path(args.storage).resolve()
        print(f"\nwritten: {root / MARKDOWN_FILE}")
        if args.update_benchmarks:
            update_benchmarks(args.update_benchmarks, doc)
            print(f"updated: {args.update_benchmarks} (between {START_MARK} and {END_MARK})")

    return run_cli(body, "interrupted; continue with the same flags and --resume")


if __name__ == "__main__":
    sys.exit(main())
