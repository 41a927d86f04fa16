"""Search efficiency: best-so-far curves against cost, over seeds (pandas/numpy only, no torch).

Definitions (README, "Results")
-------------------------------
*Events.*  Every row of ``epochs/`` is one training epoch consumed by a search.
Within one (searcher, seed) search the rows are put in the order they happened
(``timestamp``, ties broken by epoch and trial id); the cost of the search after
row *i* is

* ``cum_epochs``: the number of epoch rows up to and including *i* (device
  neutral), and
* ``cum_time_s``: the sum of ``time_this_iter_s`` of those rows, i.e. training
  time summed over trials (parallel trials add up; it is what the search costs
  on one device, not the elapsed clock).

*Objective of a trial.*  ``val_acc`` at the trial's last epoch in the data, as
the searchers see it (Tune reports the last result).  It becomes known at that
last epoch's row.  A trial stopped early by a scheduler (ASHA, Hyperband, BOHB),
a trial that errored, and a trial still running when the data were read
(crash, or a report made mid-run) all count with their latest ``val_acc``.
NaN objectives (diverged trials) never become the best.

*Candidates.*  With ``full_epochs=T`` (the report passes the run's ``epochs``)
only trials that ran ``T`` epochs are candidates for the best, when the search
has any such trial, otherwise every trial is: the rule of
:func:`results.schema.best_trials`, applied as the search goes; a configuration
cut short after one epoch has not been evaluated on the objective.  Epochs of
every trial count as cost.

*Best-so-far curve.*  The running maximum of the candidates' objectives, with
the clean test accuracy (``test_acc`` at that same last epoch) of the trial
holding it; a step function of the cost, monotone non-decreasing in
``val_acc``.  Before the first candidate is known it is NaN.

*Across seeds.*  Each seed's step function is forward-filled onto a common grid
of the cost (0 .. the largest cost of any search); a searcher's curve stops at
the largest cost reached by any of its seeds, and seeds that ended earlier keep
their final value.  The mean and the standard error ``std(ddof=1)/sqrt(n)``
over seeds are reported only at grid points where every seed of the searcher
has a value (NaN before that); with one seed the standard error is NaN.

*At the budget.*  :func:`final_values` gives each (searcher, seed) its best-so-far values after
the whole budget; :func:`ranks` ranks the searchers within a seed by them (ties averaged,
missing results last) and :func:`mean_ranks` averages those ranks: the benchmark's mean rank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from results.stats import mean_se_columns
from searchers.registry import order as order_searchers

X_AXES = {"epochs": "cum_epochs", "time": "cum_time_s"}
BUDGET_FRACTIONS = (0.25, 0.5, 1.0)


# ------------------------------------------------------------------------------- per seed
def _ordered(g: pd.DataFrame) -> pd.DataFrame:
    return g.sort_values(["timestamp", "epoch", "trial_id"], kind="stable")


def best_so_far(epochs_df: pd.DataFrame, full_epochs: int | None = None) -> pd.DataFrame:
    """Per (searcher, seed): one row per epoch consumed, in time order.

    Columns: ``searcher, seed, step`` (1-based), ``trial_id, epoch, cum_epochs,
    cum_time_s, best_val_acc, best_test_acc, best_trial`` (NaN/None before the
    first candidate trial has finished; see the module docstring).
    """
    cols = [
        "searcher",
        "seed",
        "step",
        "trial_id",
        "epoch",
        "cum_epochs",
        "cum_time_s",
        "best_val_acc",
        "best_test_acc",
        "best_trial",
    ]
    if epochs_df is None or epochs_df.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for (searcher, seed), g in epochs_df.groupby(["searcher", "seed"], sort=True):
        g = _ordered(g).reset_index(drop=True)
        n_epochs = g.groupby("trial_id")["epoch"].transform("size")
        last_epoch = g.groupby("trial_id")["epoch"].transform("max")
        is_last = g["epoch"] == last_epoch
        candidate = is_last
        if full_epochs is not None:
            full = n_epochs >= full_epochs
            if full.any():
                candidate = is_last & full
        best_v, best_t, best_id = math.nan, math.nan, None
        bv, bt, bid = [], [], []
        for ok, v, t, tid in zip(candidate, g["val_acc"], g["test_acc"], g["trial_id"], strict=True):
            if ok and not pd.isna(v) and (math.isnan(best_v) or v > best_v):
                best_v, best_t, best_id = float(v), float(t), tid
            bv.append(best_v)
            bt.append(best_t)
            bid.append(best_id)
        time_col = g["time_this_iter_s"].astype(float).fillna(0.0)
        out.append(
            pd.DataFrame(
                {
                    "searcher": searcher,
                    "seed": int(seed),
                    "step": np.arange(1, len(g) + 1),
                    "trial_id": g["trial_id"].to_numpy(),
                    "epoch": g["epoch"].to_numpy(),
                    "cum_epochs": np.arange(1, len(g) + 1, dtype=float),
                    "cum_time_s": time_col.cumsum().to_numpy(),
                    "best_val_acc": bv,
                    "best_test_acc": bt,
                    "best_trial": bid,
                }
            )
        )
    return pd.concat(out, ignore_index=True)[cols]


# ------------------------------------------------------------------------------- grids
def make_grid(x_max: float, grid_points: int = 200, integer: bool = False) -> np.ndarray:
    """``0 .. x_max``: every integer when ``integer`` and ``x_max <= grid_points``, else
    ``grid_points`` evenly spaced points."""
    if not np.isfinite(x_max) or x_max <= 0:
        return np.array([0.0])
    if integer and x_max <= grid_points:
        return np.arange(0, int(math.ceil(x_max)) + 1, dtype=float)
    return np.linspace(0.0, float(x_max), grid_points)


def step_on_grid(x: Sequence[float], y: Sequence[float], grid: np.ndarray, end: float | None = None) -> np.ndarray:
    """Forward-fill the step function ``y`` (value ``y[i]`` from ``x[i]`` on) onto ``grid``;
    NaN before ``x[0]`` and after ``end`` (when given)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    idx = np.searchsorted(x, grid, side="right") - 1
    out = np.where(idx >= 0, y[np.clip(idx, 0, None)] if len(y) else np.nan, np.nan)
    if end is not None:
        out = np.where(grid > end + 1e-9, np.nan, out)
    return out


