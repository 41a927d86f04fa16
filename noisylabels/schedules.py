"""R(t): the fraction of small-loss samples kept in each mini-batch at epoch t.

Schedule time
-------------
A searched configuration must describe the same *shape* whatever the epoch
budget ``T`` of a run (searches here run 20-200 epochs, the seed's experiments
200).  Schedules are therefore evaluated on a reference clock of
``HORIZON = 200`` units: epoch ``e`` (1-based) of a ``T``-epoch run sits at

    t = (e - 1) * HORIZON / T,

so the first epoch is ``t = 0`` (``R(0) = 1``: the whole noisy batch is used, as
in the original Co-teaching code) and, for ``T = 200``, ``t`` is the 0-based
epoch index of the paper.  ``T_k = 10`` therefore means "5 % of training".

Clipping
--------
Every schedule is clipped to ``[r_min, 1]``.  ``r_min`` (default ``R_MIN =
0.05``) keeps at least a few samples per mini-batch (6 of 128), so a
configuration that drops R(t) to zero cannot stop training altogether.

Forms
-----
* ``coteaching`` - Co-teaching (seed slides, "Co-teaching - Key questions"):
  ``R(t) = 1 - tau * min((t / T_k)^c, 1)``; keys ``tau``, ``c``, ``t_k``.
* ``s2e`` - the S2E search space (seed slides, Table 1 and "Define an AutoML
  problem"): ``R(t) = sum_i alpha_i f_i(t; a^i)`` with the four basis functions

      f1 = exp(-a2 t^a1)       + a3 (t/T)^a4
      f2 = exp(-a2 t^a1)       + a3 log(1 + t^a4) / log(1 + T^a4)
      f3 = (1 + a2 t)^(-a1)    + a3 (t/T)^a4
      f4 = (1 + a2 t)^(-a1)    + a3 log(1 + t^a4) / log(1 + T^a4)

  (``T = HORIZON``).  Keys ``f{i}_a{j}`` for the basis parameters and
  ``w1..w4 >= 0`` for the mixing weights, projected onto the simplex by
  ``alpha = w / sum(w)`` (uniform when all are zero).  Every basis has
  ``f_i(0) = 1``, so ``R(0) = 1``.
* ``s2e-authors`` - the S2E authors' own space (their public code, ``alg/bayes_main.py`` and
  ``heng_main.py``; 12 parameters): a forget rate on their 0..T-1 clock (``T = HORIZON``)

      F(t) = w1 (1 - exp(-b1 t^a1))
           + (1 - w1) w2 (1 - (b2 t + 1)^(-a2))
           + (1 - w1)(1 - w2) (1 - log(1 + a5) / log(1 + a5 + b5 t))
           - b3 (t/T)^a3 - b4 log(1 + t^a4) / log(1 + T^a4),

  three rising terms mixed by stick-breaking weights, minus two terms that let the forget rate
  fall again late in training; F is clipped at 0.99 from above only, ``R(t) = 1 - F(t)``
  (then the ``[r_min, 1]`` clip below).  Keys ``w1, w2, a1..a5, b1..b5``.
* ``constant`` - ``R(t) = keep`` (``keep = 1`` is standard training).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

HORIZON = 200.0
R_MIN = 0.05


def schedule_time(epoch: np.ndarray | int, epochs: int) -> np.ndarray:
    """Map 1-based epochs of a ``epochs``-long run onto the reference clock."""
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    return (np.asarray(epoch, dtype=float) - 1.0) * HORIZON / epochs


def coteaching_rate(t: np.ndarray, tau: float, c: float, t_k: float) -> np.ndarray:
    """Co-teaching's ``R(t) = 1 - tau * min((t/T_k)^c, 1)`` (unclipped)."""
    t = np.asarray(t, dtype=float)
    return 1.0 - tau * np.minimum((t / t_k) ** c, 1.0)


def _decay(kind: str, t: np.ndarray, a1: float, a2: float) -> np.ndarray:
    if kind == "exp":
        return np.exp(-a2 * t**a1)
    return (1.0 + a2 * t) ** (-a1)


