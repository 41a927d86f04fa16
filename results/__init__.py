"""Results: Parquet and W&B logging, search-efficiency analysis and plots.

``results.load(DIR)`` reads an experiment back (:mod:`results.reader`); ``results.epochs_dataset(DIR)``
gives its ``epochs/`` tree as one Hive-partitioned ``pyarrow.dataset`` for DuckDB or pyarrow.
Both are imported on first use, so ``import results.layout`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Results", "epochs_dataset", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from results import reader

        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
