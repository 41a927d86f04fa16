"""Ray Tune adapter: one ``step()`` = one epoch of :class:`trainables.engine.Trainer`.

Use through ``tune.with_parameters(NoisyLabelTrainable, data=prepared)`` so the
prepared arrays travel once through Ray's object store (the same noisy labels
for every trial of a seed, and on every node of a cluster).
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from typing import Any

import pyarrow.fs as pafs
import ray
import torch
from ray import tune

from noisylabels.data import PreparedData
from trainables.engine import Trainer

CHECKPOINT_FILE = "trainer.pt"
RESTORE_WARNING = "restore_warning"  # result key: the one-line warning of a checkpoint fallback, else ""
DIGEST_SUFFIX = ".sha256"  # beside trainer.pt: its SHA-256, so a flipped byte is caught too
STATE_KEYS = ("epoch", "nets", "opts", "shuffle_gen", "torch_rng")


class CorruptCheckpoint(Exception):
    """A checkpoint whose ``trainer.pt`` cannot be read back as a trainer state."""


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def _checkpoints(fs: pafs.FileSystem, trial_dir: str) -> list[str]:
    """The trial's ``checkpoint_*`` directories that hold a trainer state, newest first."""
    if not _exists(fs, trial_dir):
        return []
    dirs = [
        i.path
        for i in fs.get_file_info(pafs.FileSelector(trial_dir))
        if i.type == pafs.FileType.Directory and i.base_name.startswith("checkpoint_")
    ]
    complete = [d for d in dirs if _exists(fs, f"{d}/{CHECKPOINT_FILE}")]
    return sorted(complete, key=lambda d: d.rsplit("_", 1)[-1], reverse=True)


def _newest_checkpoint(fs: pafs.FileSystem, trial_dir: str) -> str | None:
    """The highest-numbered ``checkpoint_*`` directory that holds a trainer state."""
    found = _checkpoints(fs, trial_dir)
    return found[0] if found else None


def _uri(fs: pafs.FileSystem, path: str) -> str:
    return f"s3://{path}" if fs.type_name == "s3" else path


def write_state(state: dict[str, Any], path: str) -> None:
    """``torch.save`` to ``path`` and its SHA-256 to ``path + DIGEST_SUFFIX``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data)
    with open(path + DIGEST_SUFFIX, "w") as f:
        f.write(hashlib.sha256(data).hexdigest() + "\n")


def read_state(path: str, device: torch.device | str, nets: int) -> dict[str, Any]:
    """The trainer state in ``path``, or :class:`CorruptCheckpoint` saying why it is unusable:
    unreadable (truncated, garbled, missing), not the SHA-256 written beside it (checkpoints
    without one are taken on ``torch.load`` alone), or without the keys of a ``Trainer.state_dict``
    for ``nets`` networks.  An out-of-memory error while loading is raised as it is."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        digest = path + DIGEST_SUFFIX
        if os.path.exists(digest):
            with open(digest) as f:
                want = f.read().strip()
            if hashlib.sha256(data).hexdigest() != want:
                raise CorruptCheckpoint(f"its SHA-256 differs from {os.path.basename(digest)}")
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=False)
    except (CorruptCheckpoint, torch.cuda.OutOfMemoryError, MemoryError):
        raise
    except Exception as e:  # truncated zip, broken pickle, missing file: all unreadable
        reason = (str(e).splitlines() or [""])[0][:160]
        raise CorruptCheckpoint(f"unreadable ({type(e).__name__}: {reason})") from e
    if not isinstance(state, dict):
        raise CorruptCheckpoint(f"holds a {type(state).__name__}, not a trainer state")
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise CorruptCheckpoint(f"has no {', '.join(missing)}")
    if len(state["nets"]) != nets or len(state["opts"]) != nets:
        raise CorruptCheckpoint(f"holds {len(state['nets'])} networks, the trial trains {nets}")
    return state


