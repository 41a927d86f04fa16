"""Search-efficiency analysis of the Parquet results (pandas/numpy only: no Ray, no torch).

Definitions (DESIGN.md, "Search efficiency")
--------------------------------------------
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
has any such trial, otherwise every trial is (the same rule as the run
command's summary table): a configuration cut short after one epoch has not
been evaluated on the objective.  Epochs of every trial count as cost.

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
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from results.store import Store

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


def mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise mean and standard error over seeds (rows); defined only where every row
    has a value.  Returns ``(mean, se, n)``; ``se`` is NaN with one row."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    n = np.sum(~np.isnan(values), axis=0)
    complete = n == values.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(complete, np.nanmean(np.where(complete, values, 0.0), axis=0), np.nan)
        if values.shape[0] > 1:
            sd = np.std(np.where(complete, values, 0.0), axis=0, ddof=1)
            se = np.where(complete, sd / np.sqrt(values.shape[0]), np.nan)
        else:
            se = np.full(values.shape[1], np.nan)
    return mean, se, n


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


def order_searchers(names: Iterable[str]) -> list[str]:
    """S2E first, then the others in the run command's order, then anything else sorted."""
    known = ["s2e", "random", "bo", "tpe", "hyperband", "asha", "bohb"]
    names = list(dict.fromkeys(names))
    return [n for n in known if n in names] + sorted(n for n in names if n not in known)


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
        grid = make_grid(top, grid_points, integer=(axis == "epochs"))
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
            vm, vse, n = mean_se(np.vstack(vals))
            tm, tse, _ = mean_se(np.vstack(tests))
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


# ------------------------------------------------------------------------------- summary table
def best_trials(trials_df: pd.DataFrame, full_epochs: int | None = None) -> pd.DataFrame:
    """Per (searcher, seed) the trial with the highest ``final_val_acc`` among trials that ran
    ``full_epochs`` epochs when there are any (else among all); one row each, columns of
    ``trials_df``."""
    rows = []
    if trials_df is None or trials_df.empty:
        return trials_df
    for _, g in trials_df.groupby(["searcher", "seed"], sort=True):
        pool = g
        if full_epochs is not None:
            full = g[g["epochs_run"] >= full_epochs]
            pool = full if not full.empty else g
        pool = pool[pool["final_val_acc"].notna()]
        if not pool.empty:
            rows.append(pool.loc[pool["final_val_acc"].idxmax()])
    return pd.DataFrame(rows).reset_index(drop=True) if rows else trials_df.iloc[0:0]


