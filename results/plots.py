"""The report's figures (matplotlib, Agg backend; no Ray, no torch).

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure`;
:func:`png_bytes` renders one to PNG so it can be written through a
:class:`results.store.Store` (local directory or object store).

* ``search_efficiency.png`` (:func:`plot_search_efficiency`): 2 x 2 panels, best-so-far
  validation accuracy (top) and clean test accuracy of the best-so-far trial (bottom)
  against cumulative epochs (left) and cumulative training time (right); one line per
  searcher, mean over seeds with a shaded ± s.e. band (see ``results.efficiency``).
* ``label_precision.png`` (:func:`plot_label_precision`): per epoch, the label
  precision (left) and clean test accuracy (right) of each searcher's best trial (thick:
  the seed whose best trial has the highest ``val_acc``; thin: the best trials of the
  other seeds), plus - only when such a trial is in the data - a trial that ran
  Co-teaching's default schedule (tau = noise rate, c = 1, T_k = 10) as a black dashed
  line.  Label precision is a measurement of a trained trial, so without such a trial
  the default cannot be shown here (its R(t) is in ``schedules.png``); the title says
  which case applies.
* ``schedules.png`` (:func:`plot_schedules`): R(t) of each searcher's best configuration
  (thick/thin as above) with Co-teaching's default R(t) as a black dashed reference; with
  an S2E history (``results.history``) a second panel draws, per S2E
  round, the mean schedule under p_θ (E[R(t)] by Monte Carlo, or R(t) at the mean
  configuration when the history lacks the parameter ranges), coloured from the first
  round to the last.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from noisylabels.schedules import HORIZON, keep_ratio_curve  # noqa: E402
from noisylabels.spaces import coteaching_default  # noqa: E402
from results.efficiency import Efficiency  # noqa: E402
from results.schedule_curves import config_of, is_coteaching_default, mean_schedule_by_round  # noqa: E402
from results.schema import CONFIG_PREFIX, best_trials  # noqa: E402
from searchers.registry import colours, label  # noqa: E402
from searchers.registry import order as order_searchers  # noqa: E402

DPI = 110


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def describe(manifest: Mapping[str, Any] | None) -> str:
    """``mnist1d, sym 50 % noise, coteaching, 3 epochs/trial, budget 4 x 3 epochs, seeds 0,1``."""
    cfg = (manifest or {}).get("config") or {}
    parts = []
    if cfg.get("dataset"):
        parts.append(str(cfg["dataset"]))
    if cfg.get("noise") is not None and cfg.get("noise_rate") is not None:
        parts.append(f"{cfg['noise']} {float(cfg['noise_rate']) * 100:g} % label noise")
    if cfg.get("method"):
        parts.append(str(cfg["method"]))
    if cfg.get("space"):
        parts.append(f"{cfg['space']} space")
    if cfg.get("trials") and cfg.get("epochs"):
        parts.append(f"budget {cfg['trials']} x {cfg['epochs']} epochs")
    seeds = (manifest or {}).get("seeds") or cfg.get("seeds")
    if seeds:
        parts.append(("seed " if len(seeds) == 1 else "seeds ") + ",".join(str(s) for s in seeds))
    return ", ".join(parts)


def _noise_rate(manifest: Mapping[str, Any] | None) -> float | None:
    cfg = (manifest or {}).get("config") or {}
    v = cfg.get("noise_rate")
    return None if v is None else float(v)


# --------------------------------------------------------------------------- search efficiency
def plot_search_efficiency(
    eff: Efficiency,
    manifest: Mapping[str, Any] | None = None,
    budget: float | None = None,
) -> Figure:
    searchers = eff.searchers
    colors = colours(searchers)
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), sharey="row", constrained_layout=True)
    panels = [
        (0, 0, "epochs", "val", "best-so-far val_acc\n(noisy validation labels)"),
        (0, 1, "time", "val", None),
        (1, 0, "epochs", "test", "clean test accuracy\nof the best-so-far trial"),
        (1, 1, "time", "test", None),
    ]
    xlabels = {
        "epochs": "training epochs consumed by the search (cumulative, all trials)",
        "time": "training time consumed by the search (s, summed over trials)",
    }
    nseeds = {}
    for r, c, axis, which, ylab in panels:
        ax = axes[r][c]
        for s in searchers:
            cur = eff.curve(s, axis)
            if cur.empty:
                continue
            nseeds[s] = int(cur["seeds"].iloc[0])
            m, se = cur[f"{which}_mean"].to_numpy(float), cur[f"{which}_se"].to_numpy(float)
            x = cur["x"].to_numpy(float)
            ax.plot(x, m, drawstyle="steps-post", color=colors[s], lw=2.2 if s == "s2e" else 1.7, label=label(s), gid=s)
            band = np.nan_to_num(se, nan=0.0)
            ok = ~np.isnan(m)
            if ok.any() and np.any(band[ok] > 0):
                ax.fill_between(
                    x, m - band, m + band, where=ok, step="post", color=colors[s], alpha=0.12, lw=0, gid=f"band/{s}"
                )
        if axis == "epochs" and budget:
            ax.axvline(budget, color="k", lw=0.8, ls=":", alpha=0.6, gid="budget")
            ax.text(
                budget, 0.99, "budget ", transform=ax.get_xaxis_transform(), ha="right", va="top", fontsize=8, alpha=0.7
            )
        ax.set_xlabel(xlabels[axis])
        if ylab:
            ax.set_ylabel(ylab)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0)
    handles, labels_ = axes[0][0].get_legend_handles_labels()
    if handles:
        counts = set(nseeds.values())
        n = next(iter(counts)) if len(counts) == 1 else None
        if n == 1:
            band = "one seed (no band)"
        elif n:
            band = f"mean over {n} seeds, band ± s.e."
        else:
            band = "mean over seeds, band ± s.e."
        fig.legend(
            handles,
            labels_,
            loc="outside lower center",
            ncol=min(len(handles), 7),
            title=band,
            fontsize=10,
            title_fontsize=9,
            frameon=False,
        )
    title = "Search efficiency: best configuration found vs. search cost"
    desc = describe(manifest)
    fig.suptitle(title + (f"\n{desc}" if desc else ""), fontsize=13)
    return fig


# --------------------------------------------------------------------------- best trials
def _best_per_searcher(
    epochs_df: pd.DataFrame, trials_df: pd.DataFrame, full_epochs: int | None
) -> dict[str, list[tuple[int, str, bool]]]:
    """searcher -> [(seed, trial_id, is_overall_best)] of each seed's best trial."""
    best = best_trials(trials_df, full_epochs)
    out: dict[str, list[tuple[int, str, bool]]] = {}
    if best is None or best.empty:
        return out
    for s, g in best.groupby("searcher", sort=False):
        top = g["final_val_acc"].idxmax()
        out[s] = [(int(r.seed), str(r.trial_id), i == top) for i, r in g.iterrows()]
    return out


