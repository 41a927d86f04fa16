"""R(t) curves of stored results: the schedule of a stored trial config, and S2E's expected
schedule per round of its history (numpy only)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from noisylabels.schedules import keep_ratio_curve
from noisylabels.spaces import Param, decode_config
from results.schema import CONFIG_PREFIX


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
    ``samples`` draws from the product-Beta(a, b) mapped to each parameter's range
    (``noisylabels.spaces.Param.from_unit``), kind ``"expected"``.  Without: R(t) of the
    mean configuration of the round (``mean``), kind ``"at-mean"``.
    """
    rounds = history.get("rounds") or []
    params = [Param.from_dict(p) for p in history.get("params") or []]
    names = [p.name for p in params] if params else list((rounds[0]["mean"] if rounds else {}).keys())
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
                cfg = {**fixed, **{p.name: p.from_unit(ui) for p, ui in zip(params, row, strict=True)}}
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
    cfg = {}
    for k, v in row.items():
        if isinstance(k, str) and k.startswith(CONFIG_PREFIX):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            cfg[k[len(CONFIG_PREFIX) :]] = v.item() if hasattr(v, "item") else v
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
