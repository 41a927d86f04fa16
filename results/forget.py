"""Forget one search: delete everything a (searcher, seed) search left in an experiment.

Used by ``bench search --rerun`` (run those searches again) and by ``run_search`` when a resumed
search's Tune state cannot be read (start it again).  What one search leaves is listed in
:func:`results.layout.search_paths`; the tables and plots are rebuilt from the parts.
"""

from __future__ import annotations

from results import layout
from results.store import Store


def forget_search(store: Store, searcher: str, seed: int) -> list[str]:
    """Delete the search's done marker, Tune experiment, history and Parquet parts; returns
    the paths removed (those that existed)."""
    return [p for p in (store.path(rel) for rel in layout.search_paths(searcher, seed)) if store.delete(p)]
