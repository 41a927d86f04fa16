"""S2E's saved-state format: JSON encoding of floats, the RNG, the per-round
records and the sample-reuse buffer, and the per-round history document read
back out of a saved ``S2ESearcher`` state.

``S2E.get_state()`` (:mod:`searchers.s2e_core`) stores non-finite floats as the
strings ``"nan"``, ``"inf"``, ``"-inf"`` (:func:`encode_float`) so that the
state is strict JSON; :func:`decode_float` reads them back.
:func:`history_from_state` turns ``S2ESearcher.get_state()`` (the dict Tune
pickles) into the JSON history document the results layer writes.

Pure Python/numpy: no ray.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from noisylabels.jsonable import json_safe

__all__ = [
    "HISTORY_VERSION",
    "decode_buffer",
    "decode_float",
    "decode_history",
    "encode_buffer",
    "encode_float",
    "encode_history",
    "history_from_state",
    "jsonable_rng_state",
    "rng_from_state",
]

HISTORY_VERSION = 1


# ------------------------------------------------------------------ encoding
def encode_float(v: float | None) -> float | str | None:
    """JSON-safe float: finite floats as themselves, non-finite as a string."""
    if v is None:
        return None
    v = float(v)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def decode_float(v: float | str | None) -> float | None:
    """Inverse of :func:`encode_float`."""
    if v is None:
        return None
    return float(v)


def jsonable_rng_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """``bit_generator.state`` with numpy scalars/arrays turned into plain Python."""

    def conv(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, np.generic):
            return v.item()
        return v

    return conv(state)


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """A generator continuing exactly where :func:`jsonable_rng_state`'s source was."""
    rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
    rng.bit_generator.state = state
    return rng


def encode_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """S2E's per-round records with their ``values`` and ``best_value`` JSON-safe."""
    return [
        {**rec, "values": [encode_float(v) for v in rec["values"]], "best_value": encode_float(rec["best_value"])}
        for rec in history
    ]


def decode_history(history: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Inverse of :func:`encode_history`."""
    return [
        {**rec, "values": [decode_float(v) for v in rec["values"]], "best_value": decode_float(rec["best_value"])}
        for rec in history
    ]


def encode_buffer(buffer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """S2E's sample-reuse buffer (per round: theta's ``a``/``b``, samples ``x``, ``cost``) as JSON."""
    return [
        {"a": r["a"], "b": r["b"], "x": r["x"].tolist(), "cost": [encode_float(v) for v in r["cost"]]} for r in buffer
    ]


def decode_buffer(buffer: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Inverse of :func:`encode_buffer` (``x`` and ``cost`` as float arrays)."""
    return [
        {
            "a": list(r["a"]),
            "b": list(r["b"]),
            "x": np.array(r["x"], dtype=float),
            "cost": np.array([decode_float(v) for v in r["cost"]], dtype=float),
        }
        for r in buffer
    ]


# ------------------------------------------------------------------- history
def _lenient_float(v: Any) -> Any:
    """A value of a saved history: encoded strings back to floats, anything else as is."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _param_dict(p: Any) -> dict[str, Any]:
    d = p.to_dict() if hasattr(p, "to_dict") else dict(p)
    return {"name": str(d["name"]), "low": float(d["low"]), "high": float(d["high"]), "log": bool(d.get("log", False))}


def history_from_state(state: Mapping[str, Any], fixed: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The per-round history document of a saved ``S2ESearcher.get_state()``,
    or ``None`` if the search never started (no S2E state inside).

    Strict JSON (non-finite numbers are ``None``), without the ``"seed"`` key
    (the writer adds it)::

        {"version": 1,
         "params": [{"name": "f1_a1", "low": 0.1, "high": 1.5, "log": false}, ...] | null,
         "fixed": {"schedule": "s2e"} | null,                # the given constant config keys
         "rounds": [{"round": 0, "a": [...], "b": [...],     # theta = (a, b) that sampled the round
                     "mean": {name: float}, "var": {name: float},  # moments of p_theta, own units
                     "configs": [{name: float}, ...], "values": [float|null, ...],
                     "best_value": float|null, "best_config": {...}|null, "kl": float}, ...]}

    ``params`` come from the searcher's own ``state["params"]`` (path, param)
    pairs, else from the S2E state's.
    """
    core = state.get("s2e")
    if not core:
        return None
    params = [p for _, p in state.get("params") or []] or core.get("params")
    rounds = []
    for rec in core.get("history") or []:
        rec = dict(rec)
        rec["values"] = [_lenient_float(v) for v in rec.get("values", [])]
        rec["best_value"] = _lenient_float(rec.get("best_value"))
        rounds.append(rec)
    doc = {
        "version": HISTORY_VERSION,
        "params": None if params is None else [_param_dict(p) for p in params],
        "fixed": dict(fixed) if fixed is not None else None,
        "rounds": rounds,
    }
    return json_safe(doc)
