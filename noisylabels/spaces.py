"""Search spaces over R(t), in a searcher-neutral form.

Each space is a list of bounded scalar parameters (:class:`Param`, the project's
one bounded-float type, with the unit-cube maps S2E samples through) plus the
fixed keys that tell :func:`noisylabels.schedules.keep_ratio_curve` which form
to evaluate.  The run command translates a space into each searcher's own form
(Tune domains for random/BO/TPE/Hyperband/BOHB, and the same domains for S2E,
whose core rescales every parameter to [0, 1] with :meth:`Param.to_unit`).

Ranges (schedule time on the 200-unit reference clock, see ``schedules``):

* ``s2e`` (Table 1 of the seed slides): decay exponent/power ``a1``, decay speed ``a2``
  (log-uniform), rise amplitude ``a3`` and rise shape ``a4`` (log-uniform) for
  each of the four bases, and four mixing weights ``w_i`` in [0, 1].
  20 parameters.
* ``s2e-authors``: the S2E authors' own forget-rate space, with their ranges: ``w1, w2, a1,
  a2, a5`` in [0, 1], ``b1, b2, b3, b4, b5`` in [0, 0.5], ``a3, a4`` in [0, 2] (12 parameters).
* ``coteaching``: ``tau`` in [0, 0.9], ``c`` in [0.25, 4] (log), ``T_k`` in
  [1, 100] reference units (log) - the knobs of Co-teaching's own schedule.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from noisylabels.errors import UserError


@dataclass(frozen=True)
class Param:
    """A bounded float hyperparameter ``name`` in ``[low, high]``, the project's one such type.

    Validated on construction (``ValueError``): a non-empty name, finite real
    bounds with ``low < high`` (stored as floats), a bool ``log``, and
    ``low > 0`` when ``log``.  ``log=True`` means uniform in log space.

    The unit-cube maps are the ones S2E samples through (its product-Beta lives
    on ``(0, 1)^d``): :meth:`from_unit` sends ``u`` in ``[0, 1]`` to the value,
    :meth:`to_unit` back.  On the log scale ``u = log(v / low) / log(high /
    low)``, so a uniform ``u`` is the log-uniform distribution.  The searchers
    package re-exports this class as ``FloatParam``.
    """

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"parameter name must be a non-empty string, got {self.name!r}")
        for field in ("low", "high"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{self.name}: {field} must be a finite number, got {v!r}")
            object.__setattr__(self, field, float(v))
        if not self.low < self.high:
            raise ValueError(f"{self.name}: need low < high, got [{self.low}, {self.high}]")
        if not isinstance(self.log, (bool, np.bool_)):
            raise ValueError(f"{self.name}: log must be a bool, got {self.log!r}")
        object.__setattr__(self, "log", bool(self.log))
        if self.log and self.low <= 0:
            raise ValueError(f"{self.name}: a log-scale parameter needs low > 0, got {self.low}")

    def to_unit(self, value: float) -> float:
        """Map a value in ``[low, high]`` to ``[0, 1]`` (inverse of :meth:`from_unit`)."""
        if self.log:
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        """Map ``u`` in ``[0, 1]`` to the parameter's own units (``u`` and the value clipped to range)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            v = self.low * math.exp(u * math.log(self.high / self.low))
        else:
            v = self.low + u * (self.high - self.low)
        return min(max(v, self.low), self.high)

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "low", "high", "log"}``, the form saved in S2E's state and histories."""
        return {"name": self.name, "low": self.low, "high": self.high, "log": self.log}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Param:
        """Inverse of :meth:`to_dict` (``log`` defaults to ``False``)."""
        return cls(d["name"], d["low"], d["high"], bool(d.get("log", False)))


@dataclass(frozen=True)
class Space:
    name: str
    params: tuple[Param, ...]
    fixed: dict[str, Any]
    doc: str

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def config_from_unit(self, u: Sequence[float]) -> dict[str, Any]:
        """The configuration at point ``u`` of the unit cube (one coordinate per parameter, in
        order; :meth:`Param.from_unit`), with the space's fixed keys."""
        return {**self.fixed, **{p.name: p.from_unit(float(x)) for p, x in zip(self.params, u, strict=True)}}


