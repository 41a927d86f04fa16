"""Tune's log lines the project rewrites: one known, harmless error after a hard kill.

After a SIGKILL, Tune's experiment snapshot can list a checkpoint it had already deleted
(``num_to_keep=2``: it saves ``checkpoint_N``, deletes ``checkpoint_N-2`` and the snapshot that
records this comes seconds later).  On ``--resume`` the restored trial trains on and, at its next
checkpoint, Tune tries to delete that directory again, fails with ``FileNotFoundError`` and logs
an ERROR with a traceback (ray-project/ray issue 27790).  The trial goes on unharmed: it
restored from a checkpoint that exists, and the new one is kept.  ``stale_checkpoint_notes``
turns that one record into one warning line; every other record passes unchanged.
"""

from __future__ import annotations

import contextlib
import logging

TUNE_CONTROLLER_LOGGER = "ray.tune.execution.tune_controller"
TUNE_MESSAGE = "Error handling checkpoint"  # TuneController._process_trial_save's logger.exception


class StaleCheckpointFilter(logging.Filter):
    """Rewrite Tune's "Error handling checkpoint" ERROR caused by a missing old checkpoint."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno == logging.ERROR and TUNE_MESSAGE in str(record.msg) and isinstance(exc, FileNotFoundError):
            trial = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = (
                "Trial %s: an old checkpoint Tune meant to delete was already gone (%s); "
                "Tune's record of checkpoints lags the disk after a hard kill; the trial goes on"
            )
            record.args = (trial, str(exc).rsplit(", ", 1)[-1].rstrip(")"))  # "Path not found: (<fs>, <path>)"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


@contextlib.contextmanager
def stale_checkpoint_notes():
    """Install ``StaleCheckpointFilter`` on Tune's controller logger for one fit."""
    log = logging.getLogger(TUNE_CONTROLLER_LOGGER)
    f = StaleCheckpointFilter()
    log.addFilter(f)
    try:
        yield
    finally:
        log.removeFilter(f)
