"""Fault injection for tests, kept out of the production training loop: a Trainer whose
optimiser step turns the weights to NaN in one epoch, and a Trainable that raises in one epoch.

The faults come from trial config keys (for a Tuner or Trainer built in a test; the real Trainer
ignores keys it does not know) or, for a search through the run command, whose config file may
not carry unknown keys, from :func:`faulty_trainable`'s class defaults: ``fault_nan_epoch`` (the
weights become NaN during this epoch), ``fault_raise_epoch`` (the Trainable raises at the start
of this epoch) and ``fault_marker`` (a file that makes the raise happen once across retries).
This module is pickled by value, so Ray workers need not import ``tests``.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

from ray import cloudpickle

from trainables.engine import Trainer
from trainables.trainable import NoisyLabelTrainable


class NaNTrainer(Trainer):
    """In epoch ``fault_nan_epoch`` the learning rate is NaN, so Adam's first step makes every
    weight NaN and the epoch's training loss NaN: the real divergence path, not a faked metric."""

    nan_epoch: int | None = None

    def _set_optimizer_schedule(self, epoch: int) -> None:
        super()._set_optimizer_schedule(epoch)
        if epoch == self.config.get("fault_nan_epoch", self.nan_epoch):
            for opt in self.opts:
                for group in opt.param_groups:
                    group["lr"] = math.nan


class FaultyTrainable(NoisyLabelTrainable):
    """NoisyLabelTrainable with :class:`NaNTrainer`, raising at the start of ``fault_raise_epoch``."""

    trainer_cls = NaNTrainer
    raise_epoch: int | None = None
    marker: str | None = None

    def step(self) -> dict[str, Any]:
        epoch = self.trainer.epoch + 1
        cfg = self.trainer.config
        if cfg.get("fault_raise_epoch", self.raise_epoch) == epoch:
            marker = cfg.get("fault_marker", self.marker)
            if not (marker and os.path.exists(marker)):
                if marker:
                    with open(marker, "w") as f:
                        f.write(f"fault at epoch {epoch}\n")
                raise RuntimeError(f"injected fault at epoch {epoch}")
        return super().step()


def faulty_trainable(raise_epoch: int | None = None, nan_epoch: int | None = None) -> type[FaultyTrainable]:
    """A :class:`FaultyTrainable` whose every trial raises in ``raise_epoch`` (each attempt, so
    retries fail too) and/or diverges in ``nan_epoch``."""
    trainer = type("NaNTrainerAt", (NaNTrainer,), {"nan_epoch": nan_epoch})
    return type("FaultyTrainableAt", (FaultyTrainable,), {"trainer_cls": trainer, "raise_epoch": raise_epoch})


cloudpickle.register_pickle_by_value(sys.modules[__name__])
