"""What a searcher is given and what it returns: :class:`SearchContext` -> :class:`SearchPlan`.

Every searcher sees the same Tune ``param_space`` (the R(t) space of ``noisylabels.spaces`` plus
the fixed training settings), the objective ``val_acc`` (mode max; ``results.schema.OBJECTIVE``)
and the same epoch budget ``trials x epochs``.  Searchers that stop trials early get
``num_samples`` = the budget and ``epoch_budget`` set, which the run command turns into a stopper
that ends the search once the epochs consumed reach it, so they spend it on more, shorter trials.
Plain data: importing this module imports no Ray.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from noisylabels.spaces import Space


@dataclass(frozen=True)
class SearchContext:
    """One search: the space, the seed's fixed training config and the budget."""

    space: Space
    fixed: Mapping[str, Any]  # the trial config that is not searched (method, epochs, seed, ...)
    seed: int
    trials: int  # the budget in full-length trials
    epochs: int  # epochs of a full-length trial
    noise_rate: float
    samples_per_round: int | None = None  # S2E's K
    # per searcher name, options of its algorithm (``{"s2e": {"surrogate": "linear"}}``: keys of
    # ``searchers.s2e_settings.S2ESettings``); the config file's ``extra.<searcher>``
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def budget_epochs(self) -> int:
        return self.trials * self.epochs

    @property
    def startup_trials(self) -> int:
        """Random trials before a model-based searcher (BO, TPE) starts modelling."""
        return min(10, max(2, self.trials // 4))


@dataclass
class SearchPlan:
    """The arguments of one ``tune.Tuner``: search algorithm, scheduler, samples, space, the epoch
    budget at which the whole search stops (``None``: when its samples are done), and how many
    trials may wait for resources at once (``None``: Tune's default)."""

    search_alg: Any
    scheduler: Any
    num_samples: int
    param_space: dict[str, Any]
    epoch_budget: int | None = None
    max_pending: int | None = None
