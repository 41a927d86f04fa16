"""The numbers of ``bench search``, from the files in ``--storage`` alone (pandas, no training):
per setting and searcher the best-so-far values at fractions of the budget, the budget to match
random search, the paired difference to it and the mean rank; the reference rows' means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from noisylabels.errors import UserError
from results import layout
from results.efficiency import (
    BUDGET_FRACTIONS,
    budget_to_match,
    budget_values,
    final_values,
    mean_ranks,
    search_efficiency,
)
from results.stats import mean_se
from results.store import Store
from results.summary import per_seed_table
from results.tables import build_trials, read_epochs
from s2e_tune.bench.search.definition import REFERENCE, REFERENCE_FILE, REFERENCE_KINDS, BenchArgs, experiment_dir
from searchers.registry import order


@dataclass
class SettingResult:
    setting: str
    table: pd.DataFrame  # one row per searcher
    finals: pd.DataFrame  # searcher, seed, best_val_acc, best_test_acc (at the full budget)
    references: pd.DataFrame  # one row per reference kind run: kind, val_acc, val_se, test_acc, test_se


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
    return mean_se(d)


def normalized_scores(finals: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Bayesmark-style normalised score per (searcher, seed), lower is better:
    ``(best - v) / (best - m)`` with ``v`` the searcher's best ``val_acc`` at the full budget,
    ``best`` the best of every searcher on that seed (score 0) and ``m`` random search's (score 1).
    Bayesmark's ``m`` is the median over many random searches; with one random search per seed
    its best is the estimate (resampling its own ``n`` trials, the median of the best of ``n``
    is their maximum).  NaN where ``best == m`` (random was best) or data are missing."""
    out = finals[["searcher", "seed"]].copy()
    out["score"] = math.nan
    if finals.empty or reference not in set(finals["searcher"]):
        return out
    best = finals["seed"].map(finals.groupby("seed")["best_val_acc"].max())
    m = finals["seed"].map(finals[finals["searcher"] == reference].set_index("seed")["best_val_acc"])
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (best - finals["best_val_acc"]) / (best - m)
    out["score"] = score.where((best - m).abs() > 1e-12)
    return out


def pooled_normalized_score(finals: pd.DataFrame, searcher: str, reference: str = REFERENCE) -> float:
    """The normalised score with its two constants taken over the seeds, as Bayesmark takes them
    per problem: ``(B - V) / (B - M)`` with ``V`` the searcher's mean best ``val_acc``, ``B`` the
    mean over seeds of the best of every searcher (score 0) and ``M`` random search's mean (score
    1), over the seeds where every searcher has a result.  Unlike the mean of per-seed ratios
    (:func:`normalized_scores`), whose denominator ``best - random`` is often near 0 on a single
    seed (one training's noise decides whether random was best), it is a linear function of the
    searcher's mean, so one seed cannot dominate it.  NaN where ``B == M``."""
    if finals.empty or reference not in set(finals["searcher"]) or searcher not in set(finals["searcher"]):
        return math.nan
    wide = finals.pivot_table(index="seed", columns="searcher", values="best_val_acc").dropna()
    if wide.empty:
        return math.nan
    best, m, v = wide.max(axis=1).mean(), wide[reference].mean(), wide[searcher].mean()
    return float((best - v) / (best - m)) if abs(best - m) > 1e-12 else math.nan


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
    if never in the data), ``diff, diff_se`` (:func:`paired_difference`), ``score, score_se``
    (:func:`normalized_scores`, mean and s.e. over seeds) and ``rank`` (mean rank over seeds).
    ``searchers``: rows to show, in
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
    scores = normalized_scores(finals, reference)
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
        row["score"], row["score_se"] = mean_se(scores.loc[scores["searcher"] == s, "score"])
        row["pooled_score"] = pooled_normalized_score(finals, s, reference)
        row["rank"] = float(mr.get(s, math.nan))
        rows.append(row)
    return pd.DataFrame(rows), finals


def read_references(out: Path, epochs: int) -> pd.DataFrame:
    """The reference rows of one setting (``<setting>/reference.parquet``) with ``epochs`` epochs."""
    path = out / REFERENCE_FILE
    if not path.exists():
        return pd.DataFrame(columns=["kind", "seed", "epochs", "val_acc", "test_acc"])
    df = pd.read_parquet(path)
    return df[df["epochs"] == epochs].reset_index(drop=True)


def reference_table(refs: pd.DataFrame) -> pd.DataFrame:
    """Per reference kind that has rows (in ``REFERENCE_KINDS`` order): mean and s.e. over seeds
    of the final ``val_acc`` and test accuracy."""
    rows = []
    for kind in REFERENCE_KINDS:
        g = refs[refs["kind"] == kind] if not refs.empty else refs
        if g.empty:
            continue
        val, val_se = mean_se(g["val_acc"])
        test, test_se = mean_se(g["test_acc"])
        rows.append({"kind": kind, "val_acc": val, "val_se": val_se, "test_acc": test, "test_se": test_se})
    return pd.DataFrame(rows, columns=["kind", "val_acc", "val_se", "test_acc", "test_se"])


def analyse_setting(args: BenchArgs, setting: str) -> SettingResult:
    """Read one setting's Parquet results (and reference rows) back and analyse them."""
    b = args.bench
    out = experiment_dir(args, setting)
    if not (out / layout.EPOCHS).exists():
        raise UserError(f"no results for {setting} at {out}; run the benchmark first (or check --storage)")
    store = Store.from_uri(str(out))
    epochs_df = read_epochs(store)
    trials_df = build_trials(store)
    epochs_df = epochs_df[epochs_df["seed"].isin(b.seeds) & epochs_df["searcher"].isin(b.searchers)]
    trials_df = trials_df[trials_df["seed"].isin(b.seeds) & trials_df["searcher"].isin(b.searchers)]
    table, finals = analyse(
        epochs_df, trials_df, budget=float(b.budget), full_epochs=b.epochs, searchers=order(b.searchers)
    )
    refs = read_references(out, b.epochs)
    refs = refs[refs["seed"].isin(b.seeds)] if not refs.empty else refs
    return SettingResult(setting, table, finals, reference_table(refs))


def rank_table(results: Sequence[SettingResult], searchers: Sequence[str]) -> pd.DataFrame:
    """Mean rank of each searcher (rows, registry order) per setting (columns) and over all
    (setting, seed) pairs (column ``all``); NaN where a searcher has no result."""
    finals = pd.concat([r.finals.assign(setting=r.setting) for r in results], ignore_index=True)
    overall = mean_ranks(finals, by=("setting", "seed")) if not finals.empty else pd.Series(dtype=float)
    names = order(searchers)
    table = pd.DataFrame(index=pd.Index(names, name="searcher"))
    for r in results:
        table[r.setting] = mean_ranks(r.finals).reindex(names).astype(float)
    table["all"] = overall.reindex(names).astype(float)
    return table
