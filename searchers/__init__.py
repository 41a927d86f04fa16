"""Searchers: S2E (stochastic relaxation with a Newton step) for Ray Tune.

The S2E modules, by job (all but the Ray adapter pure numpy/scipy):

* ``searchers.beta``: the product-Beta search distribution ``p_theta``;
* ``searchers.s2e_maths``: the equations of Algorithm 2 / Proposition 1 of the
  seed slides (utilities, gradient and Hessian estimates, damped Newton step,
  trust region);
* ``searchers.s2e_settings``: :class:`S2ESettings`, every option of S2E;
* ``searchers.s2e_core``: :class:`S2E`, the ask/tell search;
* ``searchers.s2e_state``: the saved-state format and the history document
  read out of a saved state;
* ``searchers.s2e_search``: the Ray Tune adapter :class:`S2ESearcher`, imported
  lazily here, so importing this package never imports Ray.

``tune_space(name)`` (:func:`noisylabels.spaces.tune_space`) gives the Tune ``param_space`` of a
named search space (``s2e``: Table 1; ``s2e-authors``; ``coteaching``) for a user's own Tuner.

``FloatParam`` is :class:`noisylabels.spaces.Param`, the project's bounded-float
parameter type.
"""

from __future__ import annotations

from typing import Any

from noisylabels.spaces import Param as FloatParam
from noisylabels.spaces import tune_space
from searchers.beta import ProductBeta
from searchers.s2e_core import S2E
from searchers.s2e_maths import estimate_gradient, newton_direction, utility_transform
from searchers.s2e_settings import S2ESettings

__all__ = [
    "FloatParam",
    "ProductBeta",
    "S2E",
    "S2ESearcher",
    "S2ESettings",
    "estimate_gradient",
    "newton_direction",
    "tune_space",
    "utility_transform",
]


def __getattr__(name: str) -> Any:
    if name == "S2ESearcher":
        from searchers.s2e_search import S2ESearcher

        return S2ESearcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
