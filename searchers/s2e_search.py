"""Ray Tune adapter for S2E: :class:`S2ESearcher` (a ``ray.tune.search.Searcher``).

Follows Ray's own adapters (``ray/tune/search/optuna/optuna_search.py``): the
space comes from the constructor or, when that is ``None``, from Tune's
``param_space`` through :meth:`S2ESearcher.set_search_properties`.

Round protocol (Algorithm 2 of the seed slides, one round = K trials):

* ``suggest`` hands out the K configurations of the current round, then returns
  ``None`` (Tune asks again later) while any of them is still running;
* when the K-th trial of the round completes, theta takes its Newton step and
  the next round starts; after ``rounds`` (M) rounds ``suggest`` returns
  ``Searcher.FINISHED``.

Every completed trial counts, so a round never hangs:

* a normal or early-stopped completion (schedulers such as ASHA/HyperBand stop
  trials early; Tune passes their last result) uses the metric of that result,
  or, if it lacks the metric, the last value seen by ``on_trial_result``;
* an errored trial (``error=True``) counts as a failure, i.e. the worst value
  of its round, even if it reported values before it crashed: a configuration
  that crashes training should not be rewarded for its partial progress;
* a missing, non-numeric, NaN or infinite metric is likewise a failure.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.search import (
    UNDEFINED_METRIC_MODE,
    UNDEFINED_SEARCH_SPACE,
    Searcher,
)
from ray.tune.search.sample import Domain, Float, LogUniform, Quantized, Uniform
from ray.tune.search.variant_generator import parse_spec_vars

from noisylabels.spaces import Param as FloatParam
from searchers.s2e_core import S2E
from searchers.s2e_settings import S2ESettings
from searchers.s2e_state import history_from_state

__all__ = ["S2ESearcher", "convert_search_space"]

_Path = tuple[Any, ...]


def _describe(domain: Any) -> str:
    sampler = domain.get_sampler() if isinstance(domain, Domain) else None
    return f"{type(domain).__name__}" + (f" with {type(sampler).__name__} sampler" if sampler else "")


def convert_search_space(
    space: Mapping[str, Any],
) -> tuple[list[tuple[_Path, FloatParam]], list[tuple[_Path, Any]]]:
    """Split a Tune ``param_space`` into S2E parameters and constants.

    Returns ``([(path, FloatParam)], [(path, constant)])``; nested dicts give
    paths of several keys and the parameter name ``"a/b"``.  Only
    ``tune.uniform`` and ``tune.loguniform`` are searchable; anything else that
    is not a plain constant (``tune.choice``, ``tune.randint``, ``tune.quniform``,
    ``tune.randn``, ``tune.sample_from``, ``tune.grid_search``) raises
    ``ValueError``.
    """
    if not isinstance(space, Mapping):
        raise ValueError(f"S2ESearcher: space must be a dict of Tune domains, got {type(space).__name__}")
    resolved, domains, grids = parse_spec_vars(dict(space))
    if grids:
        names = ", ".join("/".join(map(str, p)) for p, _ in grids)
        raise ValueError(f"S2ESearcher does not support tune.grid_search (parameter(s): {names})")
    params: list[tuple[_Path, FloatParam]] = []
    for path, domain in domains:
        name = "/".join(map(str, path))
        sampler = domain.get_sampler() if isinstance(domain, Domain) else None
        if (
            not isinstance(domain, Float)
            or isinstance(sampler, Quantized)
            or not isinstance(sampler, (Uniform, LogUniform))
        ):
            raise ValueError(
                f"S2ESearcher searches only bounded floats (tune.uniform, tune.loguniform); "
                f"parameter {name!r} is a {_describe(domain)}. Replace it with tune.uniform/"
                f"tune.loguniform or fix it to a constant."
            )
        try:
            params.append((path, FloatParam(name, domain.lower, domain.upper, log=isinstance(sampler, LogUniform))))
        except ValueError as exc:
            raise ValueError(f"S2ESearcher: parameter {name!r}: {exc}") from None
    return params, list(resolved)


def _fill(node: Any, prefix: _Path, values: Mapping[_Path, float]) -> Any:
    """Copy of the containers of ``node`` with the domains at ``values``' paths
    replaced; constants are passed through unchanged (not copied)."""
    if prefix in values:
        return values[prefix]
    if isinstance(node, Mapping):
        return {k: _fill(v, prefix + (k,), values) for k, v in node.items()}
    if isinstance(node, (list, tuple)) and any(p[: len(prefix)] == prefix for p in values):
        return type(node)(_fill(v, prefix + (i,), values) for i, v in enumerate(node))
    return node


class S2ESearcher(Searcher):
    """S2E (stochastic relaxation + damped Newton step) as a Ray Tune searcher.

    Args:
        space: dict of Tune domains (``tune.uniform``/``tune.loguniform``;
            other values are constants passed through unchanged), or a sequence
            of :class:`~noisylabels.spaces.Param` (``searchers.FloatParam``).  ``None``: taken from
            ``Tuner(param_space=...)``.
        metric, mode: the metric to optimise, ``"min"`` or ``"max"`` (or set
            them in ``tune.TuneConfig``).
        samples_per_round: K, trials per round (Algorithm 2).
        rounds: M, number of rounds; ``None`` = until Tune's ``num_samples``.
        seed: seed of the sampler.
        **s2e_options: the other options of
            :class:`~searchers.s2e_settings.S2ESettings` (``utility``, ``step``,
            ``hessian``, ``eig_floor``, ``kl_per_param``, ...), passed to
            :class:`~searchers.s2e_core.S2E`.
    """

    def __init__(
        self,
        space: Mapping[str, Any] | Sequence[FloatParam] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        samples_per_round: int = 8,
        rounds: int | None = None,
        seed: int | None = 0,
        **s2e_options: Any,
    ) -> None:
        if isinstance(metric, (list, tuple)) or isinstance(mode, (list, tuple)):
            raise ValueError("S2ESearcher optimises a single metric; got a list of metrics/modes")
        if mode is not None and mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        self._samples_per_round = samples_per_round
        self._rounds = rounds
        self._seed = seed
        self._options = dict(s2e_options)
        # validate the S2E options early (raises ValueError on bad ones)
        S2ESettings(samples_per_round, seed, rounds=rounds, **self._options)
        self._params: list[tuple[_Path, FloatParam]] | None = None
        self._space: Any = None
        self._s2e: S2E | None = None
        self._last_reported: dict[str, float] = {}
        if space is not None:
            self._set_space(space)

    # ----------------------------------------------------------------- space
    def _set_space(self, space: Mapping[str, Any] | Sequence[FloatParam]) -> bool:
        if isinstance(space, Mapping):
            params, _ = convert_search_space(space)
            template: dict[str, Any] = dict(space)
        else:
            items = list(space)
            if not all(isinstance(p, FloatParam) for p in items):
                raise ValueError("S2ESearcher: space must be a dict of Tune domains or a list of FloatParam")
            params = [((p.name,), p) for p in items]
            template = {p.name: None for p in items}
        if not params:
            return False  # nothing to search (constants only)
        self._params = params
        self._space = template
        return True

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        if self._params is not None:
            # A space is already set (constructor or restore): like Ray's
            # adapters, refuse the new one, but adopt a metric/mode we lack.
            if metric and not self._metric:
                self._metric = metric
            if mode and not self._mode:
                self._mode = mode
            return False
        if not self._set_space(config):
            return False
        if metric:
            self._metric = metric
        if mode:
            if mode not in ("min", "max"):
                raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
            self._mode = mode
        return True

    # ---------------------------------------------------------------- search
    def _ensure_s2e(self) -> S2E:
        if self._s2e is None:
            assert self._params is not None
            self._s2e = S2E(
                [p for _, p in self._params],
                samples_per_round=self._samples_per_round,
                seed=self._seed,
                maximize=self._mode == "max",
                rounds=self._rounds,
                **self._options,
            )
        return self._s2e

    def suggest(self, trial_id: str) -> dict | str | None:
        if self._params is None:
            raise RuntimeError(UNDEFINED_SEARCH_SPACE.format(cls=type(self).__name__, space="space"))
        if not self._metric or not self._mode:
            raise RuntimeError(
                UNDEFINED_METRIC_MODE.format(cls=type(self).__name__, metric=self._metric, mode=self._mode)
            )
        s2e = self._ensure_s2e()
        if s2e.done:
            return Searcher.FINISHED
        cfg = s2e.ask(token=trial_id)
        if cfg is None:
            return None  # round fully handed out; wait for its results
        values = {path: cfg[p.name] for path, p in self._params}
        return _fill(self._space, (), values)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._s2e is None or trial_id not in self._s2e.pending or not result:
            return
        if self._metric in result:
            self._last_reported[trial_id] = _as_float(result[self._metric])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        last = self._last_reported.pop(trial_id, None)
        if self._s2e is None or trial_id not in self._s2e.pending:
            return  # not ours (or already counted)
        if error:
            value = math.nan
        elif result and self._metric in result:
            value = _as_float(result[self._metric])
        elif last is not None:
            value = last
        else:
            value = math.nan
        self._s2e.tell(trial_id, value)

    # ------------------------------------------------------------ inspection
    @property
    def s2e(self) -> S2E | None:
        """The underlying ask/tell :class:`S2E` (``None`` before the first suggest)."""
        return self._s2e

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per completed round: ``round``, ``a``/``b`` (theta used), per
        hyperparameter ``mean``/``var`` in its own units, the K ``configs`` and
        ``values``, ``best_value``/``best_config`` so far, ``kl`` of the step.
        Plain Python data (see :attr:`S2E.history`)."""
        return [] if self._s2e is None else self._s2e.history

    @property
    def best(self) -> tuple[float | None, dict[str, float] | None]:
        return (None, None) if self._s2e is None else self._s2e.best

    # ----------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "metric": self._metric,
            "mode": self._mode,
            "samples_per_round": self._samples_per_round,
            "rounds": self._rounds,
            "seed": self._seed,
            "options": dict(self._options),
            "params": None if self._params is None else [(list(path), p.to_dict()) for path, p in self._params],
            "space": self._space,
            "s2e": None if self._s2e is None else self._s2e.get_state(),
            "last_reported": dict(self._last_reported),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != 1:
            raise ValueError(f"unsupported S2ESearcher state version {state.get('version')!r}")
        self._metric = state["metric"]
        self._mode = state["mode"]
        self._samples_per_round = state["samples_per_round"]
        self._rounds = state["rounds"]
        self._seed = state["seed"]
        self._options = dict(state["options"])
        self._params = (
            None if state["params"] is None else [(tuple(path), FloatParam.from_dict(p)) for path, p in state["params"]]
        )
        self._space = state["space"]
        self._s2e = None if state["s2e"] is None else S2E.from_state(state["s2e"])
        self._last_reported = dict(state["last_reported"])

    @staticmethod
    def history_from_state(state: Mapping[str, Any], fixed: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The JSON per-round history document of a saved :meth:`get_state` (the
        dict Tune pickles as ``searcher-state-*.pkl``), without ``"seed"``, or
        ``None`` if the search never started; see
        :func:`searchers.s2e_state.history_from_state` for the format."""
        return history_from_state(state, fixed)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.get_state(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.set_state(pickle.load(fh))


def _as_float(v: Any) -> float:
    try:
        out = float(np.asarray(v, dtype=float))
    except (TypeError, ValueError):
        return math.nan
    return out
