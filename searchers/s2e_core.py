"""S2E as an ask/tell object: stochastic relaxation of hyperparameter search with a Newton step.

Implements Algorithm 2 of the seed slides ("Derive a Search Algorithm")::

    1  theta^1 = 1                       (uniform product-Beta; init_concentration)
    2  for m = 1..M:
    3-6    draw K x ~ p_theta^m, evaluate f(x)
    7      estimate grad J and grad^2 J from the K pairs   (Proposition 1)
    8      theta^{m+1} = theta^m - [grad^2 J]^{-1} grad J  (Newton step)

with ``J(theta) = E_{x ~ p_theta}[f(x)]`` minimised (maximisation negates f).
One round: ``ask`` hands out K samples of ``p_theta``, ``tell`` collects their
values, and the K-th value triggers the update (:meth:`S2E._update`):

* *sample reuse*: the samples of the last ``reuse_rounds`` rounds join the current K, with
  self-normalised importance weights (``reuse_weights``: per-round ratios or the mixture); the
  utilities are ranks over the pooled samples with a weighted baseline, or, with a ``surrogate``,
  residuals of a ridge model fitted to every evaluated point (a control variate,
  :mod:`searchers.s2e_surrogate`);
* the gradient and the full Hessian of Proposition 1 are estimated from them, the damped,
  curvature-pooled Newton direction is taken to the KL trust region, and theta is projected to
  ``[1, theta_max]``.

The equations, and why each departs from the authors' reference code (utility
transform, curvature pooling, damping, trust region), are in
:mod:`searchers.s2e_maths`; the options in
:class:`searchers.s2e_settings.S2ESettings`; the distribution in
:mod:`searchers.beta`; the saved-state encoding in :mod:`searchers.s2e_state`.
``python -m s2e_tune.bench synthetic`` compares S2E, its first-order variants
and random search on synthetic objectives.

Pure numpy/scipy: no ray, no torch (the Ray adapter is :mod:`searchers.s2e_search`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from noisylabels.spaces import Param
from searchers.beta import ProductBeta
from searchers.s2e_maths import (
    damped_newton_step,
    estimate_gradient,
    estimate_hessian,
    newton_direction,
    param_moments,
    pooled_weights,
    trust_region_update,
    weighted_utilities,
)
from searchers.s2e_settings import S2ESettings
from searchers.s2e_state import (
    decode_buffer,
    decode_float,
    decode_history,
    encode_buffer,
    encode_float,
    encode_history,
    jsonable_rng_state,
    rng_from_state,
)
from searchers.s2e_surrogate import control_variate

__all__ = ["S2E", "STATE_VERSION"]

#: Version of :meth:`S2E.get_state`.  1: ``settings`` without ``kl_per_param``
#: (``max_kl`` always resolved); 2: ``settings`` is ``S2ESettings.to_dict()``; 3: also the
#: archive of every evaluated sample (``archive_x``, ``archive_cost``) the surrogate is fitted to.
STATE_VERSION = 3


def _check_params(params: Sequence[Param]) -> tuple[Param, ...]:
    params = tuple(params)
    if not params:
        raise ValueError("S2E needs at least one FloatParam")
    for p in params:
        if not isinstance(p, Param):
            raise ValueError(f"S2E searches bounded float parameters only (FloatParam); got {p!r}")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate parameter names: {names}")
    return params


def _check_token(token: Any) -> Hashable:
    if isinstance(token, bool) or not isinstance(token, (str, int)):
        raise ValueError(f"token must be a str or int, got {token!r}")
    return token


class S2E:
    """Ask/tell S2E (Algorithm 2) over bounded float hyperparameters.

    ``S2E(params, settings=S2ESettings(...))``, or the settings' options as
    arguments: ``S2E(params, samples_per_round=8, seed=None, maximize=False,
    rounds=None, *, utility=..., ...)`` (see :class:`S2ESettings` for every
    option, its default and its valid range; the first four may be positional).
    ``params`` are :class:`noisylabels.spaces.Param` (``searchers.FloatParam``).

    ``ask()`` returns one configuration ``{name: value}`` of the current round
    (its token is ``last_token``, or pass your own ``token``); ``tell(token,
    value)`` reports its value.  When all ``samples_per_round`` (K) values of
    the round are in, theta takes one damped Newton step (Algorithm 2, steps
    7-8).  ``ask()`` returns ``None`` while the round is fully asked but values
    are outstanding, and once ``rounds`` (M) rounds are done (``done``).

    Non-finite values (NaN, +-inf, None) are failed evaluations and count as the
    worst value of the round.  ``get_state()`` is JSON-serialisable;
    ``set_state`` on an object built with the same parameters continues with
    identical asks.

    The defaults of :class:`S2ESettings` were chosen on the synthetic benchmark
    ``s2e_tune.bench.synthetic`` with seeds (>= 1000) disjoint from the tests'
    (0-9).
    """

    def __init__(
        self, params: Sequence[Param], *args: Any, settings: S2ESettings | None = None, **options: Any
    ) -> None:
        self.params = _check_params(params)
        if settings is None:
            settings = S2ESettings(*args, **options)
        elif args or options:
            raise TypeError("S2E takes either settings= or the settings' options as arguments, not both")
        elif not isinstance(settings, S2ESettings):
            raise TypeError(f"settings must be an S2ESettings, got {type(settings).__name__}")
        #: The options of this search, ``max_kl`` resolved for ``dim`` (:meth:`S2ESettings.resolved`).
        self.settings = settings.resolved(len(self.params))
        self._rng = np.random.default_rng(self.settings.seed)
        c = self.settings.init_concentration  # 1: uniform (Algorithm 2, step 1)
        self._dist = ProductBeta(np.full(self.dim, c), np.full(self.dim, c))
        self._round = 0  # index of the round in progress (0-based)
        self._x: np.ndarray | None = None  # (K, d) unit samples of the round
        self._tokens: list[Hashable | None] = []
        self._values: list[float | None] = []
        self._next_token = 0
        self._last_token: Hashable | None = None
        self._history: list[dict[str, Any]] = []
        self._best_value: float | None = None
        self._best_config: dict[str, float] | None = None
        self._hess_w: np.ndarray | None = None  # pooled whitened Hessian
        self._buffer: list[dict[str, Any]] = []  # recent rounds for sample reuse
        self._archive_x: list[list[float]] = []  # every evaluated unit sample (for the surrogate)
        self._archive_cost: list[float] = []  # and its cost (minimised sign; NaN = failed)

    # ------------------------------------------------------------ properties
    @property
    def samples_per_round(self) -> int:
        """K (``settings.samples_per_round``)."""
        return self.settings.samples_per_round

    @property
    def rounds(self) -> int | None:
        """M (``settings.rounds``)."""
        return self.settings.rounds

    @property
    def maximize(self) -> bool:
        return self.settings.maximize

    @property
    def seed(self) -> int | None:
        return self.settings.seed

    @property
    def dim(self) -> int:
        return len(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def distribution(self) -> ProductBeta:
        """The current ``p_theta`` (a copy)."""
        return ProductBeta(self._dist.a.copy(), self._dist.b.copy())

    @property
    def theta(self) -> np.ndarray:
        return self._dist.theta

    @property
    def round(self) -> int:
        """Number of completed rounds (= index of the round in progress)."""
        return self._round

    @property
    def done(self) -> bool:
        return self.rounds is not None and self._round >= self.rounds

    @property
    def last_token(self) -> Hashable | None:
        """Token of the configuration returned by the latest ``ask()``."""
        return self._last_token

    @property
    def pending(self) -> list[Hashable]:
        """Tokens asked in the current round whose value is still outstanding."""
        return [t for t, v in zip(self._tokens, self._values, strict=True) if t is not None and v is None]

    @property
    def best(self) -> tuple[float | None, dict[str, float] | None]:
        """Best finite value told so far (in the caller's sign) and its config."""
        return self._best_value, None if self._best_config is None else dict(self._best_config)

    @property
    def history(self) -> list[dict[str, Any]]:
        """One record per completed round (plain Python data): ``round``, the
        ``a``/``b`` used to sample it, per-parameter ``mean``/``var`` (own
        units, see :func:`param_moments`), the K ``configs`` and ``values`` (as
        told), ``best_value``/``best_config`` so far and the ``kl`` of the step."""
        return copy.deepcopy(self._history)  # plain Python data: lists, dicts, floats

    def moments(self) -> dict[str, dict[str, float]]:
        """Current mean and variance of each hyperparameter in its own units."""
        m, v = param_moments(self._dist, self.params)
        return {
            "mean": dict(zip(self.names, m.tolist(), strict=True)),
            "var": dict(zip(self.names, v.tolist(), strict=True)),
        }

    def config_from_unit(self, u: np.ndarray) -> dict[str, float]:
        """``{name: value}`` of a point ``u`` of the unit cube (:meth:`Param.from_unit` per parameter)."""
        return {p.name: p.from_unit(ui) for p, ui in zip(self.params, np.asarray(u, dtype=float), strict=True)}

    # --------------------------------------------------------------- ask/tell
    def ask(self, token: Hashable | None = None) -> dict[str, float] | None:
        """Next configuration of the current round (Algorithm 2, step 4), or
        ``None`` when the round is fully asked but not fully told, or ``done``."""
        if self.done:
            return None
        if token is not None:
            token = _check_token(token)
            if token in self._tokens:
                raise ValueError(f"token {token!r} is already in use in this round")
        if self._x is None:
            self._start_round()
        try:
            slot = self._tokens.index(None)
        except ValueError:
            return None
        if token is None:
            while self._next_token in self._tokens:
                self._next_token += 1
            token = self._next_token
            self._next_token += 1
        self._tokens[slot] = token
        self._last_token = token
        return self.config_from_unit(self._x[slot])

    def tell(self, token: Hashable, value: float | None) -> None:
        """Report the value of an asked configuration (Algorithm 2, step 5).

        ``None``/NaN/inf mark a failed evaluation (worst of the round).  The
        round's update runs as soon as its K-th value arrives.
        """
        try:
            slot = self._tokens.index(token)
        except ValueError:
            raise KeyError(f"unknown token {token!r}: not asked in the round in progress") from None
        if self._values[slot] is not None:
            raise ValueError(f"token {token!r} was already told")
        try:
            v = float(value) if value is not None else math.nan
        except (TypeError, ValueError):
            v = math.nan
        self._values[slot] = v
        if v == v and math.isfinite(v):
            better = self._best_value is None or (v > self._best_value if self.maximize else v < self._best_value)
            if better:
                self._best_value = v
                self._best_config = self.config_from_unit(self._x[slot])
        if all(val is not None for val in self._values):
            self._update()

    # ------------------------------------------------------------- internals
    def _start_round(self) -> None:
        k = self.settings.samples_per_round
        self._x = self._dist.sample(self._rng, k, eps=self.settings.eps)
        self._tokens = [None] * k
        self._values = [None] * k

    def _update(self) -> None:
        """Algorithm 2, steps 7-8 on the completed round."""
        assert self._x is not None
        s = self.settings
        values = np.array(self._values, dtype=float)
        cost = -values if s.maximize else values
        dist = self._dist
        # samples of this round plus those of the last `reuse_rounds` rounds,
        # importance-weighted towards the current theta
        self._buffer.append({"a": dist.a.tolist(), "b": dist.b.tolist(), "x": self._x, "cost": cost})
        self._buffer = self._buffer[-(s.reuse_rounds + 1) :]
        self._archive_x.extend(self._x.tolist())
        self._archive_cost.extend(cost.tolist())
        xs = np.concatenate([r["x"] for r in self._buffer])
        costs = np.concatenate([r["cost"] for r in self._buffer])
        weights = pooled_weights(dist, self._buffer, s.reuse_weights)
        scores = dist.score(xs)
        model_grad = model_hess = None
        if s.surrogate == "none":
            f = weighted_utilities(costs, s.utility, weights)
        else:
            f, model_grad, model_hess = control_variate(
                dist, self._archive_x, self._archive_cost, xs, costs, weights, s.surrogate, s.surrogate_ridge
            )
        grad = estimate_gradient(scores, f, weights)
        if model_grad is not None:
            grad = grad + model_grad
        fisher = dist.fisher()
        if s.step == "newton":
            hess = estimate_hessian(scores, -fisher, f, s.hessian, weights)
            if model_hess is not None:
                hess = hess + model_hess
            direction, self._hess_w = damped_newton_step(
                grad, hess, fisher, eig_floor=s.eig_floor, past_hess_w=self._hess_w, hessian_memory=s.hessian_memory
            )
        else:
            direction = newton_direction(grad, None, fisher, step=s.step)
        new, kl = trust_region_update(
            dist,
            direction,
            max_kl=s.max_kl,
            theta_max=s.theta_max,
            fill=s.step != "newton" or s.fill_trust_region,
        )
        means, var = param_moments(dist, self.params)
        self._history.append(
            {
                "round": self._round,
                "a": dist.a.tolist(),
                "b": dist.b.tolist(),
                "mean": dict(zip(self.names, means.tolist(), strict=True)),
                "var": dict(zip(self.names, var.tolist(), strict=True)),
                "configs": [self.config_from_unit(u) for u in self._x],
                "values": values.tolist(),
                "best_value": self._best_value,
                "best_config": None if self._best_config is None else dict(self._best_config),
                "kl": float(kl),
            }
        )
        self._dist = new
        self._round += 1
        self._x = None
        self._tokens = []
        self._values = []

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue identically; JSON-serialisable
        (``json.dumps(state, allow_nan=False)`` works).  Format version
        :data:`STATE_VERSION`."""
        return {
            "version": STATE_VERSION,
            "params": [p.to_dict() for p in self.params],
            "settings": self.settings.to_dict(),
            "a": self._dist.a.tolist(),
            "b": self._dist.b.tolist(),
            "round": self._round,
            "x": None if self._x is None else self._x.tolist(),
            "tokens": list(self._tokens),
            "values": [encode_float(v) for v in self._values],
            "next_token": self._next_token,
            "last_token": self._last_token,
            "hess_w": None if self._hess_w is None else self._hess_w.tolist(),
            "buffer": encode_buffer(self._buffer),
            "archive_x": list(self._archive_x),
            "archive_cost": [encode_float(v) for v in self._archive_cost],
            "rng": jsonable_rng_state(self._rng.bit_generator.state),
            "best_value": encode_float(self._best_value),
            "best_config": self._best_config,
            "history": encode_history(self._history),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`get_state` (also after a JSON round trip; versions 1 to 3)."""
        if state.get("version") not in (1, 2, STATE_VERSION):
            raise ValueError(f"unsupported S2E state version {state.get('version')!r}")
        params = tuple(Param.from_dict(p) for p in state["params"])
        if params != self.params:
            raise ValueError("state was saved for different parameters")
        self.settings = S2ESettings.from_dict(state["settings"]).resolved(self.dim)
        self._dist = ProductBeta(np.array(state["a"], dtype=float), np.array(state["b"], dtype=float))
        self._round = int(state["round"])
        self._x = None if state["x"] is None else np.array(state["x"], dtype=float)
        self._tokens = list(state["tokens"])
        self._values = [decode_float(v) for v in state["values"]]
        self._next_token = int(state["next_token"])
        self._hess_w = None if state["hess_w"] is None else np.array(state["hess_w"], dtype=float)
        self._buffer = decode_buffer(state["buffer"])
        # versions 1-2 kept no archive: the surrogate then starts from the next round's samples
        self._archive_x = [list(map(float, x)) for x in state.get("archive_x", [])]
        self._archive_cost = [decode_float(v) for v in state.get("archive_cost", [])]
        self._last_token = state["last_token"]
        self._rng = rng_from_state(state["rng"])
        self._best_value = decode_float(state["best_value"])
        self._best_config = None if state["best_config"] is None else dict(state["best_config"])
        self._history = decode_history(state["history"])

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> S2E:
        """Build an S2E directly from :meth:`get_state` output."""
        obj = cls([Param.from_dict(p) for p in state["params"]])
        obj.set_state(state)
        return obj
