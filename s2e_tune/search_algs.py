"""One search space, translated for every searcher the run command compares.

Each searcher sees the same Tune ``param_space`` (the R(t) space of
``noisylabels.spaces`` plus the fixed training settings), the objective
``val_acc`` (mode max; test accuracy is never shown to a searcher) and the
same epoch budget ``trials x epochs``:

==========  =====================================================================
default     no search: Co-teaching's default schedule (tau = noise rate, c = 1, T_k = 10)
s2e         ``searchers.s2e_search.S2ESearcher`` (Algorithm 2), K trials per round
random      ``BasicVariantGenerator`` (seeded)
bo          ``BayesOptSearch`` (GP-UCB; log-scaled parameters given as uniform log10)
tpe         ``OptunaSearch`` with optuna's ``TPESampler``
hyperband   ``HyperBandScheduler`` over random sampling, budget-capped
asha        ``ASHAScheduler`` over random sampling, budget-capped
bohb        ``TuneBOHB`` + ``HyperBandForBOHB``, budget-capped
==========  =====================================================================

Searchers that stop trials early get ``num_samples`` large and an
:class:`EpochBudgetStopper` that ends the search once the epochs consumed reach
the budget, so they spend it on more, shorter trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray import tune

from noisylabels.errors import UserError
from noisylabels.spaces import coteaching_default, get_space, to_tune
from s2e_tune.config import ExperimentConfig

METRIC, MODE = "val_acc", "max"
EARLY_STOPPING = ("hyperband", "asha", "bohb")


class EpochBudgetStopper(tune.Stopper):
    """Stop the whole search once the trials together have run ``budget`` epochs."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.used += 1  # one result = one epoch
        return False

    def stop_all(self) -> bool:
        return self.used >= self.budget


@dataclass
class SearchPlan:
    search_alg: Any
    scheduler: Any
    num_samples: int
    param_space: dict[str, Any]
    stopper: EpochBudgetStopper | None


def build_search(name: str, cfg: ExperimentConfig, seed: int) -> SearchPlan:
    """The Tune search algorithm / scheduler pair for one searcher and seed."""
    space = get_space(cfg.space)
    param_space = {**cfg.train_config(seed), **to_tune(space, log_as_uniform=(name == "bo"))}
    startup = min(10, max(2, cfg.trials // 4))
    scheduler = None
    if name == "default":  # reference row: Co-teaching's own schedule, one full-length run
        fixed = {**cfg.train_config(seed), **coteaching_default(cfg.noise_rate)}
        return SearchPlan(None, None, 1, fixed, None)
    if name == "s2e":
        from searchers.s2e_search import S2ESearcher

        alg = S2ESearcher(samples_per_round=cfg.samples_per_round, seed=seed)
    elif name in ("random", "hyperband", "asha"):
        from ray.tune.search.basic_variant import BasicVariantGenerator

        alg = BasicVariantGenerator(random_state=seed)
    elif name == "bo":
        from ray.tune.search.bayesopt import BayesOptSearch

        alg = BayesOptSearch(random_search_steps=startup, random_state=seed)
    elif name == "tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        alg = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup))
    elif name == "bohb":
        try:
            from ray.tune.search.bohb import TuneBOHB
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UserError(
                f"bohb needs hpbandster and ConfigSpace ({exc}); pip install hpbandster ConfigSpace"
            ) from None
        alg = TuneBOHB(seed=seed)
    else:
        raise UserError(f"unknown searcher {name!r}")
    if name == "hyperband":
        from ray.tune.schedulers import HyperBandScheduler

        scheduler = HyperBandScheduler(time_attr="training_iteration", max_t=cfg.epochs)
    elif name == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=cfg.epochs, grace_period=1)
    elif name == "bohb":
        from ray.tune.schedulers import HyperBandForBOHB

        scheduler = HyperBandForBOHB(time_attr="training_iteration", max_t=cfg.epochs)
    if name in EARLY_STOPPING:
        return SearchPlan(alg, scheduler, cfg.budget_epochs, param_space, EpochBudgetStopper(cfg.budget_epochs))
    return SearchPlan(alg, scheduler, cfg.trials, param_space, None)