@dataclass
class Efficiency:
    """Result of :func:`search_efficiency`.

    ``per_seed``: :func:`best_so_far` rows.  ``curves``: one row per (x axis,
    searcher, grid point) with columns ``axis`` (``epochs`` or ``time``),
    ``searcher, x, val_mean, val_se, test_mean, test_se, n_seeds`` (seeds with a
    value at x), ``seeds`` (seeds of the searcher).  ``seed_curves``: the same
    grid per seed (``axis, searcher, seed, x, best_val_acc, best_test_acc``).
    """

    per_seed: pd.DataFrame
    curves: pd.DataFrame
    seed_curves: pd.DataFrame
    grids: dict[str, np.ndarray] = field(default_factory=dict)

    def curve(self, searcher: str, axis: str = "epochs") -> pd.DataFrame:
        c = self.curves
        return c[(c["axis"] == axis) & (c["searcher"] == searcher)].reset_index(drop=True)

    @property
    def searchers(self) -> list[str]:
        return order_searchers(self.per_seed["searcher"].unique()) if not self.per_seed.empty else []


def search_efficiency(
    epochs_df: pd.DataFrame,
    grid_points: int = 200,
    full_epochs: int | None = None,
    x_max: Mapping[str, float] | None = None,
) -> Efficiency:
    """Best-so-far ``val_acc`` (and the test accuracy of that trial) against cumulative
    epochs and cumulative training time, per seed and as mean ± s.e. over seeds.

    ``epochs_df``: :func:`results.tables.read_epochs`.  ``grid_points``: points of the
    time grid (and of the epoch grid when the largest search used more epochs than
    that; otherwise the epoch grid is every integer).  ``full_epochs``: see the module
    docstring.  ``x_max``: grid ends per axis (``{"epochs": budget}``), extended to the
    largest cost of any search when that is larger (the default).
    """
    per_seed = best_so_far(epochs_df, full_epochs=full_epochs)
    curve_rows, seed_rows, grids = [], [], {}
    if per_seed.empty:
        empty = pd.DataFrame(
            columns=["axis", "searcher", "x", "val_mean", "val_se", "test_mean", "test_se", "n_seeds", "seeds"]
        )
        return Efficiency(per_seed, empty, pd.DataFrame(), {})
    for axis, col in X_AXES.items():
        top = max(float((x_max or {}).get(axis) or 0.0), float(per_seed[col].max()))
        # every search's own end is a grid point too, so each curve shows its final best (between
        # two points of a 200-point time grid it would otherwise be cut off before its last step)
        ends = per_seed.groupby("searcher", sort=False)[col].max().to_numpy(dtype=float)
        grid = np.unique(np.concatenate([make_grid(top, grid_points, integer=(axis == "epochs")), ends]))
        grids[axis] = grid
        for searcher, gs in per_seed.groupby("searcher", sort=False):
            seeds = sorted(gs["seed"].unique())
            vals, tests = [], []
            end_all = float(gs[col].max())
            for seed in seeds:
                g = gs[gs["seed"] == seed]
                v = step_on_grid(g[col], g["best_val_acc"], grid, end=end_all)
                t = step_on_grid(g[col], g["best_test_acc"], grid, end=end_all)
                vals.append(v)
                tests.append(t)
                seed_rows.append(
                    pd.DataFrame(
                        {
                            "axis": axis,
                            "searcher": searcher,
                            "seed": seed,
                            "x": grid,
                            "best_val_acc": v,
                            "best_test_acc": t,
                        }
                    )
                )
            vm, vse, n = mean_se_columns(np.vstack(vals))
            tm, tse, _ = mean_se_columns(np.vstack(tests))
            curve_rows.append(
                pd.DataFrame(
                    {
                        "axis": axis,
                        "searcher": searcher,
                        "x": grid,
                        "val_mean": vm,
                        "val_se": vse,
                        "test_mean": tm,
                        "test_se": tse,
                        "n_seeds": n,
                        "seeds": len(seeds),
                    }
                )
            )
    return Efficiency(
        per_seed, pd.concat(curve_rows, ignore_index=True), pd.concat(seed_rows, ignore_index=True), grids
    )


