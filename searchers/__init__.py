"""Searchers: S2E (stochastic relaxation with a Newton step) for Ray Tune.

``searchers.relaxation`` and ``searchers.beta`` are pure numpy/scipy.  The Ray
adapter :class:`S2ESearcher` lives in ``searchers.s2e_search`` and is imported lazily
here, so importing this package never imports Ray.
"""

from __future__ import annotations

from typing import Any

from searchers.beta import ProductBeta
from searchers.relaxation import S2E, FloatParam

__all__ = ["FloatParam", "ProductBeta", "S2E", "S2ESearcher"]


def __getattr__(name: str) -> Any:
    if name == "S2ESearcher":
        from searchers.s2e_search import S2ESearcher

        return S2ESearcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