def _s2e_params() -> tuple[Param, ...]:
    params: list[Param] = []
    for i in range(1, 5):
        exp_decay = i in (1, 2)
        params += [
            Param(f"f{i}_a1", 0.1, 1.5 if exp_decay else 2.0),
            Param(f"f{i}_a2", 1e-3, 1.0, log=True),
            Param(f"f{i}_a3", 0.0, 1.0),
            Param(f"f{i}_a4", 0.05, 5.0, log=True),
        ]
    params += [Param(f"w{i}", 0.0, 1.0) for i in range(1, 5)]
    return tuple(params)


SPACES: dict[str, Space] = {
    "s2e": Space(
        "s2e",
        _s2e_params(),
        {"schedule": "s2e"},
        "the 4-basis space of Table 1 (20 parameters)",
    ),
    "s2e-authors": Space(
        "s2e-authors",
        (
            *[Param(n, 0.0, 1.0) for n in ("w1", "w2", "a1", "a2", "a5")],
            *[Param(n, 0.0, 0.5) for n in ("b1", "b2", "b5", "b3", "b4")],
            *[Param(n, 0.0, 2.0) for n in ("a3", "a4")],
        ),
        {"schedule": "s2e-authors"},
        "the S2E authors' 12-parameter forget-rate space (3 mixed rising terms minus 2 falling ones)",
    ),
    "coteaching": Space(
        "coteaching",
        (
            Param("tau", 0.0, 0.9),
            Param("c", 0.25, 4.0, log=True),
            Param("t_k", 1.0, 100.0, log=True),
        ),
        {"schedule": "coteaching"},
        "Co-teaching's own schedule: tau, c, T_k (3 parameters)",
    ),
}


LOG10_SUFFIX = "__log10"


def to_tune(space: Space, log_as_uniform: bool = False) -> dict[str, Any]:
    """Tune domains for a space, plus its fixed keys.

    ``log_as_uniform`` presents each log-scaled parameter ``p`` as a uniform
    ``p__log10`` in ``[log10 low, log10 high]``, for searchers that ignore Tune's
    log-uniform sampler (BayesOptSearch); :func:`decode_config` maps it back.
    """
    from ray import tune

    out: dict[str, Any] = dict(space.fixed)
    for p in space.params:
        if p.log and log_as_uniform:
            out[p.name + LOG10_SUFFIX] = tune.uniform(math.log10(p.low), math.log10(p.high))
        elif p.log:
            out[p.name] = tune.loguniform(p.low, p.high)
        else:
            out[p.name] = tune.uniform(p.low, p.high)
    return out


def tune_space(name: str = "s2e") -> dict[str, Any]:
    """The Tune ``param_space`` entries of the space called ``name`` (:data:`SPACES`): its fixed
    ``schedule`` key and one ``tune.uniform``/``tune.loguniform`` per parameter.  Merge it with a
    trial's training settings (``trainables.engine.TRAIN_DEFAULTS``) for ``tune.Tuner``."""
    return to_tune(get_space(name))


def decode_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Undo :func:`to_tune`'s log10 encoding: ``p__log10 = v`` becomes ``p = 10**v``."""
    out = {}
    for key, value in config.items():
        if key.endswith(LOG10_SUFFIX):
            out[key[: -len(LOG10_SUFFIX)]] = 10.0 ** float(value)
        else:
            out[key] = value
    return out


def get_space(name: str) -> Space:
    try:
        return SPACES[name]
    except KeyError:
        raise UserError(f"unknown space {name!r}; use one of {', '.join(SPACES)}") from None


def coteaching_default(noise_rate: float) -> dict[str, Any]:
    """The seed's default schedule: tau = noise rate, c = 1, T_k = 10 (of 200 epochs)."""
    return {"schedule": "coteaching", "tau": float(noise_rate), "c": 1.0, "t_k": 10.0}
