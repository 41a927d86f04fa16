"""Searchers' own records of a search (S2E: its distribution p_theta per round), as strict JSON
at ``results.layout.history(searcher, seed)``.

A searcher's registry entry makes the record from its saved state
(``searchers.registry.SearcherSpec.history``; S2E's format:
``searchers.s2e_state.history_from_state``); this module writes, finds and reads it back, the
same way for every searcher.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from noisylabels.jsonable import json_safe
from results import layout
from results.store import Store


def history_path(store: Store, searcher: str, seed: int) -> str:
    """Where ``searcher``'s record of one seed lives (``layout.history``)."""
    return store.path(layout.history(searcher, seed))


def write_history(store: Store, searcher: str, seed: int, record: Mapping[str, Any]) -> str:
    """Write ``searcher``'s record of one seed to :func:`history_path`; returns the path.  The file
    is ``{"version": <the record's version, else 1>, "seed": <seed>, **record}`` as strict JSON
    (``noisylabels.jsonable.json_safe``): numpy values made plain, non-finite numbers ``null``."""
    doc = {"version": record.get("version", 1), "seed": int(seed), **record}
    path = history_path(store, searcher, seed)
    store.write_bytes(path, json.dumps(json_safe(doc), indent=1, allow_nan=False).encode())
    return path


def read_history(store: Store, searcher: str, seed: int) -> dict[str, Any] | None:
    """The record written by :func:`write_history`, or ``None`` if there is none."""
    path = history_path(store, searcher, seed)
    if not store.exists(path):
        return None
    return json.loads(store.read_bytes(path))


def history_seeds(store: Store, searcher: str) -> list[int]:
    """The seeds ``searcher`` has a record of, sorted."""
    files = store.list_files(store.path(layout.history_dir(searcher)), suffix=layout.HISTORY_FILE)
    return sorted({int(v["seed"]) for f in files if "seed" in (v := layout.partition_values(f))})