def _se(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def per_seed_table(trials_df: pd.DataFrame, full_epochs: int | None = None) -> pd.DataFrame:
    """Searcher x seed: best ``val_acc``, the test accuracy and mean label precision of that
    trial, its id, trials, epochs used and training time (summed over trials)."""
    best = best_trials(trials_df, full_epochs).set_index(["searcher", "seed"])
    g = trials_df.groupby(["searcher", "seed"], sort=True)
    out = pd.DataFrame(
        {
            "trials": g.size(),
            "epochs_used": g["epochs_run"].sum(),
            "train_time_s": g["wall_time_s"].sum(),
        }
    )
    out["best_val_acc"] = best["final_val_acc"]
    out["test_acc"] = best["test_acc_at_final"]
    out["label_precision"] = best["mean_label_precision"]
    out["best_trial"] = best["trial_id"]
    out = out.reset_index()
    out["_o"] = out["searcher"].map({s: i for i, s in enumerate(order_searchers(out["searcher"]))})
    out = out.sort_values(["_o", "seed"]).drop(columns="_o").reset_index(drop=True)
    return out[
        [
            "searcher",
            "seed",
            "best_val_acc",
            "test_acc",
            "label_precision",
            "trials",
            "epochs_used",
            "train_time_s",
            "best_trial",
        ]
    ]


def summary_table(
    trials_df: pd.DataFrame,
    full_epochs: int | None = None,
    efficiency: Efficiency | None = None,
    budget: float | None = None,
    reference: str = "random",
) -> pd.DataFrame:
    """One row per searcher, mean and s.e. over seeds of :func:`per_seed_table`.

    Columns: ``searcher, seeds, best_val_acc, best_val_acc_se, test_acc, test_acc_se,
    label_precision, trials, epochs_used, train_time_s``; with ``efficiency`` also
    ``val_at_25, val_at_50, val_at_100`` (mean best-so-far at those % of the epoch
    budget) and ``budget_to_match_<reference>`` (first budget fraction at which the
    searcher's mean reaches the reference's final mean).
    """
    ps = per_seed_table(trials_df, full_epochs)
    rows = []
    for s in order_searchers(ps["searcher"]):
        g = ps[ps["searcher"] == s]
        rows.append(
            {
                "searcher": s,
                "seeds": int(g["seed"].nunique()),
                "best_val_acc": g["best_val_acc"].mean(),
                "best_val_acc_se": _se(g["best_val_acc"]),
                "test_acc": g["test_acc"].mean(),
                "test_acc_se": _se(g["test_acc"]),
                "label_precision": g["label_precision"].mean(),
                "trials": g["trials"].mean(),
                "epochs_used": g["epochs_used"].mean(),
                "train_time_s": g["train_time_s"].mean(),
            }
        )
    out = pd.DataFrame(rows)
    if efficiency is not None and not out.empty:
        bv = budget_values(efficiency, budget)
        for f in BUDGET_FRACTIONS:
            col = f"val_at_{round(f * 100)}"
            m = bv[bv["fraction"] == f].set_index("searcher")["val_mean"]
            out[col] = out["searcher"].map(m)
        bm = budget_to_match(efficiency, reference, budget).set_index("searcher")["fraction"]
        out[f"budget_to_match_{reference}"] = out["searcher"].map(bm)
    return out


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
        return "–"
    if isinstance(v, float | np.floating):
        if digits == 0 or (float(v).is_integer() and digits <= 1):
            return f"{v:.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def _se_col(df: pd.DataFrame, c: str) -> str | None:
    for se in (f"{c}_se", f"{c[: -len('_mean')]}_se" if c.endswith("_mean") else None):
        if se and se in df.columns and se != c:
            return se
    return None


def markdown_table(df: pd.DataFrame, digits: Mapping[str, int] | None = None) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency).  A column ``X_se`` next to
    ``X`` (or ``X_mean``) is merged into ``value ± se``; ``fraction`` columns print as %."""
    digits = dict(digits or {})
    se_cols = {se for c in df.columns if (se := _se_col(df, c))}
    cols = [c for c in df.columns if c not in se_cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            if c == "fraction" or c.startswith("budget_to_match"):
                v = r[c]
                cells.append("–" if pd.isna(v) else f"{100 * float(v):.0f} %")
                continue
            d = digits.get(c, 1 if c.endswith("_s") or c in ("trials", "epochs_used", "x") else 4)
            cell = _fmt(r[c], d)
            se = _se_col(df, c)
            if se and not pd.isna(r[se]) and cell != "–":
                cell += f" ± {_fmt(r[se], d)}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- S2E history
HISTORY_VERSION = 1


def s2e_history_path(store: Store, seed: int) -> str:
    """Where the S2E searcher's per-round history of one seed lives: ``<root>/s2e/seed=<k>/history.json``."""
    return store.path("s2e", f"seed={int(seed)}", "history.json")