# ------------------------------------------------------------------------------- budget helpers
def value_at(eff: Efficiency, searcher: str, x: float, axis: str = "epochs", column: str = "val_mean") -> float:
    """The mean curve of ``searcher`` at cost ``x``: its last value at a grid point <= x (a
    search that ended before ``x`` keeps its final value; NaN before its first value)."""
    c = eff.curve(searcher, axis)
    c = c[(c["x"] <= x + 1e-9) & c[column].notna()]
    return float(c[column].iloc[-1]) if not c.empty else math.nan


def budget_values(
    eff: Efficiency,
    budget: float | None = None,
    fractions: Sequence[float] = BUDGET_FRACTIONS,
    axis: str = "epochs",
) -> pd.DataFrame:
    """Per searcher: best-so-far ``val_acc`` and test accuracy (mean and s.e. over seeds)
    at each fraction of the budget (default: the grid's end, the largest cost of any
    search); a searcher whose searches ended earlier keeps its final value.
    Columns ``searcher, fraction, x, val_mean, val_se, test_mean, test_se``."""
    if budget is None:
        budget = float(eff.grids[axis][-1]) if axis in eff.grids else math.nan
    rows = []
    for s in eff.searchers:
        c = eff.curve(s, axis)
        for f in fractions:
            x = f * budget
            sel = c[(c["x"] <= x + 1e-9) & c["val_mean"].notna()]
            last = sel.iloc[-1] if not sel.empty else None
            rows.append(
                {
                    "searcher": s,
                    "fraction": f,
                    "x": x,
                    **{
                        k: (float(last[k]) if last is not None else math.nan)
                        for k in ("val_mean", "val_se", "test_mean", "test_se")
                    },
                }
            )
    return pd.DataFrame(rows)


def budget_to_match(
    eff: Efficiency,
    reference: str = "random",
    budget: float | None = None,
    axis: str = "epochs",
) -> pd.DataFrame:
    """Per searcher: the first fraction of the budget at which its mean best-so-far
    ``val_acc`` reaches the ``reference`` searcher's mean at the full budget (NaN: never,
    or no reference in the data).  Columns ``searcher, reference, target, fraction``."""
    if budget is None:
        budget = float(eff.grids[axis][-1]) if axis in eff.grids else math.nan
    target = value_at(eff, reference, budget, axis) if reference in eff.searchers else math.nan
    rows = []
    for s in eff.searchers:
        frac = math.nan
        if not math.isnan(target):
            c = eff.curve(s, axis)
            hit = c[c["val_mean"] >= target - 1e-12]
            if not hit.empty:
                frac = float(hit["x"].iloc[0]) / budget if budget > 0 else math.nan
        rows.append({"searcher": s, "reference": reference, "target": target, "fraction": frac})
    return pd.DataFrame(rows)


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
