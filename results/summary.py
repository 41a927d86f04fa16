"""The summary tables of a search: per (searcher, seed) and per searcher over seeds, and how they
are written - Markdown (:func:`markdown_table`) and the console (:func:`format_seed_table`,
:func:`format_searcher_table`); pandas only.  The best trial of a search is
:func:`results.schema.best_trials`; every ``mean ± se`` cell is :func:`results.stats.pm`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from results.efficiency import BUDGET_FRACTIONS, Efficiency, budget_to_match, budget_values
from results.schema import summary_rows
from results.stats import DASH, pm
from results.stats import se as _se
from searchers.registry import order as order_searchers


def per_seed_table(trials_df: pd.DataFrame, full_epochs: int | None = None) -> pd.DataFrame:
    """Searcher x seed (``results.schema.SUMMARY_COLUMNS``), searchers in the registry's order."""
    out = summary_rows(trials_df, full_epochs)
    out["_o"] = out["searcher"].map({s: i for i, s in enumerate(order_searchers(out["searcher"]))})
    return out.sort_values(["_o", "seed"]).drop(columns="_o").reset_index(drop=True)


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


def _decimals(v: Any, digits: int) -> int | None:
    """The decimals a Markdown cell prints the number ``v`` with: ``digits``, or none for a whole
    number when ``digits <= 1`` (counts such as ``trials``); ``None`` when ``v`` is no number."""
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | np.integer):
        return 0
    if isinstance(v, float | np.floating):
        return 0 if digits == 0 or (float(v).is_integer() and digits <= 1) else digits
    return None


def _fmt(v: Any, digits: int = 4) -> str:
    n = _decimals(v, digits)
    if n is None:
        return DASH if v is None else str(v)
    return pm(v, digits=n)  # DASH for NaN


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
            v = r[c]
            if c == "fraction" or c.startswith("budget_to_match"):
                cells.append(DASH if pd.isna(v) else f"{100 * float(v):.0f} %")
                continue
            d = digits.get(c, 1 if c.endswith("_s") or c in ("trials", "epochs_used", "x") else 4)
            cell = _fmt(v, d)
            se = _se_col(df, c)
            if se and not pd.isna(r[se]) and cell != DASH:
                n = _decimals(v, d)
                if n is not None and n == _decimals(r[se], d):
                    cell = pm(v, r[se], n)
                else:  # a whole number next to a fractional s.e. (digits <= 1), or no number
                    cell += f" ± {_fmt(r[se], d)}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- console
def format_seed_table(seeds: pd.DataFrame) -> str:
    """The run command's console table: one line per (searcher, seed) of a
    :data:`results.schema.SUMMARY_COLUMNS` frame, in its row order."""
    head = (
        f"{'searcher':<10} {'seed':>4} {'best val_acc':>12} {'test_acc':>9} {'label prec':>10} "
        f"{'trials':>6} {'epochs':>7} {'train s':>8}"
    )
    rows = [head, "-" * len(head)]
    for o in seeds.itertuples():
        rows.append(
            f"{o.searcher:<10} {o.seed:>4} {o.best_val_acc:>12.4f} {o.test_acc:>9.4f} {o.label_precision:>10.3f} "
            f"{o.trials:>6} {o.epochs_used:>7} {o.train_time_s:>8.1f}"
        )
    return "\n".join(rows)


def format_searcher_table(summary: pd.DataFrame) -> str:
    """The report's console table: one line per searcher of :func:`summary_table`, best val_acc
    and test accuracy as ``mean ± se`` over seeds."""
    head = (
        f"{'searcher':<10} {'seeds':>5} {'best val_acc':>16} {'test_acc':>16} {'label prec':>10} "
        f"{'trials':>6} {'epochs':>7} {'train s':>8}"
    )
    rows = [head, "-" * len(head)]
    cols = ["searcher", "seeds", "best_val_acc", "best_val_acc_se", "test_acc", "test_acc_se", "label_precision"]
    for r in summary[[*cols, "trials", "epochs_used", "train_time_s"]].itertuples():
        rows.append(
            f"{r.searcher:<10} {r.seeds:>5} {pm(r.best_val_acc, r.best_val_acc_se):>16} "
            f"{pm(r.test_acc, r.test_acc_se):>16} {r.label_precision:>10.3f} {r.trials:>6g} "
            f"{r.epochs_used:>7g} {r.train_time_s:>8.1f}"
        )
    return "\n".join(rows)