def _trial_rows(epochs_df: pd.DataFrame, searcher: str, seed: int, trial_id: str) -> pd.DataFrame:
    sel = (epochs_df["searcher"] == searcher) & (epochs_df["seed"] == seed) & (epochs_df["trial_id"] == trial_id)
    return epochs_df[sel].sort_values("epoch")


def find_default_trials(epochs_df: pd.DataFrame, noise_rate: float | None) -> list[tuple[str, int, str]]:
    """(searcher, seed, trial_id) of trials that ran Co-teaching's default schedule."""
    if epochs_df.empty or noise_rate is None:
        return []
    cfg_cols = [c for c in epochs_df.columns if c.startswith(CONFIG_PREFIX)]
    last = epochs_df.groupby(["searcher", "seed", "trial_id"], sort=True).tail(1)
    found = []
    for _, r in last.iterrows():
        if is_coteaching_default(config_of(r[cfg_cols].to_dict()), noise_rate):
            found.append((r["searcher"], int(r["seed"]), r["trial_id"]))
    return found


def plot_label_precision(
    epochs_df: pd.DataFrame,
    trials_df: pd.DataFrame,
    manifest: Mapping[str, Any] | None = None,
    full_epochs: int | None = None,
) -> Figure:
    best = _best_per_searcher(epochs_df, trials_df, full_epochs)
    colors = colours(best)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
    for ax, col, ylab in (
        (axes[0], "label_precision", "label precision of the selected samples\n(fraction with a correct label)"),
        (axes[1], "test_acc", "clean test accuracy"),
    ):
        for s in order_searchers(best):
            for seed, tid, top in best[s]:
                rows = _trial_rows(epochs_df, s, seed, tid)
                kw = {"lw": 2.2, "alpha": 1.0} if top else {"lw": 1.0, "alpha": 0.45}
                lab = f"{label(s)} best trial (seed {seed}, {tid})" if top else None
                gid = f"{s}/seed={seed}/{tid}"
                ax.plot(
                    rows["epoch"], rows[col], marker="o", ms=3 if top else 0, color=colors[s], label=lab, gid=gid, **kw
                )
        defaults = find_default_trials(epochs_df, _noise_rate(manifest))
        for i, (s, seed, tid) in enumerate(defaults):
            rows = _trial_rows(epochs_df, s, seed, tid)
            ax.plot(
                rows["epoch"],
                rows[col],
                color="k",
                ls="--",
                lw=1.6,
                gid=f"default/{s}/seed={seed}/{tid}",
                label=f"Co-teaching default schedule (tau = noise rate, c = 1, T_k = 10): {label(s)} seed {seed}, {tid}"
                if i == 0
                else None,
            )
        ax.set_xlabel("epoch t")
        ax.set_ylabel(ylab)
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=8, loc="best")
    note = (
        "dashed: a trial that ran Co-teaching's default schedule"
        if find_default_trials(epochs_df, _noise_rate(manifest))
        else "no trial with Co-teaching's default schedule in these results (its R(t) is in schedules.png)"
    )
    desc = describe(manifest)
    fig.suptitle(
        "Label precision and test accuracy per epoch of each searcher's best trial"
        + (f"\n{desc}" if desc else "")
        + f"\nthick: best seed; thin: the other seeds' best trials; {note}",
        fontsize=11,
    )
    return fig


