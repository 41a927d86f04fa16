"""Tune's "Error handling checkpoint" after a hard kill becomes one warning (s2e_tune/tune_log.py).

End to end: a search is interrupted mid-trial, the older of the trial's two checkpoints is
removed (what Tune itself did just before a SIGKILL that came before its next experiment
snapshot), and the resumed search must finish the trial with one warning line and no ERROR."""

from __future__ import annotations

import inspect
import logging
import shutil
from pathlib import Path

import pytest
import ray
from ray import tune
from ray.tune.execution.tune_controller import TuneController

from results.store import Store
from results.tables import read_epochs
from s2e_tune.config import ExperimentConfig
from s2e_tune.search_run import run_search
from s2e_tune.tune_log import TUNE_CONTROLLER_LOGGER, TUNE_MESSAGE, StaleCheckpointFilter

EPOCHS, STOP_AT = 6, 4


def record(msg: str, args: tuple, exc: BaseException | None, level: int = logging.ERROR) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(TUNE_CONTROLLER_LOGGER, level, __file__, 1, msg, args, exc_info)


def test_tune_still_logs_the_message_the_filter_matches():
    """A Ray upgrade that rewords the line would silently turn the filter off: this fails first."""
    assert TUNE_MESSAGE in inspect.getsource(TuneController._process_trial_save)
    assert TuneController.__module__ == TUNE_CONTROLLER_LOGGER


def test_the_filter_rewrites_only_a_missing_old_checkpoint():
    f = StaleCheckpointFilter()
    gone = FileNotFoundError("Path not found: (<pyarrow._fs.LocalFileSystem object at 0x1>, /x/t/checkpoint_000002)")
    r = record("Trial %s: Error handling checkpoint %s", ("T1", "result"), gone)
    assert f.filter(r)
    assert r.levelno == logging.WARNING and r.exc_info is None
    assert r.getMessage().startswith("Trial T1: an old checkpoint Tune meant to delete was already gone")
    assert "(/x/t/checkpoint_000002)" in r.getMessage() and "pyarrow" not in r.getMessage()
    for other in (
        record("Trial %s: Error handling checkpoint %s", ("T1", "r"), PermissionError("denied")),
        record("Trial %s: Error handling checkpoint %s", ("T1", "r"), None),
        record("Trial %s: Error processing result", ("T1",), FileNotFoundError("x")),
    ):
        before = (other.levelno, other.msg, other.args, other.exc_info)
        assert f.filter(other)
        assert (other.levelno, other.msg, other.args, other.exc_info) == before


class InterruptAt(tune.Callback):
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("training_iteration") == STOP_AT and not self.marker.exists():
            self.marker.write_text(trial.trial_id)
            raise KeyboardInterrupt


def interrupted_search(small_data, tmp_path: Path) -> tuple[ExperimentConfig, Store]:
    """A one-trial random search of ``EPOCHS`` epochs in ``tmp_path/t``, stopped by Ctrl+C
    (``KeyboardInterrupt``) at epoch ``STOP_AT``; returns its config and store."""
    cfg = ExperimentConfig(
        searchers=("random",), trials=1, epochs=EPOCHS, mnist1d_samples=1000, storage=str(tmp_path),
        name="t", wandb="off", quiet=True, model="mlp",
    )
    cfg.validate()
    store = Store.from_uri(str(tmp_path / "t"))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        with pytest.raises(KeyboardInterrupt):
            run_search(cfg, store, "random", 0, small_data, callbacks=[InterruptAt(tmp_path / "interrupted")])
    finally:
        ray.shutdown()
    return cfg, store


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[logging.LogRecord] = []

    def emit(self, r: logging.LogRecord) -> None:
        self.seen.append(r)


def test_a_resume_after_tune_lost_track_of_a_deleted_checkpoint(small_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    cfg, store = interrupted_search(small_data, tmp_path)
    # Tune keeps two; a third may be on disk if the trial saved it before the driver processed it.
    # Either way the oldest is one Tune's snapshot still lists, and the restore uses a newer one.
    checkpoints = sorted(tmp_path.glob("t/random-seed0/trial_*/checkpoint_*"))
    assert 2 <= len(checkpoints) <= 3, checkpoints
    shutil.rmtree(checkpoints[0])

    seen = Records()
    log = logging.getLogger(TUNE_CONTROLLER_LOGGER)
    log.addHandler(seen)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        run_search(cfg.replace(resume=True), store, "random", 0, small_data)
    finally:
        ray.shutdown()
        log.removeHandler(seen)
    notes = [r for r in seen.seen if "already gone" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.WARNING
    assert checkpoints[0].name in notes[0].getMessage()
    assert not [r for r in seen.seen if r.levelno >= logging.ERROR]
    rows = read_epochs(store)
    assert rows["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert not log.filters  # the filter is gone after the fit
