"""Every option of S2E in one frozen, validated dataclass: :class:`S2ESettings`.

:class:`searchers.s2e_core.S2E` builds one from its keyword arguments (or takes
one as ``settings=``), saves it with its state (:meth:`S2ESettings.to_dict`)
and restores it from there (:meth:`S2ESettings.from_dict`), so the options are
listed only here.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import numpy as np

from searchers.s2e_maths import HESSIANS, REUSE_WEIGHTS, STEPS, UTILITIES
from searchers.s2e_surrogate import SURROGATES

__all__ = ["S2ESettings"]


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and not math.isnan(v)


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_)) or (_is_int(v) and v in (0, 1))


@dataclass(frozen=True)
class S2ESettings:
    """The options of one S2E search (the seed slides, Algorithm 2, plus the
    stabilisers described in :mod:`searchers.s2e_core`).

    The first four may be given positionally, in this order (as ``S2E(params,
    K, seed, maximize, rounds)``); the others by keyword only.

    Args:
        samples_per_round: K, configurations per round (int >= 2).
        seed: seed of the sampler (``None`` or an int >= 0).
        maximize: maximise the told values instead of minimising them.
        rounds: M, number of rounds; ``None`` = no limit.
        utility: how values become costs, one of ``UTILITIES``
            (:func:`searchers.s2e_maths.utility_transform`).
        step: ``"newton"`` (the damped Newton step) or the first-order
            baselines ``"natural"`` / ``"gradient"``.
        hessian: ``"full"`` ``2d x 2d`` Hessian of Proposition 1 or ``"block"``
            (one 2x2 block per hyperparameter).
        eig_floor: damping, in (0, 1]: eigenvalues of the whitened Hessian are
            floored at ``eig_floor`` times the largest.
        hessian_memory: weight of the past in the pooled whitened Hessian, in [0, 1).
        kl_per_param: trust region per hyperparameter (> 0), used when
            ``max_kl`` is ``None``: ``max_kl = kl_per_param * d``.
        fill_trust_region: follow the Newton direction to the trust-region
            boundary instead of taking Newton's own length.
        reuse_rounds: earlier rounds whose samples are reused (int >= 0).
        reuse_weights: how reused samples are weighted, one of ``REUSE_WEIGHTS``:
            ``"ratio"`` (``p_theta / p_theta_then``, :func:`searchers.s2e_maths.importance_weights`)
            or ``"mixture"`` (``p_theta`` over the mixture of the rounds' distributions,
            :func:`searchers.s2e_maths.mixture_weights`).
        surrogate: control variate for the gradient and Hessian, one of ``SURROGATES``
            (:mod:`searchers.s2e_surrogate`): ``"none"`` (the plain estimator on
            ``utility``), ``"linear"`` or ``"quadratic"`` (a ridge surrogate on every evaluated
            point; the values are then standardised over all of them, ``utility`` unused).
        surrogate_ridge: ridge penalty of the surrogate (> 0).
        init_concentration: the first distribution, ``theta^1 = c`` for every ``a`` and ``b``:
            ``Beta(c, c)`` on each parameter, centred on its range (``1``: uniform, Algorithm 2,
            step 1; ``c`` in ``[1, theta_max]``).
        max_kl: the trust region ``KL(p_old || p_new) <= max_kl`` (> 0), or
            ``None`` for ``kl_per_param * d`` (see :meth:`resolved`).
        theta_max: upper bound of every Beta parameter (> 1).
        eps: samples are clipped to ``[eps, 1 - eps]``, in (0, 0.5).

    Invalid values raise ``ValueError`` with one line naming the option.
    """

    samples_per_round: int = 8
    seed: int | None = None
    maximize: bool = False
    rounds: int | None = None
    _: KW_ONLY
    utility: str = "rank"
    step: str = "newton"
    hessian: str = "full"
    eig_floor: float = 0.5
    hessian_memory: float = 0.8
    kl_per_param: float = 0.1
    fill_trust_region: bool = True
    reuse_rounds: int = 2
    reuse_weights: str = "ratio"
    surrogate: str = "none"
    surrogate_ridge: float = 1.0
    init_concentration: float = 1.0
    max_kl: float | None = None
    theta_max: float = 1e3
    eps: float = 1e-7

    def __post_init__(self) -> None:
        def bad(name: str, need: str) -> ValueError:
            return ValueError(f"{name} must be {need}, got {getattr(self, name)!r}")

        def choice(name: str, options: tuple[str, ...]) -> None:
            if getattr(self, name) not in options:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {options}")

        def real(name: str, need: str, ok: Any) -> None:
            v = getattr(self, name)
            if not _is_real(v) or not ok(float(v)):
                raise bad(name, need)
            object.__setattr__(self, name, float(v))

        if not _is_int(self.samples_per_round) or self.samples_per_round < 2:
            raise bad("samples_per_round", "an int >= 2")
        object.__setattr__(self, "samples_per_round", int(self.samples_per_round))
        if self.seed is not None:
            if not _is_int(self.seed) or self.seed < 0:
                raise bad("seed", "None or an int >= 0")
            object.__setattr__(self, "seed", int(self.seed))
        for name in ("maximize", "fill_trust_region"):
            if not _is_bool(getattr(self, name)):
                raise bad(name, "a bool")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if self.rounds is not None:
            if not _is_int(self.rounds) or self.rounds < 1:
                raise bad("rounds", "None or an int >= 1")
            object.__setattr__(self, "rounds", int(self.rounds))
        choice("utility", UTILITIES)
        choice("step", STEPS)
        choice("hessian", HESSIANS)
        choice("reuse_weights", REUSE_WEIGHTS)
        choice("surrogate", SURROGATES)
        real("surrogate_ridge", "> 0", lambda v: v > 0.0)
        real("eig_floor", "in (0, 1]", lambda v: 0.0 < v <= 1.0)
        real("hessian_memory", "in [0, 1)", lambda v: 0.0 <= v < 1.0)
        real("kl_per_param", "> 0", lambda v: v > 0.0)
        if not _is_int(self.reuse_rounds) or self.reuse_rounds < 0:
            raise bad("reuse_rounds", "an int >= 0")
        object.__setattr__(self, "reuse_rounds", int(self.reuse_rounds))
        if self.max_kl is not None:
            real("max_kl", "None or > 0", lambda v: v > 0.0)
        real("theta_max", "> 1", lambda v: v > 1.0)
        real("init_concentration", f"in [1, theta_max = {self.theta_max}]", lambda v: 1.0 <= v <= self.theta_max)
        real("eps", "in (0, 0.5)", lambda v: 0.0 < v < 0.5)

    def resolved(self, dim: int) -> S2ESettings:
        """These settings with ``max_kl`` fixed for ``dim`` hyperparameters
        (``kl_per_param * dim`` when it is ``None``)."""
        if self.max_kl is not None:
            return self
        return dataclasses.replace(self, max_kl=self.kl_per_param * dim)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable ``{option: value}`` (saved in S2E's state)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> S2ESettings:
        """Inverse of :meth:`to_dict`; missing options take their defaults (a
        version-1 S2E state has no ``kl_per_param``), unknown ones are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown S2E settings {unknown}; known: {sorted(names)}")
        return cls(**dict(d))
