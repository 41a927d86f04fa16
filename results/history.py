"""Searchers' own records of a search (S2E: its distribution p_theta per round), as JSON at
``results.layout.history(searcher, seed)``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from results.store import Store

HISTORY_VERSION = 1


def s2e_history_path(store: Store, seed: int) -> str:
    """Where the S2E searcher's per-round history of one seed lives: ``<root>/s2e/seed=<k>/history.json``."""
    return store.path("s2e", f"seed={int(seed)}", "history.json")


def _json_safe(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [_json_safe(x) for x in v]
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    return v


def _param_dict(p: Any) -> dict[str, Any]:
    d = p.to_dict() if hasattr(p, "to_dict") else dict(p)
    return {"name": str(d["name"]), "low": float(d["low"]), "high": float(d["high"]), "log": bool(d.get("log", False))}


def write_s2e_history(
    store: Store,
    seed: int,
    history: Sequence[Mapping[str, Any]],
    params: Sequence[Any] | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> str:
    """Write ``S2ESearcher.history`` of one seed as JSON to :func:`s2e_history_path`; returns the path.

    ``params``: the searched parameters (``S2ESearcher.s2e.params``: ``FloatParam`` or dicts
    with ``name, low, high, log``), needed to draw the mean schedule under p_θ; ``fixed``:
    constant config keys (e.g. ``{"schedule": "s2e"}``; inferred from the names if absent).

    Format (strict JSON; non-finite numbers are ``null``)::

        {"version": 1, "seed": 0,
         "params": [{"name": "f1_a1", "low": 0.1, "high": 1.5, "log": false}, ...] | null,
         "fixed": {"schedule": "s2e"},
         "rounds": [{"round": 0, "a": [...], "b": [...],          # theta = (a, b) that sampled the round
                     "mean": {name: float}, "var": {name: float},  # moments of p_theta, own units
                     "configs": [{name: float}, ...], "values": [float|null, ...],
                     "best_value": float|null, "best_config": {...}|null, "kl": float}, ...]}
    """
    doc = {
        "version": HISTORY_VERSION,
        "seed": int(seed),
        "params": None if params is None else [_param_dict(p) for p in params],
        "fixed": dict(fixed) if fixed is not None else None,
        "rounds": [dict(r) for r in history],
    }
    path = s2e_history_path(store, seed)
    store.write_bytes(path, json.dumps(_json_safe(doc), indent=1, allow_nan=False).encode())
    return path


def write_s2e_history_of(store: Store, seed: int, searcher: Any, fixed: Mapping[str, Any] | None = None) -> str:
    """:func:`write_s2e_history` from an ``S2ESearcher`` (its ``history`` and ``s2e.params``)."""
    core = getattr(searcher, "s2e", None)
    params = list(core.params) if core is not None else None
    return write_s2e_history(store, seed, searcher.history, params=params, fixed=fixed)


def _dec(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def write_s2e_history_from_state(
    store: Store, seed: int, state: Mapping[str, Any], fixed: Mapping[str, Any] | None = None
) -> str | None:
    """:func:`write_s2e_history` from ``S2ESearcher.get_state()`` - the dict Tune pickles as
    ``<tune experiment>/searcher-state-*.pkl`` - so a resumed search (whose searcher object
    lives inside Tune) can be written too.  Returns ``None`` if the search never started."""
    core = state.get("s2e")
    if not core:
        return None
    params = [p for _, p in state.get("params") or []] or core.get("params")
    rounds = []
    for rec in core.get("history") or []:
        rec = dict(rec)
        rec["values"] = [_dec(v) for v in rec.get("values", [])]
        rec["best_value"] = _dec(rec.get("best_value"))
        rounds.append(rec)
    return write_s2e_history(store, seed, rounds, params=params, fixed=fixed)


def read_s2e_history(store: Store, seed: int) -> dict[str, Any] | None:
    """The history written by :func:`write_s2e_history`, or ``None`` if there is none."""
    path = s2e_history_path(store, seed)
    if not store.exists(path):
        return None
    return json.loads(store.read_bytes(path))


def s2e_history_seeds(store: Store) -> list[int]:
    files = store.list_files(store.path("s2e"), suffix="history.json")
    seeds = []
    for f in files:
        for seg in f.split("/"):
            if seg.startswith("seed="):
                seeds.append(int(seg.split("=", 1)[1]))
    return sorted(set(seeds))
