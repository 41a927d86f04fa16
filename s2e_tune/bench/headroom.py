"""``python -m s2e_tune.bench headroom``: how much a search can gain at all on the recorded
landscape, against one training's noise.

A search benchmark scores a searcher by the best noisy ``val_acc`` among its trials (the last epoch
of a full-length trial; ``results.schema.best_trials``).  On the replay's landscape
(``s2e_tune.replay.table``: the mean curve m(q) of the nearest recorded schedules, plus one
training's residual) this command measures, per space and setting, averaged over the recording's
data seeds:

* ``noise sd``: the standard deviation of one training's final ``val_acc`` around its schedule's
  mean (the recording's repeated trainings);
* ``space max``: the best mean final ``val_acc`` among ``--samples`` prior draws of the space (an
  estimate of the landscape's maximum from below);
* ``random: best`` and ``random: its mean``: random search with ``--trials`` trainings (each the
  mean of a prior draw plus a residual), its best noisy value (what the benchmark scores) and the
  mean value of the trial it picked;
* ``oracle: best``: ``--trials`` trainings of the best draw (each with its own residual), the best
  noisy value: what the perfect searcher would score;
* ``headroom``: space max minus random's pick (what a better search can still gain in the value of
  the schedule it picks) and oracle's best minus random's best (what it can gain in the score);
* per ``--concentrations`` c: the mean, standard deviation and 90th percentile of the mean final
  ``val_acc`` of draws from ``Beta(c, c)`` on every unit coordinate (``c = 1``: the prior; S2E's
  ``init_concentration``), the landscape a centred start samples.

Example::

    python -m s2e_tune.bench headroom --spaces s2e,s2e-authors --out headroom.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from noisylabels.errors import UserError, run_cli
from noisylabels.spaces import SPACES, get_space
from s2e_tune.bench import common
from s2e_tune.replay.recording import META_FILE, SHIPPED, TABLE_FILE
from s2e_tune.replay.table import REPLAYED, ReplayTable, query_curve

VAL = REPLAYED.index("val_acc")  # the objective's column (the clean-label one for a -clean setting)


def draw_means(
    table: ReplayTable, space: str, concentration: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mean final ``val_acc`` m(q) of ``n`` draws from ``Beta(c, c)`` on each unit coordinate of
    ``space``, and the share of one training's noise variance the answer adds, ``1 - sum w_i^2``."""
    sp = get_space(space)
    means, extra = np.empty(n), np.empty(n)
    for i, u in enumerate(rng.beta(concentration, concentration, size=(n, len(sp.params)))):
        m, w2 = table.mean_curve(query_curve(sp.config_from_unit(u), table.epochs))
        means[i], extra[i] = m[-1, VAL], max(0.0, 1.0 - w2)
    return means, extra


def noisy(means: np.ndarray, extra: np.ndarray, table: ReplayTable, rng: np.random.Generator) -> np.ndarray:
    """One training of each schedule: its mean plus a residual of a repeated training, scaled as the
    replay scales it."""
    e = table.residuals[rng.integers(len(table.residuals), size=len(means)), -1, VAL]
    return means + np.sqrt(extra) * e


def headroom(
    table: ReplayTable, means: np.ndarray, extra: np.ndarray, trials: int, repeats: int, rng: np.random.Generator
) -> dict[str, float]:
    """Random search and the oracle, ``repeats`` times each, on one landscape (see the module)."""
    best_i = int(np.argmax(means))
    rand_best, rand_pick, oracle_best = [], [], []
    for _ in range(repeats):
        idx = rng.choice(len(means), size=trials, replace=False)
        y = noisy(means[idx], extra[idx], table, rng)
        rand_best.append(y.max())
        rand_pick.append(means[idx][np.argmax(y)])
        oracle_best.append(noisy(np.full(trials, means[best_i]), np.full(trials, extra[best_i]), table, rng).max())
    out = {
        "noise_sd": float(table.noise_sd[-1, VAL]),
        "space_max": float(means[best_i]),
        "random_best": float(np.mean(rand_best)),
        "random_pick_mean": float(np.mean(rand_pick)),
        "oracle_best": float(np.mean(oracle_best)),
    }
    out["headroom_pick"] = out["space_max"] - out["random_pick_mean"]
    out["headroom_score"] = out["oracle_best"] - out["random_best"]
    return out


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m s2e_tune.bench headroom", description=__doc__.split("\n\n")[0])
    p.add_argument("--table", metavar="DIR", help="the recording's directory [the one in s2e_tune/replay/data]")
    p.add_argument("--spaces", default="s2e,s2e-authors", help="comma list of spaces [s2e,s2e-authors]")
    p.add_argument("--settings", default="sym-20,sym-50,pair-45,pair-45-clean", help="comma list [the protocol's four]")
    p.add_argument("--samples", type=int, default=4000, help="prior draws per data seed [4000]")
    p.add_argument("--trials", type=int, default=40, help="trainings per search [40, the protocol's]")
    p.add_argument("--repeats", type=int, default=400, help="random and oracle searches per data seed [400]")
    p.add_argument("--concentrations", default="1,4,8", help="Beta(c, c) landscapes to describe [1,4,8]")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw [0]")
    p.add_argument("--out", metavar="FILE", help="also write the Markdown tables to FILE")
    a = p.parse_args(argv)
    a.spaces = [s for s in a.spaces.split(",") if s]
    a.settings = [s for s in a.settings.split(",") if s]
    for s in a.spaces:
        if s not in SPACES:
            raise UserError(f"unknown space {s!r} in --spaces; use some of {', '.join(SPACES)}")
    for s in a.settings:
        if s not in common.SETTINGS:
            raise UserError(f"unknown setting {s!r} in --settings; use some of {', '.join(common.SETTINGS)}")
    try:
        a.concentrations = [float(c) for c in a.concentrations.split(",") if c]
    except ValueError:
        raise UserError(f"--concentrations takes a comma list of numbers >= 1, got {a.concentrations!r}") from None
    if not a.concentrations or min(a.concentrations) < 1:
        raise UserError(f"--concentrations takes a comma list of numbers >= 1, got {a.concentrations}")
    if a.samples < a.trials or a.trials < 1 or a.repeats < 1:
        raise UserError("need --samples >= --trials >= 1 and --repeats >= 1")
    return a


