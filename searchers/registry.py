"""Every searcher the run command knows, as data: ``SEARCHERS[name] -> SearcherSpec``.

The CLI choices, ``--searcher all``, the display names and colours of tables and figures, the
benchmarks' searcher lists and the run command's per-searcher behaviour (early stopping, pending
trials, what to keep after a search) all derive from this one table; no code outside an entry
branches on a searcher's name.  One contract test (``tests/test_searcher_contract.py``) runs every
entry end to end.  Adapters stay thin, as Ray Tune's own (``ray.tune.search``): each factory
builds the Ray objects from a :class:`~searchers.plan.SearchContext`.

==========  =====================================================================
s2e         :class:`searchers.s2e_search.S2ESearcher` (Algorithm 2), K trials per round
random      ``BasicVariantGenerator`` (seeded)
bo          ``BayesOptSearch`` (GP-UCB; log-scaled parameters given as uniform log10)
tpe         ``OptunaSearch`` with optuna's ``TPESampler``
cmaes       ``OptunaSearch`` with optuna's ``CmaEsSampler`` (CMA-ES: like S2E, it updates a
            sampling distribution; needs the ``cmaes`` package)
gp          ``OptunaSearch`` with optuna's ``GPSampler`` (Gaussian-process BO for 10-100 trials)
hyperband   ``HyperBandScheduler`` over random sampling, budget-capped
asha        ``ASHAScheduler`` over random sampling, budget-capped
bohb        ``TuneBOHB`` + ``HyperBandForBOHB``, budget-capped
default     no search (a reference, not in ``all``): Co-teaching's own schedule
            (tau = noise rate, c = 1, T_k = 10), one full-length run
==========  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from noisylabels.errors import UserError
from noisylabels.spaces import coteaching_default, to_tune
from searchers.plan import SearchContext, SearchPlan

Factory = Callable[[SearchContext], tuple[Any, Any]]  # -> (search_alg, scheduler)


@dataclass(frozen=True)
class SearcherSpec:
    """One searcher: how it is shown and how its Tune objects are built.

    ``build``: ``SearchContext -> (search_alg, scheduler)``.  ``stops_early``: it stops trials
    before their last epoch (it gets the epoch budget as samples and a budget stopper).
    ``log_as_uniform``: it is given log-scaled parameters as uniform ``<name>__log10`` values.
    ``max_pending``: trials that may wait for resources at once (``None``: Tune's default).
    ``history``: ``(searcher state, fixed keys) -> JSON-able record`` kept after the search
    (``results.layout.history``).  ``reference``: no search, one fixed configuration (not in
    ``all``; ``config`` gives it).  ``colour``: its line in every figure."""

    name: str
    label: str
    colour: str | None  # None: the next of EXTRA_COLOURS
    build: Factory | None
    summary: str
    stops_early: bool = False
    log_as_uniform: bool = False
    max_pending: Callable[[SearchContext], int | None] | None = None
    history: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any] | None] | None = None
    reference: bool = False
    config: Callable[[SearchContext], dict[str, Any]] | None = None

    def plan(self, ctx: SearchContext) -> SearchPlan:
        """The Tuner's arguments for this searcher on ``ctx``."""
        if self.reference:
            assert self.config is not None
            return SearchPlan(None, None, 1, {**ctx.fixed, **self.config(ctx)})
        assert self.build is not None
        search_alg, scheduler = self.build(ctx)
        param_space = {**ctx.fixed, **to_tune(ctx.space, log_as_uniform=self.log_as_uniform)}
        pending = self.max_pending(ctx) if self.max_pending else None
        if self.stops_early:
            budget = ctx.budget_epochs
            return SearchPlan(search_alg, scheduler, budget, param_space, budget, pending)
        return SearchPlan(search_alg, scheduler, ctx.trials, param_space, None, pending)


# ---------------------------------------------------------------------------------- factories
def _s2e(ctx: SearchContext) -> tuple[Any, Any]:
    from searchers.s2e_search import S2ESearcher

    return S2ESearcher(samples_per_round=ctx.samples_per_round, seed=ctx.seed, **ctx.options.get("s2e", {})), None


def _s2e_history(state: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any] | None:
    from searchers.s2e_search import S2ESearcher

    return S2ESearcher.history_from_state(state, fixed=fixed)


def _random(ctx: SearchContext) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=ctx.seed)


def _bo(ctx: SearchContext) -> tuple[Any, Any]:
    from ray.tune.search.bayesopt import BayesOptSearch

    return BayesOptSearch(random_search_steps=ctx.startup_trials, random_state=ctx.seed), None


def _tpe(ctx: SearchContext) -> tuple[Any, Any]:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    sampler = optuna.samplers.TPESampler(seed=ctx.seed, n_startup_trials=ctx.startup_trials)
    return OptunaSearch(sampler=sampler), None


