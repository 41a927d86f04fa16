"""One writer per experiment: a lock file held while a run writes ``<storage>/<name>/`` (README,
"Resuming and failures").  Local directories and S3 alike, through :class:`results.store.Store`.

The lock (``layout.LOCK``, JSON) names its holder: host, pid, start time and a heartbeat the
holder rewrites every :data:`HEARTBEAT_S` seconds from a daemon thread.  Another run of the same
experiment is refused with one line naming the holder, unless the lock is stale:

* its heartbeat is older than :data:`STALE_S` (a holder on any host that stopped beating), or
* its holder ran on this host and that pid no longer runs (a killed run; ``--resume`` right
  after a SIGKILL on the same machine is never blocked).

Taking the lock writes it and reads it back after a short pause, so of two runs that start at the
same moment only the one whose token is in the file proceeds (object stores have no atomic
create-if-absent through pyarrow; the read-back narrows the race to the pause).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import threading
import time
import uuid
from typing import Any

from noisylabels.errors import UserError
from results import layout
from results.store import Store

HEARTBEAT_S = 30.0
STALE_S = 180.0  # six missed heartbeats
SETTLE_S = 0.5  # the pause between writing the lock and reading it back


def _now() -> float:
    return time.time()


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


def pid_running(pid: int) -> bool:
    """Whether ``pid`` runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stale_reason(holder: dict[str, Any], now: float | None = None) -> str | None:
    """Why a lock no longer holds (``None``: it holds)."""
    now = _now() if now is None else now
    age = now - float(holder.get("heartbeat", 0.0))
    if age > STALE_S:
        return f"its heartbeat is {age:.0f} s old"
    if holder.get("host") == platform.node() and not pid_running(int(holder.get("pid", -1))):
        return f"pid {holder.get('pid')} no longer runs on {holder.get('host')}"
    return None


class ExperimentLock:
    """``with ExperimentLock(store, where): ...`` holds the experiment's lock for the block."""

    def __init__(self, store: Store, where: str, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.store, self.where, self.heartbeat_s = store, where, heartbeat_s
        self.path = store.path(layout.LOCK)
        self.token = uuid.uuid4().hex
        self.started = _now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict[str, Any] | None:
        if not self.store.exists(self.path):
            return None
        try:
            return json.loads(self.store.read_bytes(self.path))
        except (OSError, ValueError):
            return None  # half-written or unreadable: no valid holder

    def _write(self) -> None:
        doc = {"host": platform.node(), "pid": os.getpid(), "started_at": _iso(self.started),
               "heartbeat": _now(), "heartbeat_at": _iso(_now()), "token": self.token}  # fmt: skip
        self.store.write_bytes(self.path, json.dumps(doc).encode())

    def _refuse(self, holder: dict[str, Any]) -> None:
        age = _now() - float(holder.get("heartbeat", 0.0))
        raise UserError(
            f"experiment {self.where} is being run by pid {holder.get('pid')} on {holder.get('host')} since "
            f"{holder.get('started_at')} (heartbeat {age:.0f} s ago); wait for it to end, or stop it and --resume"
        )

    def acquire(self) -> None:
        holder = self.holder()
        if holder is not None and holder.get("token") != self.token and stale_reason(holder) is None:
            self._refuse(holder)
        self._write()
        time.sleep(SETTLE_S)
        holder = self.holder()
        if holder is None or holder.get("token") != self.token:
            self._refuse(holder or {})
        self._thread = threading.Thread(target=self._beat, name="experiment-lock", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                holder = self.holder()
                if holder is None or holder.get("token") == self.token:
                    self._write()
            except OSError:
                pass  # storage hiccup: the next beat tries again; STALE_S leaves room for several

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            holder = self.holder()
            if holder is not None and holder.get("token") == self.token:
                self.store.fs.delete_file(self.path)
        except OSError:
            pass  # a lock left behind is stale as soon as this process has ended

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
