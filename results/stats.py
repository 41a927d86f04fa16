"""Mean and standard error over seeds, and how a ``mean ± se`` cell is written - one home for both.

The standard error is ``std(ddof=1) / sqrt(n)`` over the ``n`` seeds that have a value; with one
seed it is NaN (README, "Results": every figure and table is mean ± s.e. over seeds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

DASH = "–"  # a cell with no value


def mean_se(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard error of the non-NaN ``values``; ``(nan, nan)`` when there are none."""
    x = np.asarray([float(v) for v in values], dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), se


def se(values: Iterable[float]) -> float:
    """The standard error alone (see :func:`mean_se`)."""
    return mean_se(values)[1]


def mean_se_columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise mean and standard error over seeds (rows), defined only where every row has a
    value (NaN elsewhere).  Returns ``(mean, se, n)`` with ``n`` the rows with a value."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    n = np.sum(~np.isnan(values), axis=0)
    complete = n == values.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(complete, np.nanmean(np.where(complete, values, 0.0), axis=0), np.nan)
        if values.shape[0] > 1:
            sd = np.std(np.where(complete, values, 0.0), axis=0, ddof=1)
            se_ = np.where(complete, sd / np.sqrt(values.shape[0]), np.nan)
        else:
            se_ = np.full(values.shape[1], np.nan)
    return mean, se_, n


def _missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


def pm(mean: float | None, se_: float | None = None, digits: int = 4, signed: bool = False) -> str:
    """``0.4123 ± 0.0051`` (``+0.0123 ± ...`` with ``signed``); the ``± se`` part is left out
    when the standard error is missing, and a missing mean is :data:`DASH`."""
    if _missing(mean):
        return DASH
    s = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return s + ("" if _missing(se_) else f" ± {se_:.{digits}f}")
