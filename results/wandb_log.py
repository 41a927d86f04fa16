"""Weights & Biases logging: one W&B run per Tune trial, and one summary run per experiment.

Why not ``ray.air.integrations.wandb.WandbLoggerCallback``: with ray 2.60 and wandb
0.31 it refuses to start without an API key even when given ``mode="offline"``
(its key check only looks at the ``WANDB_MODE`` environment variable, which would
have to be set process-wide), it starts one Ray actor per trial (a process
start-up each, plus a Ray core warning per actor on stderr) and logs every Tune-internal
field (pid, hostname, ...).  :class:`WandbTrialLogger` is a thin ``tune.Callback``
around ``wandb.init(reinit="create_new")`` in the driver process: no actors,
only the metrics of ``results.schema``, no environment changes.

Modes (``--wandb``):

* ``off``: nothing is logged (:func:`wandb_callback` returns ``None``);
* ``offline``: runs are written under ``<local_dir>/wandb/offline-run-*`` and
  never touch the network; upload them later with
  ``wandb sync <local_dir>/wandb/offline-run-*``;
* ``online``: needs a W&B API key (``wandb login`` or ``WANDB_API_KEY``);
  :func:`check_wandb_mode` says so, as a :class:`~noisylabels.errors.UserError`,
  before Ray starts.

Every trial run has ``group = "<experiment>/<searcher>-seed<seed>"``
(``results.layout.search_label``), ``job_type = "trial"``, the given tags, the trial's config
(plus ``searcher``, ``seed``, ``trial_id``, ``experiment``) and, per epoch (W&B step = epoch),
``results.schema.EPOCH_METRICS`` and ``time_this_iter_s``.

wandb is imported on first use (:func:`_wandb`), not at the top: importing this module,
``--wandb off`` and :func:`has_api_key` with ``WANDB_API_KEY`` set never load it (a slow import).
:func:`read_offline_run` reads a run's ``.wandb`` file back (its history, config, summary), no network.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from noisylabels.errors import UserError
from results import layout
from results.schema import EPOCH_METRICS, SEARCH_KEY

MODES = ("off", "offline", "online")
DEFAULT_PROJECT = "s2e-tune"
TRIAL_METRICS = (*EPOCH_METRICS, "time_this_iter_s")  # what a trial run logs per epoch (finite values only)
EXPERIMENT_KEY = "experiment"  # the config key naming the experiment, on every run (trials and summary)
NO_KEY = "--wandb online needs a W&B API key: run `wandb login` or set WANDB_API_KEY, or use --wandb offline"


def _wandb() -> Any:
    """The wandb module, imported on first use (see the module docstring)."""
    import wandb

    return wandb


def project_name(project: str | None = None) -> str:
    return project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT


def has_api_key() -> bool:
    """Whether W&B finds an API key (``WANDB_API_KEY``, a settings file, ``~/.netrc``/``$NETRC``),
    without prompting and without the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return bool(_wandb().login(prompt=False, verify=False))
    except Exception:  # noqa: BLE001 - a malformed key file etc. means: no usable key
        return False