def _cmaes(ctx: SearchContext) -> tuple[Any, Any]:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    try:
        import cmaes  # noqa: F401 - optuna's CmaEsSampler needs it and says so only at the first ask
    except ImportError:  # pragma: no cover - depends on the install
        raise UserError("cmaes needs the cmaes package; pip install cmaes") from None
    sampler = optuna.samplers.CmaEsSampler(seed=ctx.seed, n_startup_trials=ctx.startup_trials)
    return OptunaSearch(sampler=sampler), None


def _gp(ctx: SearchContext) -> tuple[Any, Any]:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    sampler = optuna.samplers.GPSampler(seed=ctx.seed, n_startup_trials=ctx.startup_trials)
    return OptunaSearch(sampler=sampler), None


def _hyperband(ctx: SearchContext) -> tuple[Any, Any]:
    from ray.tune.schedulers import HyperBandScheduler

    return _random(ctx), HyperBandScheduler(time_attr="training_iteration", max_t=ctx.epochs)


def _asha(ctx: SearchContext) -> tuple[Any, Any]:
    from ray.tune.schedulers import ASHAScheduler

    return _random(ctx), ASHAScheduler(time_attr="training_iteration", max_t=ctx.epochs, grace_period=1)


def _bohb(ctx: SearchContext) -> tuple[Any, Any]:
    try:
        from ray.tune.search.bohb import TuneBOHB
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UserError(f"bohb needs hpbandster and ConfigSpace ({exc}); pip install hpbandster ConfigSpace") from None
    from ray.tune.schedulers import HyperBandForBOHB

    return TuneBOHB(seed=ctx.seed), HyperBandForBOHB(time_attr="training_iteration", max_t=ctx.epochs)


def _default_schedule(ctx: SearchContext) -> dict[str, Any]:
    return coteaching_default(ctx.noise_rate)


_SPECS = (
    SearcherSpec(
        "s2e",
        "S2E",
        "#d62728",
        _s2e,
        "this project's searcher (Algorithm 2): K trials per round, Newton step on p_theta",
        # a round is K independent samples: let all K wait for resources at once (on every node)
        max_pending=lambda ctx: ctx.samples_per_round,
        history=_s2e_history,
    ),
    SearcherSpec("random", "random", "#7f7f7f", lambda ctx: (_random(ctx), None), "Ray's BasicVariantGenerator"),
    SearcherSpec("bo", "BO", "#1f77b4", _bo, "BayesOptSearch (GP-UCB) on log10-scaled values", log_as_uniform=True),
    SearcherSpec("tpe", "TPE", "#2ca02c", _tpe, "OptunaSearch with optuna's TPESampler"),
    SearcherSpec("cmaes", "CMA-ES", "#e377c2", _cmaes, "OptunaSearch with optuna's CmaEsSampler (CMA-ES)"),
    SearcherSpec("gp", "GP-BO", "#393b79", _gp, "OptunaSearch with optuna's GPSampler (Gaussian-process BO)"),
    SearcherSpec("hyperband", "Hyperband", "#9467bd", _hyperband, "HyperBandScheduler over random", stops_early=True),
    SearcherSpec("asha", "ASHA", "#ff7f0e", _asha, "ASHAScheduler over random sampling", stops_early=True),
    SearcherSpec("bohb", "BOHB", "#8c564b", _bohb, "TuneBOHB + HyperBandForBOHB", stops_early=True),
    SearcherSpec(
        "default",
        "Co-teaching default",
        None,
        None,
        "no search: Co-teaching's own schedule (tau = noise rate, c = 1, T_k = 10), one run",
        reference=True,
        config=_default_schedule,
    ),
)
SEARCHERS: dict[str, SearcherSpec] = {s.name: s for s in _SPECS}
ALL = tuple(s.name for s in _SPECS if not s.reference)  # --searcher all, in this (display) order
EXTRA_COLOURS = ("#17becf", "#e377c2", "#bcbd22", "#393b79", "#637939")


def get(name: str) -> SearcherSpec:
    try:
        return SEARCHERS[name]
    except KeyError:
        raise UserError(f"unknown searcher {name!r}; use one of {', '.join(SEARCHERS)}, a comma list or all") from None


def label(name: str) -> str:
    """How tables and figures name a searcher (its own name when not registered)."""
    spec = SEARCHERS.get(name)
    return spec.label if spec else name


def order(names: Iterable[str]) -> list[str]:
    """Registered searchers in the registry's order (S2E first), then anything else sorted."""
    names = list(dict.fromkeys(names))
    return [n for n in SEARCHERS if n in names] + sorted(n for n in names if n not in SEARCHERS)


def colours(names: Iterable[str]) -> dict[str, str]:
    """One colour per searcher: its own when registered, else the next of :data:`EXTRA_COLOURS`."""
    out, extra = {}, iter(EXTRA_COLOURS * 10)
    for n in order(names):
        spec = SEARCHERS.get(n)
        out[n] = spec.colour if spec is not None and spec.colour else next(extra)
    return out