def measure(a: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headroom rows and the concentration rows, one per (space, setting), seed-averaged."""
    where = Path(a.table) if a.table else SHIPPED
    if not (where / META_FILE).exists():
        raise UserError(f"no recording at {where} ({META_FILE}); make one with python -m s2e_tune.bench record")
    df = pd.read_parquet(where / TABLE_FILE)
    rng = np.random.default_rng(a.seed)
    rows, conc = [], []
    for space in a.spaces:
        for setting in a.settings:
            base, objective = common.recorded_as(setting)
            seeds = sorted(df.loc[df["setting"] == base, "data_seed"].unique())
            if not seeds:
                raise UserError(f"the recording at {where} has no {base} trainings; drop {setting} from --settings")
            per_seed: list[dict[str, Any]] = []
            per_c: dict[float, list[np.ndarray]] = {c: [] for c in a.concentrations}
            for ds in seeds:
                table = ReplayTable.from_recording(df, base, int(ds), objective)
                means, extra = draw_means(table, space, 1.0, a.samples, rng)
                per_seed.append(headroom(table, means, extra, a.trials, a.repeats, rng))
                for c in a.concentrations:
                    per_c[c].append(means if c == 1.0 else draw_means(table, space, c, a.samples, rng)[0])
            rows.append({"space": space, "setting": setting, **pd.DataFrame(per_seed).mean().to_dict()})
            for c, draws in per_c.items():
                v = np.concatenate(draws)
                conc.append({"space": space, "setting": setting, "c": c, "mean": v.mean(), "sd": v.std(),
                             "p90": np.quantile(v, 0.9)})  # fmt: skip
            print(f"  {space} {setting}: done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows), pd.DataFrame(conc)


def render(rows: pd.DataFrame, conc: pd.DataFrame, a: argparse.Namespace) -> str:
    head = ["space", "setting", "noise sd", "space max", "random: best", "random: its mean", "oracle: best",
            "headroom: pick", "headroom: score"]  # fmt: skip
    cols = ["noise_sd", "space_max", "random_best", "random_pick_mean", "oracle_best",
            "headroom_pick", "headroom_score"]  # fmt: skip
    body = [[r.space, r.setting, *(f"{getattr(r, c):.4f}" for c in cols)] for r in rows.itertuples()]
    wide = conc.pivot_table(index=["space", "setting"], columns="c", values=["mean", "sd", "p90"], sort=False)
    chead = ["space", "setting", *(f"Beta({c:g}, {c:g}): mean ± sd (p90)" for c in a.concentrations)]
    cbody = [
        [sp, st, *(f"{wide.loc[(sp, st), ('mean', c)]:.4f} ± {wide.loc[(sp, st), ('sd', c)]:.4f} "
                   f"({wide.loc[(sp, st), ('p90', c)]:.4f})" for c in a.concentrations)]
        for sp, st in wide.index
    ]  # fmt: skip
    return (
        f"Final val_acc on the replay's landscape; {a.trials} trainings per search, {a.samples} prior draws and "
        f"{a.repeats} searches per data seed, seed {a.seed}.\n\n"
        + common.md_table(head, body)
        + "\n\nMean final val_acc of draws from Beta(c, c) on every unit coordinate:\n\n"
        + common.md_table(chead, cbody)
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    def go() -> int:
        a = parse_args(sys.argv[1:] if argv is None else argv)
        rows, conc = measure(a)
        text = render(rows, conc, a)
        print(text)
        if a.out:
            Path(a.out).write_text(f"```bash\n{common.command_line('headroom', argv or sys.argv[1:])}\n```\n\n{text}")
        return 0

    return run_cli(go)


if __name__ == "__main__":
    sys.exit(main())
