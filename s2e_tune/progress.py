"""The run command's progress: one line per finished trial (``--quiet`` prints none).

``[s2e seed 0] trial 3/16 0a1b_00002: epochs=20 val_acc=0.4120 label_precision=0.731 |
best 0.4300 | 60/320 epochs (19 %) | ~2m10s left``

* ``best``: the search's best ``val_acc`` so far, by the project's best-trial rule
  (``results.schema.best_trials``: a trial's last epoch, among full-length trials once there is
  one; ``-`` until a trial has finished);
* ``60/320 epochs``: the epochs the search has consumed (stored ones included after ``--resume``)
  against its budget, trials x epochs (``ExperimentConfig.budget_epochs``);
* ``left``: the time the rest of the budget takes at this process's pace so far (epochs consumed
  since it started, over the wall time since then).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from ray import tune

from results.parquet_log import stored_epochs, stored_finals
from results.schema import OBJECTIVE, best_trials
from results.store import Store
from trainables.trainable import RESTORE_WARNING


def format_duration(seconds: float) -> str:
    """``45s``, ``2m10s``, ``1h05m``: a rounded wall time for a progress line."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class LineProgress(tune.Callback):
    """One line per finished trial with the search's best so far, budget used and time left.

    ``search``: ``(store, searcher, seed)``; at the start of every fit (:meth:`setup`, which Tune
    also calls on the copy it restores on ``--resume``) the epochs and the finished trials the
    search already has on disk are taken up from there.  ``clock``: the wall clock (a test passes
    its own)."""

    def __init__(
        self,
        label: str,
        total: int,
        budget: int,
        full_epochs: int,
        search: tuple[Store, str, int] | None = None,
        stream=None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.budget, self.full_epochs = label, total, budget, full_epochs
        self.search = search
        self.done, self.used = 0, 0
        self.finals: list[tuple[int, float]] = []  # (epochs_run, final val_acc) of finished trials
        self.stream = stream or sys.stdout
        self.clock = clock
        self.start: float | None = None
        self.epochs_here = 0  # trained by this process: the pace of the time left
        self.seen: set[tuple[str, Any]] = set()  # (trial, epoch) results counted in used

    def setup(self, **info):
        if self.search is not None:
            self.used = stored_epochs(*self.search)
            self.finals = stored_finals(*self.search)
            self.done = len(self.finals)
        self.start, self.epochs_here = None, 0
        self.seen: set[tuple[str, Any]] = set()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.start is None:  # the pace counts from the first result: Ray's start-up is not training
            self.start = self.clock() - float(result.get("time_this_iter_s") or 0.0)
        key = (trial.trial_id, result.get("epoch"))
        if key not in self.seen:  # an epoch trained again after a checkpoint fallback is no new budget
            self.seen.add(key)
            self.used += 1
        self.epochs_here += 1
        if result.get(RESTORE_WARNING):  # the workers' stderr does not reach this console
            print(f"[{self.label}] trial {trial.trial_id}: {result[RESTORE_WARNING]}", file=self.stream, flush=True)

    def time_left(self) -> float | None:
        if self.start is None or self.epochs_here == 0:
            return None
        pace = (self.clock() - self.start) / self.epochs_here
        return pace * max(0, self.budget - self.used)

    def best(self) -> float | None:
        """The best final ``val_acc`` of the finished trials, by ``results.schema.best_trials``."""
        if not self.finals:
            return None
        df = pd.DataFrame(self.finals, columns=["epochs_run", "final_val_acc"]).assign(searcher="", seed=0)
        best = best_trials(df, self.full_epochs)
        return None if best.empty else float(best["final_val_acc"].iloc[0])

    def line(self, trial_id: str, result: dict[str, Any]) -> str:
        val = result.get(OBJECTIVE)
        val = float(val) if isinstance(val, (int, float)) else math.nan
        self.finals.append((int(result.get("epoch", 0)), val))
        best = self.best()
        best = "-" if best is None else f"{best:.4f}"
        left = self.time_left()
        pct = 100.0 * self.used / self.budget if self.budget else 0.0
        return (
            f"[{self.label}] trial {self.done}/{self.total} {trial_id}: epochs={result.get('epoch', 0)} "
            f"val_acc={val:.4f} label_precision={result.get('label_precision', math.nan):.3f} | "
            f"best {best} | {self.used}/{self.budget} epochs ({pct:.0f} %)"
            + ("" if left is None else f" | ~{format_duration(left)} left")
        )

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        print(self.line(trial.trial_id, trial.last_result or {}), file=self.stream, flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[{self.label}] trial {trial.trial_id} failed: see {trial.path}", file=self.stream, flush=True)
