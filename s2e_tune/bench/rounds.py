"""``python -m s2e_tune.bench rounds``: does S2E's sampling distribution learn, and with which K?

The search benchmark (``bench search``) measures what a user gets: the best trial
within a budget, through Ray Tune.  This one looks inside S2E, in one process
(no Ray; the same data, model and trainer as ``bench search`` for a setting and
seed), on the real objective -- Co-teaching's final ``val_acc`` for an R(t)
drawn from the ``s2e`` space (Table 1):

* every (setting, seed) runs random search and S2E with each ``K`` of
  ``--samples-per-round`` for ``--trials`` sequential evaluations (Algorithm 2
  with ``M = trials / K`` rounds); each run is cached as JSON in ``--out``, so
  an interrupted benchmark resumes where it stopped;
* it prints, per setting and searcher (mean ± s.e. over seeds), the best
  ``val_acc`` after 25, 50 and 100 % of the trials, its paired difference to
  random search, and the mean ``val_acc`` of the first and of the last quarter
  of the samples: the quality of what p_theta draws, which S2E is meant to
  raise round after round and random search cannot;
* a *landscape* line per setting, from random search's uniform samples: the
  share of the within-seed variance of ``val_acc`` that a quadratic in one
  number, the mean keep ratio R over epochs 2..T, explains, against a linear
  model in the 20 raw parameters; and the mean R at the quadratic's optimum;
* a *gradient* line per setting: at theta^1 (uniform) the natural-gradient
  direction ``F^{-1} grad J`` (Algorithm 2, step 6) estimated from K random
  samples, against the estimate from all of a seed's samples (mean cosine),
  and the all-sample directions of different seeds against each other.  A
  cosine near 0 means the step of one round is mostly sampling noise.

Seeds default to 100-104, disjoint from ``bench search``'s 0-4: use this
benchmark to choose S2E's settings, and ``bench search`` to measure them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noisylabels.data import prepare
from noisylabels.errors import UserError, run_cli
from noisylabels.schedules import keep_ratio_curve
from noisylabels.spaces import get_space
from results.stats import mean_se, pm
from s2e_tune.bench.common import ALL_SETTINGS, SETTINGS, command_line, md_table, setting_config
from s2e_tune.config import ExperimentConfig
from searchers import S2E, FloatParam, ProductBeta, estimate_gradient, utility_transform
from trainables.engine import Trainer

SETTINGS_DEFAULT = ALL_SETTINGS
SEEDS_DEFAULT = (100, 101, 102, 103, 104)
FRACTIONS = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class RoundsArgs:
    settings: tuple[str, ...]
    seeds: tuple[int, ...]
    trials: int
    ks: tuple[int, ...]
    epochs: int
    mnist1d_samples: int
    space: str
    data_dir: str | None
    out: Path
    quiet: bool


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UserError(f"{message}; see python -m s2e_tune.bench rounds --help")


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(dict.fromkeys(int(v) for v in text.split(",") if v.strip()))
    except ValueError:
        raise UserError(f"{flag} takes a comma list of integers, got {text!r}") from None
    if not values:
        raise UserError(f"{flag} is empty; pass e.g. {flag} 2,4")
    return values


def parse_args(argv: Sequence[str] | None) -> RoundsArgs:
    p = _Parser(
        prog="python -m s2e_tune.bench rounds",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--settings", default=",".join(SETTINGS_DEFAULT), help="comma list [%(default)s]")
    p.add_argument("--seeds", default=",".join(map(str, SEEDS_DEFAULT)), help="comma list [%(default)s]")
    p.add_argument("--trials", type=int, default=16, help="evaluations per run [%(default)s]")
    p.add_argument("--samples-per-round", default="2,4", help="S2E's K, comma list [%(default)s]")
    p.add_argument("--epochs", type=int, default=8, help="epochs per evaluation [%(default)s]")
    p.add_argument("--mnist1d-samples", type=int, default=4000, help="MNIST-1D signals [%(default)s]")
    p.add_argument("--space", default="s2e", help="R(t) search space [%(default)s]")
    p.add_argument("--data-dir", default=None, help="where MNIST-1D is cached [~/.cache/s2e-tune/data]")
    p.add_argument("--out", default="bench-rounds", help="one JSON per run; reused on a rerun [%(default)s]")
    p.add_argument("--quiet", action="store_true", help="no line per evaluation")
    a = p.parse_args(argv)
    settings = tuple(dict.fromkeys(s.strip() for s in a.settings.split(",") if s.strip()))
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings:
        raise UserError(f"unknown setting {bad[0] if bad else ''!r}; use a comma list of {', '.join(SETTINGS)}")
    ks = _ints(a.samples_per_round, "--samples-per-round")
    if any(k < 2 for k in ks):
        raise UserError("--samples-per-round: S2E needs K >= 2 samples per round")
    if a.trials < 4 or any(a.trials % k for k in ks):
        raise UserError(f"--trials {a.trials}: need >= 4 and a multiple of every K ({', '.join(map(str, ks))})")
    if a.epochs < 1 or a.mnist1d_samples < 100:
        raise UserError("need --epochs >= 1 and --mnist1d-samples >= 100")
    get_space(a.space)
    return RoundsArgs(
        settings=settings,
        seeds=_ints(a.seeds, "--seeds"),
        trials=a.trials,
        ks=ks,
        epochs=a.epochs,
        mnist1d_samples=a.mnist1d_samples,
        space=a.space,
        data_dir=a.data_dir,
        out=Path(a.out),
        quiet=a.quiet,
    )


def searcher_names(args: RoundsArgs) -> list[str]:
    return ["random", *(f"s2e-k{k}" for k in args.ks)]


def run_path(args: RoundsArgs, setting: str, seed: int, searcher: str) -> Path:
    return args.out / f"{setting}-seed{seed}-{searcher}-{args.trials}x{args.epochs}.json"


# ------------------------------------------------------------------------------ running
def experiment_config(args: RoundsArgs, setting: str, seed: int) -> ExperimentConfig:
    """The run command's configuration of (setting, seed), as ``bench search`` makes it: same
    data, split, model and trainer."""
    return setting_config(
        setting,
        seeds=(seed,),
        epochs=args.epochs,
        mnist1d_samples=args.mnist1d_samples,
        space=args.space,
        data_dir=args.data_dir,
    )


def run_one(args: RoundsArgs, cfg: ExperimentConfig, seed: int, searcher: str, data: Any) -> list[dict[str, Any]]:
    """``args.trials`` sequential evaluations of one searcher; each row: ``val_acc``,
    ``test_acc`` and the configuration in unit coordinates ``u`` (the S2E core's own)."""
    space = get_space(args.space)
    params = [FloatParam(p.name, p.low, p.high, p.log) for p in space.params]

    def evaluate(config: dict[str, float]) -> tuple[float, float]:
        trainer = Trainer({**cfg.train_config(seed), "method": "coteaching", **space.fixed, **config}, data)
        for _ in range(cfg.epochs):
            last = trainer.train_epoch()
        return float(last["val_acc"]), float(last["test_acc"])

    rng = np.random.default_rng(1000 + seed)  # random search's own stream, from the seed
    s2e = S2E(params, samples_per_round=int(searcher[5:]), seed=seed, maximize=True) if searcher != "random" else None
    rows = []
    for i in range(args.trials):
        if s2e is not None:
            config = s2e.ask()
            token = s2e.last_token
        else:
            config = {p.name: p.from_unit(rng.uniform()) for p in params}
        val, test = evaluate(config)
        if s2e is not None:
            s2e.tell(token, val)
        rows.append({"val_acc": val, "test_acc": test, "u": [p.to_unit(config[p.name]) for p in params]})
        if not args.quiet:
            print(f"[{cfg.name} seed {seed} {searcher}] {i + 1}/{args.trials}: val_acc {val:.4f}", flush=True)
    return rows


def run_all(args: RoundsArgs) -> dict[tuple[str, int, str], list[dict[str, Any]]]:
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for setting, seed in itertools.product(args.settings, args.seeds):
        cfg = data = None
        for searcher in searcher_names(args):
            path = run_path(args, setting, seed, searcher)
            if path.exists():
                runs[setting, seed, searcher] = json.loads(path.read_text())
                continue
            if cfg is None:
                cfg = experiment_config(args, setting, seed)
                data = prepare(cfg.data_spec(seed))
            rows = run_one(args, cfg, seed, searcher, data)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows))
            tmp.replace(path)  # a killed run leaves no half file
            runs[setting, seed, searcher] = rows
    return runs


