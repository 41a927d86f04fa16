"""The replay's objective: a trial's per-epoch metrics answered from a recording
(``s2e_tune.replay.recording``) instead of training.

A query is a configuration of any space.  Its keep-ratio curve q = R(1..T)
(``trainables.engine.keep_curve``, the curve the Trainer follows) is compared with
the recorded curves of the same setting and data seed by RMS distance over epochs.  The answer is

    m(q) + sqrt(1 - sum_i w_i^2) * e,

where m(q) = sum_i w_i M_i is the inverse-distance-weighted mean of the ``k`` nearest recorded
trainings' metric curves M_i (weights w_i summing to 1; a query on a recorded curve gets that
training's own curve, w = 1), and e is the residual curve of one repeated training (a recorded
schedule trained again with another seed, minus the mean of that schedule's trainings, scaled to
unbiased), drawn by a seed from the search seed and the query.  The factor keeps the answer's
noise variance that of one real training: m(q) already carries sigma^2 sum w_i^2 of it.  Every
metric of an epoch uses the same weights and the same residual, so val_acc, test_acc and the label
precision of a replayed trial stay consistent with each other.  Same query, same seed: same
answer, as a fixed-seed training gives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from results.schema import METRIC_COLUMNS
from s2e_tune.replay.recording import KEY_COLUMNS
from trainables.engine import keep_curve

# the columns a replayed epoch carries, in the Trainer's names; OBJECTIVES maps an objective to
# the recorded columns that play val_acc / val_loss
REPLAYED = tuple(c for c in METRIC_COLUMNS if c not in ("kept_ratio",))
OBJECTIVES = {"noisy": ("val_acc", "val_loss"), "clean": ("val_acc_clean", "val_loss_clean")}


@dataclass
class ReplayTable:
    """The recorded trainings of one (setting, data seed), ready to answer queries."""

    keep: np.ndarray  # (n, T) recorded keep-ratio curves (the search's own training seed)
    metrics: np.ndarray  # (n, T, C) their metric curves, columns REPLAYED
    residuals: np.ndarray  # (r, T, C) noise curves from the repeated trainings
    epochs: int
    k: int = 3

    @classmethod
    def from_recording(
        cls, df: pd.DataFrame, setting: str, data_seed: int, objective: str = "noisy", k: int = 3
    ) -> ReplayTable:
        """The table of ``setting`` and ``data_seed`` of a recording (``recording.parquet`` rows)."""
        g = df[(df["setting"] == setting) & (df["data_seed"] == data_seed)]
        if g.empty:
            raise ValueError(f"the recording has no trainings of {setting} with data seed {data_seed}")
        epochs = int(g["epoch"].max())
        acc, loss = OBJECTIVES[objective]
        cols = [acc if c == "val_acc" else loss if c == "val_loss" else c for c in REPLAYED]
        keep, curves, ids = [], [], []
        for key, t in g.groupby(list(KEY_COLUMNS), sort=True):
            frame = t.set_index("epoch").reindex(range(1, epochs + 1)).ffill()
            keep.append(frame["kept_ratio"].to_numpy(float))
            curves.append(frame[cols].to_numpy(float))
            ids.append(key)
        keep_a, curves_a = np.array(keep), np.array(curves)
        schedule = np.array([i[2] for i in ids])
        main = np.array([i[3] == data_seed for i in ids])
        residuals = []
        for s in np.unique(schedule):
            rows = np.flatnonzero(schedule == s)
            if len(rows) < 2:
                continue
            c = curves_a[rows]
            residuals.append((c - c.mean(axis=0)) * np.sqrt(len(rows) / (len(rows) - 1)))
        res = np.concatenate(residuals) if residuals else np.zeros((1, epochs, len(cols)))
        return cls(keep_a[main], curves_a[main], res, epochs, k)

    @property
    def noise_sd(self) -> np.ndarray:
        """Per epoch and column, the standard deviation of one training around its schedule's mean."""
        return np.sqrt(np.mean(self.residuals**2, axis=0))

    def weights(self, q: np.ndarray, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and weights of the ``k`` recorded curves nearest to ``q`` (``exclude``: leave
        that recorded training out, for a leave-one-out check)."""
        d = np.sqrt(np.mean((self.keep - q) ** 2, axis=1))
        if exclude is not None:
            d[exclude] = np.inf
        idx = np.argsort(d, kind="stable")[: self.k]
        if d[idx[0]] < 1e-9:
            return idx[:1], np.ones(1)
        w = 1.0 / d[idx]
        return idx, w / w.sum()

    def mean_curve(self, q: np.ndarray, exclude: int | None = None) -> tuple[np.ndarray, float]:
        """m(q) (T, C) and sum_i w_i^2."""
        idx, w = self.weights(q, exclude)
        return np.tensordot(w, self.metrics[idx], axes=1), float(np.sum(w**2))

    def answer(self, q: np.ndarray, draw: int) -> np.ndarray:
        """The replayed metric curves (T, C) of keep-ratio curve ``q``; ``draw`` picks the noise."""
        m, w2 = self.mean_curve(q)
        e = self.residuals[draw % len(self.residuals)]
        return m + np.sqrt(max(0.0, 1.0 - w2)) * e


def query_curve(config: dict, epochs: int) -> np.ndarray:
    """The keep-ratio curve R(1..epochs) a trial of ``config`` trains with (the Trainer's own rule)."""
    return keep_curve(config, epochs)


def draw_of(seed: int, q: np.ndarray) -> int:
    """A reproducible noise draw for (search seed, query curve)."""
    h = hashlib.blake2b(np.round(q, 6).tobytes() + int(seed).to_bytes(8, "little", signed=True), digest_size=8)
    return int.from_bytes(h.digest(), "little")
