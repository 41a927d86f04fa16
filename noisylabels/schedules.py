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
* ``s2e-ref`` - a forget-rate space in the style of the S2E authors' public
  code (12 parameters): ``R(t) = 1 - F(t)`` with

      F(t) = sum_i pi_i g_i(t) - d1 (1 - exp(-t / s1)) - d2 (t / T)^e2
      g1 = min((t/k1)^c1, 1),  g2 = 1 - exp(-(t/k2)^c2),  g3 = u / (1 + u), u = (t/k3)^c3

  three rising ramps mixed by stick-breaking weights ``pi1 = v1``,
  ``pi2 = (1 - v1) v2``, ``pi3 = (1 - v1)(1 - v2)``, minus two terms that make
  the forget rate fall again later in training (so R(t) can rise, the third
  phase of the seed's "Derive a Search Space" slide).  Keys ``k1..k3``,
  ``c1..c3``, ``v1, v2``, ``d1, s1, d2, e2``.  This is our reconstruction from
  a description of the authors' space; their exact terms were not available here.
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


def ref_forget_rate(t: np.ndarray, config: Mapping[str, Any]) -> np.ndarray:
    """``F(t)`` of the ``s2e-ref`` space (see the module docstring)."""
    t = np.asarray(t, dtype=float)
    c = {k: float(v) for k, v in config.items() if isinstance(v, int | float)}
    u3 = (t / c["k3"]) ** c["c3"]
    rising = [
        np.minimum((t / c["k1"]) ** c["c1"], 1.0),
        1.0 - np.exp(-((t / c["k2"]) ** c["c2"])),
        u3 / (1.0 + u3),
    ]
    v1, v2 = c["v1"], c["v2"]
    weights = [v1, (1 - v1) * v2, (1 - v1) * (1 - v2)]
    total = sum(w * g for w, g in zip(weights, rising, strict=True))
    falling = c["d1"] * (1.0 - np.exp(-t / c["s1"])) + c["d2"] * (t / HORIZON) ** c["e2"]
    return total - falling


def keep_ratio_curve(config: Mapping[str, Any], epochs: int, r_min: float = R_MIN) -> np.ndarray:
    """R for epochs ``1..epochs`` of the schedule described by a flat config dict."""
    t = schedule_time(np.arange(1, epochs + 1), epochs)
    form = config.get("schedule", "coteaching")
    if form == "coteaching":
        r = coteaching_rate(t, float(config["tau"]), float(config["c"]), float(config["t_k"]))
    elif form == "s2e":
        r = s2e_rate(t, config)
    elif form == "s2e-ref":
        r = 1.0 - ref_forget_rate(t, config)
    elif form == "constant":
        r = np.full_like(t, float(config.get("keep", 1.0)))
    else:
        raise ValueError(f"unknown schedule form {form!r}; use coteaching, s2e, s2e-ref or constant")
    r = np.nan_to_num(r, nan=r_min, posinf=1.0, neginf=r_min)
    return np.clip(r, r_min, 1.0)


def keep_ratio(config: Mapping[str, Any], epoch: int, epochs: int, r_min: float = R_MIN) -> float:
    """R for one 1-based ``epoch`` of an ``epochs``-long run."""
    return float(keep_ratio_curve(config, epochs, r_min)[epoch - 1])
