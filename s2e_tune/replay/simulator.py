"""One search replayed in this process: the searcher and scheduler objects the run command builds
(``searchers.registry``: a :class:`~searchers.plan.SearchPlan`), driven the way Ray Tune's
``TuneController`` drives them, with a trial's epochs answered by a function instead of training.

What is kept of Tune's loop (``ray.tune.execution.tune_controller``): trials come from the search
algorithm's ``next_trial()`` (a ``SearchGenerator`` around a ``Searcher``, or the
``BasicVariantGenerator``) as real ``Trial`` objects; the scheduler adds them, picks which
PENDING/PAUSED trial runs next (``choose_trial_to_run``) and decides after every epoch
(``on_trial_result``: CONTINUE, PAUSE, STOP); a result with ``done`` stops the trial; a stopped
RUNNING trial reaches ``scheduler.on_trial_complete`` and ``search_alg.on_trial_complete`` with its
last result, a stopped PAUSED one ``on_trial_remove``; the search algorithm sees every result the
scheduler did not stop on; the run command's epoch-budget stopper ends the whole search (no more
events) once the trials together ran ``plan.epoch_budget`` epochs.  ``slots`` trials run at once on
a virtual clock where every epoch takes one unit, so results arrive in the order equal-speed
parallel trials would deliver them.  Not kept: actors, checkpoints, resources, failures.

With one slot the replay makes exactly Tune's decisions for searchers without a pausing scheduler
(``tests/test_replay_vs_tune.py``: same trials, configurations and lengths as ``tune.Tuner``).  For
Hyperband it does not: Tune also stages actors for every PENDING trial in creation order beside the
scheduler's choice, so when a slot frees it may start a trial Hyperband did not choose (which one
depends on actor start-up timing); the replay always starts the scheduler's choice.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import Callable
from typing import Any

from searchers.plan import SearchPlan

os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")

RETRIES = 1000  # next_trial() calls without a trial, while nothing runs, before a search ends
Evaluate = Callable[[dict[str, Any], int], dict[str, Any]]  # (trial config, epoch) -> metrics


def _noop(config: dict[str, Any]) -> None:  # the Experiment's trainable: never run
    return None


class ReplayController:
    """The part of ``TuneController`` that searchers and schedulers call back into."""

    def __init__(self, search_alg: Any, scheduler: Any) -> None:
        self.search_alg, self.scheduler = search_alg, scheduler
        self.trials: list[Any] = []

    def get_trials(self) -> list[Any]:
        return self.trials

    def get_live_trials(self) -> list[Any]:
        from ray.tune.experiment import Trial

        return [t for t in self.trials if t.status not in (Trial.TERMINATED, Trial.ERROR)]

    def stop_trial(self, trial: Any) -> None:
        """``TuneController.stop_trial``: tell the scheduler and searcher, then mark it TERMINATED."""
        from ray.tune.experiment import Trial
        from ray.tune.utils import flatten_dict

        if trial.status in (Trial.ERROR, Trial.TERMINATED):
            return
        if trial.status in (Trial.PENDING, Trial.PAUSED):
            self.scheduler.on_trial_remove(self, trial)
            self.search_alg.on_trial_complete(trial.trial_id)
        else:
            last = flatten_dict(trial.last_result)
            self.scheduler.on_trial_complete(self, trial, last)
            self.search_alg.on_trial_complete(trial.trial_id, result=last)
        trial.set_status(Trial.TERMINATED)

    def pause_trial(self, trial: Any, should_checkpoint: bool = True) -> None:
        from ray.tune.experiment import Trial

        trial.set_status(Trial.PAUSED)


def replay_search(plan: SearchPlan, evaluate: Evaluate, epochs: int, slots: int = 2) -> list[dict[str, Any]]:
    """Run ``plan`` against ``evaluate``; one row per epoch consumed, in the order consumed:
    ``trial_id, epoch, clock`` (virtual end time of the epoch), ``config``, the metrics, and on a
    trial's last row ``status`` (``TERMINATED`` when the trial ended, ``RUNNING``/``PAUSED`` when
    the budget ended the search first)."""
    from ray.tune.experiment import Experiment, Trial
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
    from ray.tune.search import Searcher, SearchGenerator
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from results.schema import MODE, OBJECTIVE

    alg = plan.search_alg if plan.search_alg is not None else BasicVariantGenerator()
    if isinstance(alg, Searcher):
        alg = SearchGenerator(alg)
    scheduler = plan.scheduler if plan.scheduler is not None else FIFOScheduler()
    alg.set_search_properties(OBJECTIVE, MODE, plan.param_space)
    scheduler.set_search_properties(OBJECTIVE, MODE)
    with tempfile.TemporaryDirectory(prefix="s2e-replay-") as tmp:
        exp = Experiment("replay", run=_noop, config=plan.param_space, num_samples=plan.num_samples, storage_path=tmp)
        alg.add_configurations([exp])
        ctrl = ReplayController(alg, scheduler)
        rows: list[dict[str, Any]] = []
        last_row: dict[str, dict[str, Any]] = {}
        done_epochs: dict[str, int] = {}
        running: list[tuple[float, int, Any]] = []
        clock, seq, used, idle = 0.0, 0, 0, 0
        budget = plan.epoch_budget
        pending_cap = plan.max_pending or (200 if isinstance(alg, BasicVariantGenerator) else 1)
        while True:
            # TuneController._maybe_update_trial_queue: keep up to pending_cap trials PENDING
            while not alg.is_finished() and sum(t.status == Trial.PENDING for t in ctrl.trials) < pending_cap:
                new = alg.next_trial()
                if new is None:
                    break
                ctrl.trials.append(new)
                done_epochs[new.trial_id] = 0
                scheduler.on_trial_add(ctrl, new)
            while len(running) < slots:  # start the scheduler's choice on every free slot
                trial = scheduler.choose_trial_to_run(ctrl)
                if trial is None:
                    break
                trial.set_status(Trial.RUNNING)
                seq += 1
                heapq.heappush(running, (clock + 1.0, seq, trial))
            if not running:
                # nothing runs: Tune asks the searcher again every step (BayesOptSearch answers None
                # for a duplicate and FINISHED only after `patience` of them); give up only when
                # it stays silent RETRIES times, where Tune would wait for ever
                if not alg.is_finished() and idle < RETRIES:
                    idle += 1
                    continue
                break
            idle = 0
            clock, _, trial = heapq.heappop(running)
            epoch = done_epochs[trial.trial_id] + 1
            done_epochs[trial.trial_id] = epoch
            metrics = evaluate(trial.config, epoch)
            result = {
                **metrics,
                "epoch": epoch,
                "training_iteration": epoch,
                "done": epoch >= epochs,
                "trial_id": trial.trial_id,
            }
            used += 1
            row = {"trial_id": trial.trial_id, "epoch": epoch, "clock": clock, "config": trial.config, **metrics}
            rows.append(row)
            last_row[trial.trial_id] = row
            if result["done"]:
                decision = TrialScheduler.STOP
            else:
                decision = scheduler.on_trial_result(ctrl, trial, result)
            if decision != TrialScheduler.STOP:
                alg.on_trial_result(trial.trial_id, result)
            trial.update_last_result(result)
            if decision == TrialScheduler.CONTINUE and trial.status == Trial.RUNNING:
                seq += 1
                heapq.heappush(running, (clock + 1.0, seq, trial))
            elif decision == TrialScheduler.PAUSE:
                ctrl.pause_trial(trial)
            elif decision == TrialScheduler.STOP:
                ctrl.stop_trial(trial)
            if budget is not None and used >= budget:  # EpochBudgetStopper.stop_all
                alg.set_finished()
                break
        for t in ctrl.trials:
            if t.trial_id in last_row:
                last_row[t.trial_id]["status"] = t.status
    return rows
