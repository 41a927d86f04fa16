"""What a recording can stand for, measured from the recording alone (no training):

* **evaluation noise** -- the standard deviation of one training's final ``val_acc`` (noisy and
  clean labels) and test accuracy around its schedule's mean, from the repeated schedules (the
  noise the replay adds, ``table.ReplayTable.noise_sd``);
* **density** -- the leave-one-out error of the replay's mean m(q) at the recorded schedules: each
  recorded training predicted from the others (its own curve left out), RMS over trainings of the
  final ``val_acc`` error, beside the noise: an error near sigma * sqrt(1 + sum w^2) means the
  neighbours are as good as a repeat of the same schedule; more means the recording is too sparse
  there and the replay smooths the landscape;
* **memorisation within the horizon** -- R = 1 (no selection: two networks trained on every
  sample, i.e. standard training) against Co-teaching's default schedule: peak test accuracy, its
  epoch, and the final value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from s2e_tune.replay.table import REPLAYED, ReplayTable

FINAL = ("val_acc", "test_acc")


def noise(df: pd.DataFrame, setting: str, data_seed: int, objective: str) -> dict[str, float]:
    """Final-epoch noise SD of ``val_acc`` (in the objective's labels) and ``test_acc``."""
    t = ReplayTable.from_recording(df, setting, data_seed, objective)
    sd = t.noise_sd[-1]
    return {c: float(sd[REPLAYED.index(c)]) for c in FINAL} | {"repeats": int(len(t.residuals))}


def leave_one_out(df: pd.DataFrame, setting: str, data_seed: int, objective: str) -> dict[str, float]:
    """RMS error of m(q) for the final ``val_acc`` of every recorded training with its own curve
    left out, the mean sum of squared weights, and the spread of the recorded finals."""
    t = ReplayTable.from_recording(df, setting, data_seed, objective)
    col = REPLAYED.index("val_acc")
    errs, w2s = [], []
    for i in range(len(t.keep)):
        m, w2 = t.mean_curve(t.keep[i], exclude=i)
        errs.append(m[-1, col] - t.metrics[i, -1, col])
        w2s.append(w2)
    finals = t.metrics[:, -1, col]
    return {
        "trainings": int(len(t.keep)),
        "loo_rmse": float(np.sqrt(np.mean(np.square(errs)))),
        "mean_w2": float(np.mean(w2s)),
        "finals_sd": float(np.std(finals, ddof=1)) if len(finals) > 1 else math.nan,
        "finals_range": (float(finals.min()), float(finals.max())),
    }


def memorisation(df: pd.DataFrame, setting: str, data_seed: int) -> dict[str, Any]:
    """Peak and final test accuracy of R = 1 and of Co-teaching's default, seed's own training."""
    out: dict[str, Any] = {}
    g = df[(df["setting"] == setting) & (df["data_seed"] == data_seed) & (df["train_seed"] == data_seed)]
    for space in ("keep-all", "coteaching-default"):
        s = g[g["space"] == space].sort_values("epoch")
        if s.empty:
            continue
        acc = s["test_acc"].to_numpy(float)
        k = int(np.argmax(acc))
        out[space] = {"peak": float(acc[k]), "peak_epoch": int(s["epoch"].iloc[k]), "final": float(acc[-1])}
    return out