def _rise(kind: str, t: np.ndarray, a4: float) -> np.ndarray:
    if kind == "pow":
        return (t / HORIZON) ** a4
    return np.log1p(t**a4) / np.log1p(HORIZON**a4)


BASES = {1: ("exp", "pow"), 2: ("exp", "log"), 3: ("inv", "pow"), 4: ("inv", "log")}


def s2e_basis(i: int, t: np.ndarray, a1: float, a2: float, a3: float, a4: float) -> np.ndarray:
    """Basis function ``f_i(t; a)`` of Table 1."""
    decay, rise = BASES[i]
    t = np.asarray(t, dtype=float)
    return _decay(decay, t, a1, a2) + a3 * _rise(rise, t, a4)


def s2e_rate(t: np.ndarray, config: Mapping[str, Any]) -> np.ndarray:
    """``sum_i alpha_i f_i(t; a^i)`` with ``alpha`` the simplex projection of ``w1..w4``."""
    w = np.array([float(config[f"w{i}"]) for i in BASES])
    if np.any(w < 0):
        raise ValueError(f"mixing weights must be non-negative, got {w.tolist()}")
    alpha = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    total = np.zeros_like(np.asarray(t, dtype=float))
    for a, i in zip(alpha, BASES, strict=True):
        params = [float(config[f"f{i}_a{j}"]) for j in range(1, 5)]
        total = total + a * s2e_basis(i, t, *params)
    return total


AUTHORS_F_MAX = 0.99  # the authors clip their forget rate from above only


def authors_forget_rate(t: np.ndarray, config: Mapping[str, Any]) -> np.ndarray:
    """``F(t)`` of the ``s2e-authors`` space (module docstring), clipped at 0.99 from above."""
    t = np.asarray(t, dtype=float)
    c = {k: float(v) for k, v in config.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    w1, w2, a5, b5 = c["w1"], c["w2"], c["a5"], c["b5"]
    exp_term = 1.0 - np.exp(-c["b1"] * t ** c["a1"])
    pow_term = 1.0 - (c["b2"] * t + 1.0) ** (-c["a2"])
    num, den = np.log1p(a5), np.log1p(a5 + b5 * t)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 at t = 0 when a5 = 0: the ratio is 1
        log_term = 1.0 - np.where(den > num, num / den, 1.0)
    rising = w1 * exp_term + (1 - w1) * w2 * pow_term + (1 - w1) * (1 - w2) * log_term
    falling = c["b3"] * (t / HORIZON) ** c["a3"] + c["b4"] * np.log1p(t ** c["a4"]) / np.log1p(HORIZON ** c["a4"])
    return np.minimum(rising - falling, AUTHORS_F_MAX)


def keep_ratio_curve(config: Mapping[str, Any], epochs: int, r_min: float = R_MIN) -> np.ndarray:
    """R for epochs ``1..epochs`` of the schedule described by a flat config dict."""
    t = schedule_time(np.arange(1, epochs + 1), epochs)
    form = config.get("schedule", "coteaching")
    if form == "coteaching":
        r = coteaching_rate(t, float(config["tau"]), float(config["c"]), float(config["t_k"]))
    elif form == "s2e":
        r = s2e_rate(t, config)
    elif form == "s2e-authors":
        r = 1.0 - authors_forget_rate(t, config)
    elif form == "constant":
        r = np.full_like(t, float(config.get("keep", 1.0)))
    else:
        raise ValueError(f"unknown schedule form {form!r}; use coteaching, s2e, s2e-authors or constant")
    r = np.nan_to_num(r, nan=r_min, posinf=1.0, neginf=r_min)
    return np.clip(r, r_min, 1.0)


def keep_ratio(config: Mapping[str, Any], epoch: int, epochs: int, r_min: float = R_MIN) -> float:
    """R for one 1-based ``epoch`` of an ``epochs``-long run."""
    return float(keep_ratio_curve(config, epochs, r_min)[epoch - 1])