class NoisyLabelTrainable(tune.Trainable):
    """Co-teaching and its baselines as a class Trainable.

    The trial's config holds the training settings (``trainables.engine.TRAIN_DEFAULTS``)
    and the R(t) schedule keys (``noisylabels.schedules``).  Stops itself after
    ``epochs`` steps, or at once when the training loss diverges (NaN/inf).  ``trainer_cls`` is
    the training loop it runs (a subclass may swap in its own ``Trainer``).
    """

    trainer_cls: type[Trainer] = Trainer

    def setup(self, config: dict[str, Any], data: PreparedData | None = None) -> None:
        if data is None:
            raise ValueError("NoisyLabelTrainable needs data: use tune.with_parameters(..., data=...)")
        self._data = data
        self.trainer = self.trainer_cls(config, data)
        self._node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        self._restore_warning = ""

    def step(self) -> dict[str, Any]:
        if self.trainer.finished and self.trainer.last_metrics is not None:
            # restored from a checkpoint written after its last epoch (the driver died before it
            # recorded the end): report that epoch again instead of training past the budget
            metrics = {**self.trainer.last_metrics, "done": True}
        else:
            metrics = self.trainer.train_epoch()
            metrics["done"] = self.trainer.finished
        metrics["node_id"] = self._node_id
        # in every result (Tune's progress.csv keeps the columns of a trial's first result);
        # non-empty in the first result after restore() fell back or restarted
        metrics[RESTORE_WARNING], self._restore_warning = self._restore_warning, ""
        return metrics

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Reuse this actor for the next trial (``reuse_actors=True``): a fresh trainer, the same data."""
        self.trainer = self.trainer_cls(new_config, self._data)
        self.config = new_config
        self._restore_warning = ""
        return True

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        write_state(self.trainer.state_dict(), os.path.join(checkpoint_dir, CHECKPOINT_FILE))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        """Load ``trainer.pt``; :class:`CorruptCheckpoint` (before the trainer is touched) if unusable."""
        path = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
        state = read_state(path, self.trainer.device, len(self.trainer.nets))
        self.trainer.load_state_dict(state)
        self._iteration = self.trainer.epoch  # one step = one epoch, whatever checkpoint was used

    def restore(self, checkpoint_path: Any) -> None:
        """Restore from the checkpoint Tune asks for or, when it is gone or corrupt, the trial's
        newest usable one; with none left, restart the trial from epoch 0.

        Tune's experiment snapshot can lag behind the trial: after a driver crash it may name a
        checkpoint that ``CheckpointConfig(num_to_keep)`` has already deleted, and a newer
        checkpoint of the same trial is then the state an uninterrupted run had.  A checkpoint
        whose ``trainer.pt`` is truncated or garbled (:func:`read_state`: a copy to storage cut
        short, a disk error) is skipped for the next one, newest first.  Checkpoints restore
        exactly, so the epochs a fallback trains again give the values they had; the trial
        reports them again (``results.parquet_log`` keeps one row per (trial, epoch)).  A
        fallback or restart prints one line ``warning: checkpoint ...`` on the worker's stderr
        and puts it in the next result's ``restore_warning``.
        """
        ckpt = getattr(checkpoint_path, "checkpoint", checkpoint_path)
        if not isinstance(ckpt, tune.Checkpoint):
            return super().restore(checkpoint_path)
        fs, asked = ckpt.filesystem, ckpt.path.rstrip("/")
        gone = not _exists(fs, asked)
        others = [d for d in _checkpoints(fs, asked.rsplit("/", 1)[0]) if d.rstrip("/") != asked]
        candidates = ([] if gone else [checkpoint_path]) + [tune.Checkpoint(d, filesystem=fs) for d in others]
        problems = [f"{_uri(fs, asked)} is gone"] if gone else []
        for candidate in candidates:
            where = _uri(fs, getattr(candidate, "checkpoint", candidate).path)
            try:
                super().restore(candidate)
            except CorruptCheckpoint as e:
                problems.append(f"{where}/{CHECKPOINT_FILE} {e}")
                continue
            if len(problems) > gone:  # a corrupt one was skipped (a gone one alone is Tune's lag)
                self._warn(problems, f"restored from {where} (epoch {self.trainer.epoch})")
            return None
        self._warn(problems, "no usable checkpoint left: the trial restarts from epoch 0")
        self.trainer = self.trainer_cls(self.config, self._data)
        self._iteration, self._time_total = 0, 0.0
        self._time_since_restore, self._iterations_since_restore = 0.0, 0
        return None

    def _warn(self, problems: list[str], outcome: str) -> None:
        self._restore_warning = f"warning: checkpoint {'; '.join(problems)}; {outcome}"
        print(self._restore_warning, file=sys.stderr, flush=True)
