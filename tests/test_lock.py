"""One writer per experiment (results.lock): a live holder refuses a second run, a stale lock (a
dead pid on this host, or an old heartbeat) never blocks, the heartbeat beats, and the run command
refuses a locked experiment with one line and changes nothing; local and S3."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import pytest

from noisylabels.errors import UserError
from results import layout, lock
from results.lock import ExperimentLock
from results.store import Store
from s2e_tune.run import main


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def plant(store: Store, host: str, pid: int, heartbeat: float) -> None:
    doc = {"host": host, "pid": pid, "started_at": "2026-12-04T00:00:00+00:00", "heartbeat": heartbeat, "token": "x"}
    store.write_bytes(store.path(layout.LOCK), json.dumps(doc).encode())


def holder(store: Store) -> dict:
    return json.loads(store.read_bytes(store.path(layout.LOCK)))


def test_a_live_holder_refuses_a_second_writer(tmp_path, live_pid):
    store = Store.from_uri(str(tmp_path / "e"))
    plant(store, platform.node(), live_pid, time.time())
    with pytest.raises(UserError, match=f"being run by pid {live_pid} on {platform.node()}"):
        ExperimentLock(store, "e").acquire()
    assert holder(store)["pid"] == live_pid  # untouched


@pytest.mark.parametrize(
    ("host", "pid", "age", "taken"),
    [
        ("this", "dead", 0.0, True),  # a killed run on this machine: --resume at once
        ("other-host", "dead", 0.0, False),  # another machine's pid says nothing here: its heartbeat does
        ("other-host", "dead", lock.STALE_S + 5, True),  # stopped beating
        ("this", "live", lock.STALE_S + 5, True),  # a live pid that stopped beating (hung, or pid reused)
    ],
)
def test_stale_locks_never_block(tmp_path, live_pid, host, pid, age, taken):
    store = Store.from_uri(str(tmp_path / "e"))
    the_pid = live_pid if pid == "live" else dead_pid()
    plant(store, platform.node() if host == "this" else host, the_pid, time.time() - age)
    lk = ExperimentLock(store, "e")
    if taken:
        with lk:
            assert holder(store)["token"] == lk.token and holder(store)["pid"] != the_pid
        assert not store.exists(store.path(layout.LOCK))  # released
    else:
        with pytest.raises(UserError, match="being run by"):
            lk.acquire()


def test_the_heartbeat_beats_and_release_leaves_others_locks(tmp_path):
    store = Store.from_uri(str(tmp_path / "e"))
    lk = ExperimentLock(store, "e", heartbeat_s=0.2)
    lk.acquire()
    first = holder(store)["heartbeat"]
    time.sleep(0.8)
    assert holder(store)["heartbeat"] > first and holder(store)["pid"] == os.getpid()
    plant(store, "other-host", 1, time.time())  # someone took it over (e.g. after a stale heartbeat)
    lk.release()
    assert holder(store)["host"] == "other-host"  # not ours to delete


def test_a_zombie_is_not_running():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(1.0)  # exited, not yet reaped
    assert not lock.pid_running(proc.pid)
    proc.wait()


def test_the_run_command_refuses_a_locked_experiment_and_changes_nothing(tmp_path, live_pid, capsys):
    store = Store.from_uri(str(tmp_path / "e"))
    store.write_bytes(store.path(layout.MANIFEST), json.dumps({"config": {"epochs": 20}}).encode())
    plant(store, platform.node(), live_pid, time.time())
    before = {p: p.read_bytes() for p in (tmp_path / "e").rglob("*") if p.is_file()}
    assert main(["--storage", str(tmp_path), "--name", "e", "--resume", "--wandb", "off"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pid {live_pid}" in err and "being run by" in err
    assert {p: p.read_bytes() for p in (tmp_path / "e").rglob("*") if p.is_file()} == before


def test_the_lock_on_s3(s3_server, live_pid):
    store = Store.from_uri("s3://s2e-results/locks/e")
    lk = ExperimentLock(store, "s3://s2e-results/locks/e")
    with lk:
        assert holder(store)["token"] == lk.token
        with pytest.raises(UserError, match="being run by"):
            ExperimentLock(store, "s3://s2e-results/locks/e").acquire()
    assert not store.exists(store.path(layout.LOCK))
