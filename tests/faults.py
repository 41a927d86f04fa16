"""Fault injection for tests, kept out of the production training loop: a Trainer whose
optimiser step turns the weights to NaN in one epoch, and a Trainable that raises in one epoch or
truncates its newest checkpoint and dies.

The faults come from trial config keys (for a Tuner or Trainer built in a test; the real Trainer
ignores keys it does not know) or, for a search through the run command, whose config file may
not carry unknown keys, from :func:`faulty_trainable`'s class defaults: ``fault_nan_epoch`` (the
weights become NaN during this epoch), ``fault_raise_epoch`` (the Trainable raises at the start
of this epoch), ``fault_truncate_epoch`` (at the start of this epoch the trial cuts its newest
stored ``trainer.pt`` to half its bytes, then its worker process kills itself with SIGKILL, so Tune
restores it from that checkpoint) and ``fault_marker`` (a file that makes the raise happen once
across retries; for the truncation, one file per trial, ``<fault_marker>-<trial_id>.json``).
This module is pickled by value, so Ray workers need not import ``tests``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from typing import Any

from ray import cloudpickle

from trainables.engine import Trainer
from trainables.trainable import CHECKPOINT_FILE, NoisyLabelTrainable, _newest_checkpoint, _uri


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


def truncate(fs, path: str) -> None:
    """Keep the first half of the bytes of the file ``path`` on the pyarrow filesystem ``fs``."""
    with fs.open_input_stream(path) as f:
        data = f.read()
    with fs.open_output_stream(path) as f:
        f.write(data[: len(data) // 2])


class FaultyTrainable(NoisyLabelTrainable):
    """NoisyLabelTrainable with :class:`NaNTrainer`, raising at the start of ``fault_raise_epoch``
    and truncating its checkpoint, then dying, at the start of ``fault_truncate_epoch``."""

    trainer_cls = NaNTrainer
    raise_epoch: int | None = None
    truncate_epoch: int | None = None
    marker: str | None = None

    def _truncate_and_die(self, epoch: int, marker: str) -> None:
        """Once per trial (``<marker>-<trial_id>.json`` records it, with the metrics of the epoch
        before): cut the trial's newest stored ``trainer.pt`` in half and SIGKILL this worker."""
        assert marker, "fault_truncate_epoch needs fault_marker (the fault happens once per trial)"
        record = f"{marker}-{self.trial_id}.json"
        if os.path.exists(record):
            return
        fs, trial_dir = self._storage.storage_filesystem, self._storage.trial_fs_path
        newest = _newest_checkpoint(fs, trial_dir)
        assert newest is not None, f"no checkpoint to truncate in {trial_dir}"
        truncate(fs, f"{newest}/{CHECKPOINT_FILE}")
        with open(record, "w") as f:
            doc = {"epoch": epoch, "truncated": _uri(fs, newest), "before": self.trainer.last_metrics}
            json.dump(doc, f, default=float)
        os.kill(os.getpid(), signal.SIGKILL)

    def step(self) -> dict[str, Any]:
        epoch = self.trainer.epoch + 1
        cfg = self.trainer.config
        if cfg.get("fault_truncate_epoch", self.truncate_epoch) == epoch:
            self._truncate_and_die(epoch, cfg.get("fault_marker", self.marker))
        if cfg.get("fault_raise_epoch", self.raise_epoch) == epoch:
            marker = cfg.get("fault_marker", self.marker)
            if not (marker and os.path.exists(marker)):
                if marker:
                    with open(marker, "w") as f:
                        f.write(f"fault at epoch {epoch}\n")
                raise RuntimeError(f"injected fault at epoch {epoch}")
        return super().step()


def faulty_trainable(
    raise_epoch: int | None = None,
    nan_epoch: int | None = None,
    truncate_epoch: int | None = None,
    marker: str | None = None,
) -> type[FaultyTrainable]:
    """A :class:`FaultyTrainable` whose every trial raises in ``raise_epoch`` (each attempt, so
    retries fail too), diverges in ``nan_epoch`` and/or, once (``marker`` needed), truncates its
    newest checkpoint and dies at the start of ``truncate_epoch``."""
    trainer = type("NaNTrainerAt", (NaNTrainer,), {"nan_epoch": nan_epoch})
    attrs = {"trainer_cls": trainer, "raise_epoch": raise_epoch, "truncate_epoch": truncate_epoch, "marker": marker}
    return type("FaultyTrainableAt", (FaultyTrainable,), attrs)


cloudpickle.register_pickle_by_value(sys.modules[__name__])