def _json_safe(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [_json_safe(x) for x in v]
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    return v


def _param_dict(p: Any) -> dict[str, Any]:
    d = p.to_dict() if hasattr(p, "to_dict") else dict(p)
    return {"name": str(d["name"]), "low": float(d["low"]), "high": float(d["high"]), "log": bool(d.get("log", False))}


def write_s2e_history(
    store: Store,
    seed: int,
    history: Sequence[Mapping[str, Any]],
    params: Sequence[Any] | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> str:
    """Write ``S2ESearcher.history`` of one seed as JSON to :func:`s2e_history_path`; returns the path.

    ``params``: the searched parameters (``S2ESearcher.s2e.params``: ``FloatParam`` or dicts
    with ``name, low, high, log``), needed to draw the mean schedule under p_θ; ``fixed``:
    constant config keys (e.g. ``{"schedule": "s2e"}``; inferred from the names if absent).

    Format (strict JSON; non-finite numbers are ``null``)::

        {"version": 1, "seed": 0,
         "params": [{"name": "f1_a1", "low": 0.1, "high": 1.5, "log": false}, ...] | null,
         "fixed": {"schedule": "s2e"},
         "rounds": [{"round": 0, "a": [...], "b": [...],          # theta = (a, b) that sampled the round
                     "mean": {name: float}, "var": {name: float},  # moments of p_theta, own units
                     "configs": [{name: float}, ...], "values": [float|null, ...],
                     "best_value": float|null, "best_config": {...}|null, "kl": float}, ...]}
    """
    doc = {
        "version": HISTORY_VERSION,
        "seed": int(seed),
        "params": None if params is None else [_param_dict(p) for p in params],
        "fixed": dict(fixed) if fixed is not None else None,
        "rounds": [dict(r) for r in history],
    }
    path = s2e_history_path(store, seed)
    store.write_bytes(path, json.dumps(_json_safe(doc), indent=1, allow_nan=False).encode())
    return path


def write_s2e_history_of(store: Store, seed: int, searcher: Any, fixed: Mapping[str, Any] | None = None) -> str:
    """:func:`write_s2e_history` from an ``S2ESearcher`` (its ``history`` and ``s2e.params``)."""
    core = getattr(searcher, "s2e", None)
    params = list(core.params) if core is not None else None
    return write_s2e_history(store, seed, searcher.history, params=params, fixed=fixed)


def _dec(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def write_s2e_history_from_state(
    store: Store, seed: int, state: Mapping[str, Any], fixed: Mapping[str, Any] | None = None
) -> str | None:
    """:func:`write_s2e_history` from ``S2ESearcher.get_state()`` - the dict Tune pickles as
    ``<tune experiment>/searcher-state-*.pkl`` - so a resumed search (whose searcher object
    lives inside Tune) can be written too.  Returns ``None`` if the search never started."""
    core = state.get("s2e")
    if not core:
        return None
    params = [p for _, p in state.get("params") or []] or core.get("params")
    rounds = []
    for rec in core.get("history") or []:
        rec = dict(rec)
        rec["values"] = [_dec(v) for v in rec.get("values", [])]
        rec["best_value"] = _dec(rec.get("best_value"))
        rounds.append(rec)
    return write_s2e_history(store, seed, rounds, params=params, fixed=fixed)


def read_s2e_history(store: Store, seed: int) -> dict[str, Any] | None:
    """The history written by :func:`write_s2e_history`, or ``None`` if there is none."""
    path = s2e_history_path(store, seed)
    if not store.exists(path):
        return None
    return json.loads(store.read_bytes(path))


def s2e_history_seeds(store: Store) -> list[int]:
    files = store.list_files(store.path("s2e"), suffix="history.json")
    seeds = []
    for f in files:
        for seg in f.split("/"):
            if seg.startswith("seed="):
                seeds.append(int(seg.split("=", 1)[1]))
    return sorted(set(seeds))


def _infer_fixed(names: Iterable[str]) -> dict[str, Any]:
    names = set(names)
    if "w1" in names or any(n.startswith("f1_") for n in names):
        return {"schedule": "s2e"}
    if "tau" in names:
        return {"schedule": "coteaching"}
    return {}


def mean_schedule_by_round(
    history: Mapping[str, Any], epochs: int, samples: int = 256, seed: int = 0
) -> tuple[np.ndarray, str]:
    """R(t) per round of an S2E history: rows = rounds, columns = epochs 1..``epochs``.

    With ``params`` in the history: E[R(t)] under p_θ of the round, by Monte Carlo with
    ``samples`` draws from the product-Beta(a, b) mapped to each parameter's range (log
    ones in log space), kind ``"expected"``.  Without: R(t) of the mean configuration of
    the round (``mean``), kind ``"at-mean"``.
    """
    from noisylabels.schedules import keep_ratio_curve
    from noisylabels.spaces import decode_config

    rounds = history.get("rounds") or []
    params = history.get("params")
    names = [p["name"] for p in params] if params else list((rounds[0]["mean"] if rounds else {}).keys())
    fixed = history.get("fixed") or _infer_fixed(names)
    rng = np.random.default_rng(seed)
    out = []
    for r in rounds:
        if params:
            a = np.asarray(r["a"], dtype=float)
            b = np.asarray(r["b"], dtype=float)
            u = rng.beta(a, b, size=(samples, len(a)))
            curves = []
            for row in u:
                cfg = dict(fixed)
                for p, ui in zip(params, row, strict=True):
                    lo, hi = p["low"], p["high"]
                    cfg[p["name"]] = lo * math.exp(ui * math.log(hi / lo)) if p["log"] else lo + ui * (hi - lo)
                curves.append(keep_ratio_curve(decode_config(cfg), epochs))
            out.append(np.mean(curves, axis=0))
        else:
            cfg = {**fixed, **{k: v for k, v in r["mean"].items() if v is not None}}
            out.append(keep_ratio_curve(decode_config(cfg), epochs))
    kind = "expected" if params else "at-mean"
    return (np.vstack(out) if out else np.zeros((0, epochs))), kind


# ------------------------------------------------------------------------------- configs
def config_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The flat trial config of a row with ``config.<key>`` columns (``config.`` stripped, NaN
    dropped, ``__log10`` keys decoded)."""
    from noisylabels.spaces import decode_config

    cfg = {}
    for k, v in row.items():
        if isinstance(k, str) and k.startswith("config."):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            cfg[k[len("config.") :]] = v.item() if hasattr(v, "item") else v
    return decode_config(cfg)


def is_coteaching_default(cfg: Mapping[str, Any], noise_rate: float | None) -> bool:
    """Whether a trial config is Co-teaching's default schedule (tau = noise rate, c = 1, T_k = 10)."""
    if noise_rate is None or cfg.get("schedule", "coteaching") != "coteaching":
        return False
    try:
        return (
            math.isclose(float(cfg["tau"]), float(noise_rate), abs_tol=1e-6)
            and math.isclose(float(cfg["c"]), 1.0, abs_tol=1e-6)
            and math.isclose(float(cfg["t_k"]), 10.0, abs_tol=1e-6)
        )
    except (KeyError, TypeError, ValueError):
        return False
