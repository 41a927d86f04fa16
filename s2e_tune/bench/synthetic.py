"""Synthetic benchmark: S2E against random search on noisy test functions.

Run as ``python -m s2e_tune.bench synthetic [--seeds N] [--budget B] [--noise S]
[--samples-per-round K]``.  No Ray, no GPU, no training.

Objectives, both on the unit cube and minimised, each seed drawing its own
optimum ``c`` uniformly in ``[0.2, 0.8]^d`` (so no method can exploit a fixed
location such as the centre):

* ``quadratic``: 12-d shifted ellipsoid ``sum_i w_i (x_i - c_i)^2`` with
  ``w_i`` log-spaced from 1 to 10 (condition number 10), minimum 0;
* ``rastrigin``: 6-d shifted Rastrigin ``sum_i z_i^2 + 10 (1 - cos 2 pi z_i)``,
  ``z = 5.12 (x - c)``, minimum 0, about 5^6 local minima in the box.

Each evaluation returns ``f(x) + noise * scale * N(0, 1)`` (``scale`` = the
objective's standard deviation under uniform sampling, so ``--noise`` is
relative).  The reported number is the *true* (noise-free) value of the
incumbent, i.e. of the evaluated point with the best *observed* value so far:
what a user of either method would actually deploy.  The table gives its mean
and standard error over seeds at several fractions of the budget.

The default budget of 320 evaluations (40 rounds of K = 8) prints columns at
80, 160, 240 and 320; BENCHMARKS.md ("S2E against random search on synthetic
objectives") has what they measured.

Methods: ``random`` (uniform sampling), ``s2e`` (the default S2E: Newton step
of Proposition 1 / Algorithm 2 with damping and trust region) and, to show what
the second-order step adds, ``s2e-grad`` (same utilities and trust region, but
a plain first-order gradient step) and ``s2e-natural`` (natural gradient).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from searchers import S2E, FloatParam

__all__ = ["Objective", "OBJECTIVES", "METHODS", "run_method", "run_benchmark", "main"]


@dataclass(frozen=True)
class Objective:
    """A noise-free test function on ``[0, 1]^dim`` built per seed."""

    name: str
    dim: int
    make: Callable[[np.random.Generator], Callable[[np.ndarray], float]]


def _make_quadratic(dim: int) -> Callable[[np.random.Generator], Callable[[np.ndarray], float]]:
    w = np.logspace(0.0, 1.0, dim)

    def make(rng: np.random.Generator) -> Callable[[np.ndarray], float]:
        c = rng.uniform(0.2, 0.8, size=dim)
        perm = rng.permutation(dim)
        wp = w[perm]

        def f(x: np.ndarray) -> float:
            return float(np.sum(wp * (x - c) ** 2))

        return f

    return make


def _make_rastrigin(dim: int) -> Callable[[np.random.Generator], Callable[[np.ndarray], float]]:
    def make(rng: np.random.Generator) -> Callable[[np.ndarray], float]:
        c = rng.uniform(0.2, 0.8, size=dim)

        def f(x: np.ndarray) -> float:
            z = 5.12 * (x - c)
            return float(np.sum(z * z + 10.0 * (1.0 - np.cos(2.0 * math.pi * z))))

        return f

    return make


OBJECTIVES: dict[str, Objective] = {
    "quadratic": Objective("quadratic", 12, _make_quadratic(12)),
    "rastrigin": Objective("rastrigin", 6, _make_rastrigin(6)),
}

METHODS = ("random", "s2e", "s2e-grad", "s2e-natural")


def _uniform_scale(f: Callable[[np.ndarray], float], dim: int, rng: np.random.Generator) -> float:
    """Std of ``f`` under uniform sampling (sets the noise level)."""
    vals = np.array([f(x) for x in rng.uniform(size=(256, dim))])
    return float(vals.std())


def run_method(
    method: str,
    objective: Objective,
    seed: int,
    budget: int,
    noise: float = 0.1,
    samples_per_round: int = 8,
    **s2e_kwargs: object,
) -> np.ndarray:
    """True value of the incumbent after each of ``budget`` evaluations.

    The objective instance, the noise scale and the observation noise depend
    only on ``seed`` (not on the method), so methods face identical problems.
    """
    inst_rng = np.random.default_rng([seed, 0])
    f = objective.make(inst_rng)
    scale = _uniform_scale(f, objective.dim, inst_rng)
    noise_rng = np.random.default_rng([seed, 1])
    method_seed = [seed, 2]

    best_obs = math.inf
    best_true = math.nan
    curve = np.empty(budget)

    def evaluate(x: np.ndarray, i: int) -> float:
        nonlocal best_obs, best_true
        true = f(x)
        obs = true + noise * scale * float(noise_rng.standard_normal())
        if obs < best_obs:
            best_obs, best_true = obs, true
        curve[i] = best_true
        return obs

    if method == "random":
        rng = np.random.default_rng(method_seed)
        for i in range(budget):
            evaluate(rng.uniform(size=objective.dim), i)
        return curve

    steps = {"s2e": "newton", "s2e-grad": "gradient", "s2e-natural": "natural"}
    if method not in steps:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    params = [FloatParam(f"x{k}", 0.0, 1.0) for k in range(objective.dim)]
    opt = S2E(
        params,
        samples_per_round=samples_per_round,
        seed=int(np.random.default_rng(method_seed).integers(2**31)),
        step=steps[method],
        **s2e_kwargs,  # type: ignore[arg-type]
    )
    names = opt.names
    i = 0
    while i < budget:
        cfg = opt.ask()
        assert cfg is not None
        x = np.array([cfg[n] for n in names])
        opt.tell(opt.last_token, evaluate(x, i))
        i += 1
    return curve


def run_benchmark(
    objective: Objective,
    methods: Sequence[str],
    seeds: Sequence[int],
    budget: int,
    noise: float,
    samples_per_round: int,
    **s2e_kwargs: object,
) -> dict[str, np.ndarray]:
    """``{method: array (n_seeds, budget)}`` of incumbent curves."""
    return {
        m: np.stack([run_method(m, objective, s, budget, noise, samples_per_round, **s2e_kwargs) for s in seeds])
        for m in methods
    }


def format_table(name: str, curves: dict[str, np.ndarray], fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0)) -> str:
    """Plain-text table: mean +- s.e. of the incumbent's true value."""
    budget = next(iter(curves.values())).shape[1]
    cols = [max(1, int(round(fr * budget))) for fr in fractions]
    head = f"{'method':<12}" + "".join(f"{'n=' + str(c):>20}" for c in cols)
    lines = [f"== {name} (true value of incumbent, mean +- s.e., lower is better) ==", head]
    for m, arr in curves.items():
        row = f"{m:<12}"
        for c in cols:
            v = arr[:, c - 1]
            se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0.0
            row += f"{v.mean():>12.4f} +- {se:<6.4f}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m s2e_tune.bench synthetic",
        description="S2E vs random search on noisy synthetic objectives (no Ray).",
    )
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (default 10)")
    parser.add_argument("--base-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument(
        "--budget", type=int, default=320, help="evaluations per run (default 320; the table shows 1/4, 1/2, 3/4, all)"
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=0.1,
        help="observation noise sd, relative to the objective's sd under uniform sampling (default 0.1)",
    )
    parser.add_argument("--samples-per-round", type=int, default=8, help="S2E's K (default 8)")
    parser.add_argument(
        "--objectives",
        nargs="+",
        choices=sorted(OBJECTIVES),
        default=sorted(OBJECTIVES),
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.budget < 1 or args.samples_per_round < 2 or args.noise < 0:
        print(
            "error: need --seeds >= 1, --budget >= 1, --samples-per-round >= 2, --noise >= 0",
            file=sys.stderr,
        )
        return 2
    seeds = list(range(args.base_seed, args.base_seed + args.seeds))
    print(
        f"seeds={args.seeds} (from {args.base_seed}) budget={args.budget} noise={args.noise} K={args.samples_per_round}"
    )
    for name in args.objectives:
        obj = OBJECTIVES[name]
        curves = run_benchmark(obj, args.methods, seeds, args.budget, args.noise, args.samples_per_round)
        print()
        print(format_table(f"{name} (d={obj.dim})", curves))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