# --------------------------------------------------------------------------- schedules
def run_epochs(epochs_df: pd.DataFrame, manifest: Mapping[str, Any] | None = None) -> int:
    cfg = (manifest or {}).get("config") or {}
    if cfg.get("epochs"):
        return int(cfg["epochs"])
    col = f"{CONFIG_PREFIX}epochs"
    if col in epochs_df.columns and epochs_df[col].notna().any():
        return int(epochs_df[col].max())
    return int(epochs_df["epoch"].max()) if not epochs_df.empty else 1


def _clock_points(T: int) -> int:
    """Points of the dense R(t) curves: at least every unit of the reference clock, and a
    multiple of ``T`` so that every epoch of the run (and the last) is one of them."""
    return T * max(1, math.ceil(HORIZON / T))


def _dense(config: Mapping[str, Any], T: int) -> tuple[np.ndarray, np.ndarray]:
    """R on the schedules' reference clock (:func:`_clock_points` points) in epoch units: the
    shape between the run's epochs."""
    n = _clock_points(T)
    r = keep_ratio_curve(config, n)
    x = 1.0 + np.arange(n) * T / n
    keep = x <= T + 1e-9
    return x[keep], r[keep]


def plot_schedules(
    epochs_df: pd.DataFrame,
    trials_df: pd.DataFrame,
    manifest: Mapping[str, Any] | None = None,
    full_epochs: int | None = None,
    s2e_history: Mapping[str, Any] | None = None,
) -> Figure:
    T = run_epochs(epochs_df, manifest)
    t = np.arange(1, T + 1)
    best = _best_per_searcher(epochs_df, trials_df, full_epochs)
    colors = colours(best)
    rounds, kind = None, ""
    if s2e_history and s2e_history.get("rounds"):
        rounds, kind = mean_schedule_by_round(s2e_history, _clock_points(T))  # dense, through every epoch
    ncols = 2 if rounds is not None and len(rounds) else 1
    fig, axes = plt.subplots(
        1, ncols, figsize=(7.2 * ncols if ncols == 2 else 9.5, 5.6), constrained_layout=True, squeeze=False
    )
    ax = axes[0][0]
    cfg_cols = [c for c in trials_df.columns if c.startswith(CONFIG_PREFIX)]
    skipped = []
    markers = T <= 30
    for s in order_searchers(best):
        for seed, tid, top in best[s]:
            row = trials_df[(trials_df["searcher"] == s) & (trials_df["seed"] == seed) & (trials_df["trial_id"] == tid)]
            try:
                cfg = config_of(row.iloc[0][cfg_cols].to_dict())
                r = keep_ratio_curve(cfg, T)
                xd, rd = _dense(cfg, T)
            except (KeyError, ValueError, TypeError, IndexError):
                skipped.append(s)
                continue
            kw = {"lw": 2.2, "alpha": 1.0} if top else {"lw": 1.0, "alpha": 0.45}
            lab = f"{label(s)} best configuration (seed {seed})" if top else None
            ax.plot(xd, rd, color=colors[s], label=lab, gid=f"{s}/seed={seed}", **kw)
            if markers:
                ax.plot(
                    t, r, "o", color=colors[s], ms=4 if top else 2.5, alpha=kw["alpha"], gid=f"{s}/seed={seed}/epochs"
                )
    nr = _noise_rate(manifest)
    default_cfg = coteaching_default(nr) if nr is not None else None
    if default_cfg is not None:
        xd, rd = _dense(default_cfg, T)
        ax.plot(xd, rd, "k--", lw=1.6, label=f"Co-teaching default (tau = {nr:g}, c = 1, T_k = 10)", gid="default")
        if markers:
            ax.plot(t, keep_ratio_curve(default_cfg, T), "kx", ms=5, gid="default/epochs")
    ax.set_xlabel(f"epoch t (of T = {T})" + ("; dots: the epochs a run uses" if markers else ""))
    ax.set_ylabel("R(t): fraction of small-loss samples kept")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(1, max(T, 2))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("R(t) of each searcher's best configuration", fontsize=11)
    if ncols == 2:
        ax2 = axes[0][1]
        cmap = plt.get_cmap("viridis")
        n = len(rounds)
        xr = 1.0 + np.arange(rounds.shape[1]) * T / rounds.shape[1]
        keep = xr <= T + 1e-9
        for i, r in enumerate(rounds):
            color = cmap(i / max(n - 1, 1))
            ax2.plot(xr[keep], r[keep], color=color, lw=1.6, gid=f"round={i + 1}")
            if markers:  # the run's epochs are every (points / T)-th point of the dense curve
                idx = (t - 1) * (rounds.shape[1] // T)
                ax2.plot(t, r[idx], "o", color=color, ms=3, gid=f"round={i + 1}/epochs")
        if default_cfg is not None:
            xd, rd = _dense(default_cfg, T)
            ax2.plot(xd, rd, "k--", lw=1.4, label="Co-teaching default", gid="default")
            ax2.legend(fontsize=8, loc="lower left")
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(vmin=1, vmax=max(n, 2)))
        cb = fig.colorbar(sm, ax=ax2, label="S2E round (1 = first)")
        cb.ax.yaxis.get_major_locator().set_params(integer=True)
        what = "E[R(t)] under p_θ (Monte Carlo)" if kind == "expected" else "R(t) at the mean of p_θ"
        ax2.set_title(f"S2E: {what} per round, seed {s2e_history.get('seed', '?')}", fontsize=11)
        ax2.set_xlabel(f"epoch t (of T = {T})")
        ax2.set_ylabel("R(t)")
        ax2.set_ylim(0, 1.05)
        ax2.set_xlim(1, max(T, 2))
        ax2.xaxis.get_major_locator().set_params(integer=True)
        ax2.grid(True, alpha=0.3)
    desc = describe(manifest)
    extra = f"\n(no R(t) for {', '.join(sorted(set(skipped)))}: its config has no schedule)" if skipped else ""
    fig.suptitle("Sample-selection schedules R(t)" + (f"\n{desc}" if desc else "") + extra, fontsize=12)
    return fig


def distinct_colors(png: bytes | str, tol: int = 0) -> int:
    """How many distinct RGB colours a PNG has (used by the tests to reject blank figures)."""
    img = mpimg.imread(io.BytesIO(png) if isinstance(png, bytes) else png)
    rgb = (np.asarray(img)[..., :3] * 255).round().astype(np.int64)
    if tol:
        rgb //= tol
    flat = rgb.reshape(-1, 3)
    return int(len(np.unique(flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2])))


__all__ = [
    "plot_search_efficiency",
    "plot_label_precision",
    "plot_schedules",
    "png_bytes",
    "describe",
    "distinct_colors",
]