def check_wandb_mode(mode: str) -> None:
    """Raise :class:`UserError` for an unknown mode, or ``online`` without an API key.
    Call it before Ray starts."""
    if mode not in MODES:
        raise UserError(f"unknown --wandb mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "online" and not has_api_key():
        raise UserError(NO_KEY)


def _settings(mode: str):
    return _wandb().Settings(
        silent=True,
        quiet=True,
        show_info=False,
        show_warnings=False,
        console="off",  # the driver's console is not the trial's
        x_disable_stats=True,  # system metrics would be the driver's, not the trial's
        save_code=False,
        disable_job_creation=True,
    )


def _run_id(experiment: str, searcher: str, seed: int, trial_id: str) -> str:
    """A stable W&B run id (letters, digits, ``-_``): the trial id plus a hash of where it ran."""
    h = hashlib.sha1(f"{experiment}/{searcher}/{seed}".encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{trial_id}-{h}")[:64]


def _scalar(v: Any) -> Any:
    if hasattr(v, "item"):
        try:
            v = v.item()
        except (ValueError, TypeError):
            return None
    return v if isinstance(v, bool | int | float | str) else None


def _clean_config(config: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in config.items():
        if isinstance(v, Mapping):
            out[k] = _clean_config(v)
        elif (s := _scalar(v)) is not None or v is None:
            out[k] = s
    return out


class WandbTrialLogger(tune.Callback):
    """One W&B run per trial of one (searcher, seed) search; see the module docstring."""

    def __init__(
        self,
        mode: str,
        experiment: str,
        searcher: str,
        seed: int,
        tags: Sequence[str] = (),
        local_dir: str | os.PathLike = ".",
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        if mode not in ("offline", "online"):
            raise ValueError(f"WandbTrialLogger mode must be offline or online, got {mode!r}")
        self.mode, self.experiment, self.searcher, self.seed = mode, experiment, searcher, int(seed)
        self.tags = [str(t) for t in tags]
        self.local_dir = str(Path(local_dir).resolve())
        self.project, self.entity = project_name(project), entity
        self.group = f"{experiment}/{layout.search_label(searcher, seed)}"
        self._runs: dict[str, Any] = {}

    # runs are process-local; never pickle them with the experiment state
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_runs"] = {}
        return state

    def run_config(self, trial) -> dict[str, Any]:
        """The W&B config of a trial's run: its Tune config plus the search (``results.schema.SEARCH_KEY``:
        searcher, seed), ``trial_id`` and :data:`EXPERIMENT_KEY`; W&B Reports group and filter on these."""
        search = dict(zip(SEARCH_KEY, (self.searcher, self.seed), strict=True))
        return {**_clean_config(trial.config), **search, "trial_id": trial.trial_id, EXPERIMENT_KEY: self.experiment}

    def _run(self, trial) -> Any:
        run = self._runs.get(trial.trial_id)
        if run is not None:
            return run
        Path(self.local_dir).mkdir(parents=True, exist_ok=True)
        config = self.run_config(trial)
        run = _wandb().init(
            project=self.project,
            entity=self.entity,
            dir=self.local_dir,
            id=_run_id(self.experiment, self.searcher, self.seed, trial.trial_id),
            name=f"{layout.search_label(self.searcher, self.seed)}-{trial.trial_id}",
            group=self.group,
            job_type="trial",
            tags=self.tags,
            config=config,
            mode=self.mode,
            reinit="create_new",
            resume="allow" if self.mode == "online" else None,
            settings=_settings(self.mode),
        )
        # created at the first result: no empty run for a trial the search stopped before it reported
        self._runs[trial.trial_id] = run
        return run

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "epoch" not in result:
            return
        row = {}
        for m in TRIAL_METRICS:
            v = _scalar(result.get(m))
            if isinstance(v, float) and not math.isfinite(v):
                continue
            if v is not None:
                row[m] = v
        self._run(trial).log(row, step=int(result["epoch"]))

    def _finish(self, trial, status: str, exit_code: int = 0) -> None:
        run = self._runs.pop(trial.trial_id, None)
        if run is None:
            return
        run.summary["status"] = status
        run.finish(exit_code=exit_code)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "ERROR", exit_code=1)

    def on_experiment_end(self, trials, **info):
        for trial_id in list(self._runs):
            run = self._runs.pop(trial_id)
            run.summary["status"] = "UNFINISHED"
            run.finish()


def wandb_callback(
    mode: str,
    experiment: str,
    searcher: str,
    seed: int,
    tags: Sequence[str] = (),
    local_dir: str | os.PathLike = ".",
    project: str | None = None,
    entity: str | None = None,
) -> WandbTrialLogger | None:
    """The Tune callback for ``--wandb MODE`` (``None`` for ``off``).  Offline runs land in
    ``<local_dir>/wandb/offline-run-*``; ``local_dir`` must be a local directory (for an
    ``s3://`` results root pass a local one)."""
    check_wandb_mode(mode)
    if mode == "off":
        return None
    return WandbTrialLogger(mode, experiment, searcher, seed, tags, local_dir, project, entity)


def _table(df) -> Any:
    clean = df.copy()
    for c in clean.columns:
        if clean[c].dtype == object:
            clean[c] = clean[c].astype(str)
    return _wandb().Table(dataframe=clean)


def log_summary_run(
    mode: str,
    experiment: str,
    summary,
    images: Mapping[str, str | os.PathLike | bytes] | None = None,
    tags: Sequence[str] = (),
    local_dir: str | os.PathLike = ".",
    config: Mapping[str, Any] | None = None,
    project: str | None = None,
    entity: str | None = None,
    tables: Mapping[str, Any] | None = None,
) -> str | None:
    """One W&B run ``<experiment>/summary`` (``job_type="summary"``) with the summary table
    (``wandb.Table`` under ``summary``), each PNG of ``images`` (a local path or PNG
    bytes, e.g. ``Report.images``) as a ``wandb.Image`` under its key, further
    DataFrames ``tables`` as tables, ``config`` (e.g. the manifest's config), and per
    searcher ``<searcher>/best_val_acc`` and ``<searcher>/test_acc`` in the run summary.
    Returns the run's local directory (``None`` for ``off``)."""
    check_wandb_mode(mode)
    if mode == "off":
        return None
    wandb = _wandb()
    Path(local_dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=project_name(project),
        entity=entity,
        dir=str(Path(local_dir).resolve()),
        name=f"{experiment}/summary",
        group=f"{experiment}/summary",
        job_type="summary",
        tags=[str(t) for t in tags],
        config={**_clean_config(config or {}), EXPERIMENT_KEY: experiment},
        mode=mode,
        reinit="create_new",
        settings=_settings(mode),
    )
    try:
        payload: dict[str, Any] = {"summary": _table(summary)}
        for key, df in (tables or {}).items():
            payload[key] = _table(df)
        for key, img in (images or {}).items():
            if isinstance(img, bytes | bytearray):  # PNG bytes (results on an object store)
                tmp = Path(run.dir) / f"{key}.png"
                tmp.write_bytes(bytes(img))
                payload[key] = wandb.Image(str(tmp), caption=f"{key}.png")
            elif Path(img).exists():
                payload[key] = wandb.Image(str(img), caption=Path(img).name)
        run.log(payload)
        for r in summary.to_dict("records"):
            for k in ("best_val_acc", "test_acc"):
                v = _scalar(r.get(k))
                if isinstance(v, float) and math.isfinite(v):
                    run.summary[f"{r['searcher']}/{k}"] = v
        return str(Path(run.dir).parent)
    finally:
        run.finish()


# ------------------------------------------------------------------------------ reading a run back
# A run's ``run-<id>.wandb`` file is W&B's transaction log: a 7-byte header, then protobuf
# ``wandb_internal_pb2.Record`` messages in the leveldb log format (32 KiB blocks; each chunk is
# CRC-32 of its type byte and data, little-endian length, type FULL/FIRST/MIDDLE/LAST).
_LOG_HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
_BLOCK, _CHUNK_HEADER = 32768, 7
_FULL, _FIRST, _LAST = 1, 2, 4


@dataclass
class OfflineRun:
    """What one run's ``.wandb`` file holds (:func:`read_offline_run`).  ``history``: one dict per
    logged step, ``_step`` and the logged keys (and W&B's own ``_runtime``, ``_timestamp``);
    ``finished``: the run's exit record is in the file (W&B writes it shortly after ``finish()``)."""

    run_id: str
    group: str
    job_type: str
    tags: list[str]
    config: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    finished: bool


def _log_records(data: bytes) -> Iterator[bytes]:
    """The records of a ``.wandb`` file's bytes; stops at a chunk still being written."""
    if not data.startswith(_LOG_HEADER):
        raise ValueError("not a W&B run log (.wandb) file")
    pos, parts = len(_LOG_HEADER), []
    while pos + _CHUNK_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER:  # a block's zero trailer
            pos += left
            continue
        crc, n, kind = struct.unpack_from("<IHB", data, pos)
        chunk = data[pos + _CHUNK_HEADER : pos + _CHUNK_HEADER + n]
        if kind == 0 or len(chunk) < n:
            return
        if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            raise ValueError(f"corrupt W&B run log: bad checksum at byte {pos}")
        pos += _CHUNK_HEADER + n
        parts = [chunk] if kind in (_FULL, _FIRST) else [*parts, chunk]
        if kind in (_FULL, _LAST):
            yield b"".join(parts)


def _item_value(item) -> Any:
    kind = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if kind in (None, "json"):
        return json.loads(item.json if kind else item.value_json)  # json reads W&B's NaN, Infinity too
    return None if kind == "none" else getattr(item, kind)


def _apply(into: dict[str, Any], items, remove=()) -> None:
    """Set each of ``items``, then drop each of ``remove``, in the nested dict ``into``: at an item's
    flat ``key`` (may hold ``/``) or along its ``nested_key`` path; W&B's own ``_wandb`` left out."""
    for item, drop in [*((i, False) for i in items), *((i, True) for i in remove)]:
        path = [item.key] if item.key else list(item.nested_key)
        node = {} if path[0] == "_wandb" else into
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if drop:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = _item_value(item)


def read_offline_run(run_dir: str | os.PathLike) -> OfflineRun:
    """Read a run back from its directory (``<local_dir>/wandb/offline-run-*``), no network:
    what W&B will upload on ``wandb sync``."""
    from wandb.proto import wandb_internal_pb2 as pb  # local: wandb is a slow import

    (path,) = Path(run_dir).glob("*.wandb")
    out = OfflineRun("", "", "", [], {}, [], {}, False)
    for raw in _log_records(path.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.run_id, out.group, out.job_type, out.tags = r.run_id, r.run_group, r.job_type, list(r.tags)
            _apply(out.config, rec.run.config.update, rec.run.config.remove)
        elif kind in ("config", "summary"):
            _apply(getattr(out, kind), getattr(rec, kind).update, getattr(rec, kind).remove)
        elif kind == "history":
            out.history.append({})
            _apply(out.history[-1], rec.history.item)
        elif kind == "exit":
            out.finished = True
    return out


def read_offline_runs(local_dir: str | os.PathLike) -> list[OfflineRun]:
    """Every offline run under ``<local_dir>/wandb/`` (:func:`read_offline_run`), oldest first."""
    return [read_offline_run(d) for d in sorted(Path(local_dir, "wandb").glob("offline-run-*"))]