# ------------------------------------------------------------------------------ analysis
def summarise(runs: dict[tuple[str, int, str], list[dict[str, Any]]], setting: str, names: Sequence[str]) -> list[dict]:
    """One row per searcher: best val_acc at each fraction of the trials, paired difference to
    random at 100 %, mean val_acc of the first and the last quarter of the samples."""
    seeds = sorted({s for (st, s, _) in runs if st == setting})
    out = []
    for name in names:
        have = [s for s in seeds if (setting, s, name) in runs]
        vals = {s: np.array([r["val_acc"] for r in runs[setting, s, name]]) for s in have}
        if not vals:
            continue
        n = len(next(iter(vals.values())))
        q = max(n // 4, 1)
        row: dict[str, Any] = {"searcher": name, "seeds": len(vals)}
        for f in FRACTIONS:
            row[f"best_{round(f * 100)}"] = mean_se([v[: max(round(f * n), 1)].max() for v in vals.values()])
        row["first_q"] = mean_se([v[:q].mean() for v in vals.values()])
        row["last_q"] = mean_se([v[-q:].mean() for v in vals.values()])
        paired = [
            vals[s].max() - max(r["val_acc"] for r in runs[setting, s, "random"])
            for s in vals
            if (setting, s, "random") in runs
        ]
        row["diff"] = mean_se(paired) if name != "random" else (math.nan, math.nan)
        out.append(row)
    return out


def mean_keep_ratio(u: Sequence[float], space_name: str, epochs: int) -> float:
    """Mean R over epochs 2..T of the schedule at unit point ``u`` (epoch 1 always keeps all)."""
    space = get_space(space_name)
    config = {**space.fixed}
    for p, ui in zip(space.params, u, strict=True):
        config[p.name] = FloatParam(p.name, p.low, p.high, p.log).from_unit(ui)
    curve = keep_ratio_curve(config, epochs)
    return float(curve[1:].mean()) if epochs > 1 else float(curve.mean())


def landscape(
    runs: dict[tuple[str, int, str], list[dict[str, Any]]], setting: str, space: str, epochs: int
) -> dict[str, float]:
    """From random search's uniform samples: the share of the within-seed variance of
    ``val_acc`` explained by a quadratic in the mean keep ratio, and by a linear model in the raw
    unit parameters (both with one intercept per seed), and the mean keep ratio at the
    quadratic's maximum (NaN if it opens upwards)."""
    ys, seeds, ms, us = [], [], [], []
    for (st, seed, name), rows in sorted(runs.items()):
        if st != setting or name != "random":
            continue
        ys += [r["val_acc"] for r in rows]
        seeds += [seed] * len(rows)
        ms += [mean_keep_ratio(r["u"], space, epochs) for r in rows]
        us += [r["u"] for r in rows]
    if not ys:
        return {"n": 0, "r2_mean_r": math.nan, "r2_linear": math.nan, "best_mean_r": math.nan}
    y, m, u = np.array(ys), np.array(ms), np.array(us)
    dummies = (np.array(seeds)[:, None] == np.unique(seeds)[None, :]).astype(float)
    within = y - dummies @ np.linalg.lstsq(dummies, y, rcond=None)[0]  # y minus its seed's mean

    def fit(x: np.ndarray) -> tuple[np.ndarray, float]:
        x = np.c_[dummies, x]
        if len(y) <= x.shape[1] or np.var(within) == 0:
            return np.full(x.shape[1], math.nan), math.nan
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        return beta, float(1.0 - np.var(y - x @ beta) / np.var(within))

    beta, r2_quad = fit(np.c_[m, m * m])
    b1, b2 = beta[-2], beta[-1]
    return {
        "n": int(len(y)),
        "r2_mean_r": r2_quad,
        "r2_linear": fit(u)[1],
        "best_mean_r": float(-b1 / (2 * b2)) if b2 < 0 else math.nan,
    }


def gradient_agreement(
    runs: dict[tuple[str, int, str], list[dict[str, Any]]], setting: str, k: int, draws: int = 200
) -> dict[str, float]:
    """At theta^1 (uniform), the natural-gradient direction from ``k`` of a seed's random
    samples against the one from all of them (mean cosine over ``draws`` random subsets and
    seeds), and all-sample directions of different seeds against each other (mean cosine)."""
    rng = np.random.default_rng(0)
    full, sub = [], []
    for (st, _seed, name), rows in sorted(runs.items()):
        if st != setting or name != "random":
            continue
        x = np.clip(np.array([r["u"] for r in rows]), 1e-7, 1 - 1e-7)
        cost = -np.array([r["val_acc"] for r in rows])
        d_all = natural_direction(x, cost)
        full.append(d_all)
        for _ in range(draws):
            idx = rng.choice(len(rows), size=k, replace=False)
            sub.append(_cos(natural_direction(x[idx], cost[idx]), d_all))
    across = [_cos(a, b) for a, b in itertools.combinations(full, 2)]
    return {"k_vs_all": mean_se(sub)[0], "across_seeds": mean_se(across)[0], "seeds": len(full)}


def natural_direction(x: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """``-F^{-1} grad J`` at theta^1 (uniform) from samples ``x`` and their costs, with the
    rank utilities S2E uses (Algorithm 2, step 6; ``searchers``)."""
    dist = ProductBeta.uniform(x.shape[1])
    g = estimate_gradient(dist.score(x), utility_transform(cost, "rank"))
    return -np.linalg.solve(dist.fisher(), g)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else math.nan


def _pm(ms: tuple[float, float], signed: bool = False) -> str:
    """The mean ± s.e. cell (``results.stats.pm``); empty where there is no value (random against itself)."""
    return "" if math.isnan(ms[0]) else pm(*ms, signed=signed)


def report(args: RoundsArgs, runs: dict[tuple[str, int, str], list[dict[str, Any]]], argv: Sequence[str]) -> str:
    names = searcher_names(args)
    lines = [
        "```bash",
        command_line("rounds", argv),
        "```",
        "",
        f"{args.trials} evaluations x {args.epochs} epochs per run, seeds {','.join(map(str, args.seeds))}, "
        f"MNIST-1D {args.mnist1d_samples:,} signals, `{args.space}` space; mean ± s.e. over seeds.",
        "",
    ]
    for setting in args.settings:
        rows = summarise(runs, setting, names)
        header = ["searcher", "best 25 %", "best 50 %", "best 100 %", "Δ vs random", "first quarter", "last quarter"]
        body = [
            [r["searcher"], *(_pm(r[f"best_{p}"]) for p in (25, 50, 100)), _pm(r["diff"], True)]
            + [_pm(r["first_q"]), _pm(r["last_q"])]
            for r in rows
        ]
        lines += [f"#### {setting}", "", md_table(header, body), ""]
        land = landscape(runs, setting, args.space, args.epochs)
        lines.append(
            f"- landscape ({land['n']} uniform samples): a quadratic in the mean keep ratio explains "
            f"{land['r2_mean_r']:.2f} of the within-seed variance of val_acc, a linear model in the raw "
            f"parameters {land['r2_linear']:.2f}; best mean keep ratio {land['best_mean_r']:.2f}"
        )
        for k in args.ks:
            g = gradient_agreement(runs, setting, k)
            lines.append(
                f"- gradient at theta^1, K = {k}: cosine to the all-sample direction {g['k_vs_all']:.2f}; "
                f"all-sample directions across {g['seeds']} seeds: {g['across_seeds']:.2f}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> None:
        args = parse_args(argv)
        runs = run_all(args)
        print()
        print(report(args, runs, argv), end="")

    return run_cli(body, "interrupted; run the same command again to continue (finished runs are kept)")


if __name__ == "__main__":
    sys.exit(main())
