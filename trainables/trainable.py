"""Ray Tune adapter: one ``step()`` = one epoch of :class:`trainables.engine.Trainer`.

Use through ``tune.with_parameters(NoisyLabelTrainable, data=prepared)`` so the
prepared arrays travel once through Ray's object store (the same noisy labels
for every trial of a seed, and on every node of a cluster).
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow.fs as pafs
import ray
import torch
from ray import tune

from noisylabels.data import PreparedData
from trainables.engine import Trainer

CHECKPOINT_FILE = "trainer.pt"


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def _newest_checkpoint(fs: pafs.FileSystem, trial_dir: str) -> str | None:
    """The highest-numbered ``checkpoint_*`` directory that holds a trainer state."""
    if not _exists(fs, trial_dir):
        return None
    dirs = [
        i.path
        for i in fs.get_file_info(pafs.FileSelector(trial_dir))
        if i.type == pafs.FileType.Directory and i.base_name.startswith("checkpoint_")
    ]
    complete = [d for d in dirs if _exists(fs, f"{d}/{CHECKPOINT_FILE}")]
    return max(complete, key=lambda d: d.rsplit("_", 1)[-1]) if complete else None


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

    def step(self) -> dict[str, Any]:
        if self.trainer.finished and self.trainer.last_metrics is not None:
            # restored from a checkpoint written after its last epoch (the driver died before it
            # recorded the end): report that epoch again instead of training past the budget
            return {**self.trainer.last_metrics, "done": True, "node_id": self._node_id}
        metrics = self.trainer.train_epoch()
        metrics["done"] = self.trainer.finished
        metrics["node_id"] = self._node_id
        return metrics

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Reuse this actor for the next trial (``reuse_actors=True``): a fresh trainer, the same data."""
        self.trainer = self.trainer_cls(new_config, self._data)
        self.config = new_config
        return True

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save(self.trainer.state_dict(), os.path.join(checkpoint_dir, CHECKPOINT_FILE))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        path = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
        state = torch.load(path, map_location=self.trainer.device, weights_only=False)
        self.trainer.load_state_dict(state)
        self._iteration = self.trainer.epoch  # one step = one epoch, whatever checkpoint was used

    def restore(self, checkpoint_path: Any) -> None:
        """Restore, falling back to the trial's newest checkpoint when the one Tune asks for is gone.

        Tune's experiment snapshot can lag behind the trial: after a driver crash it may
        name a checkpoint that ``CheckpointConfig(num_to_keep)`` has already deleted. A
        newer checkpoint of the same trial is then the state an uninterrupted run had.
        """
        ckpt = getattr(checkpoint_path, "checkpoint", checkpoint_path)
        if not isinstance(ckpt, tune.Checkpoint) or _exists(ckpt.filesystem, ckpt.path):
            return super().restore(checkpoint_path)
        newest = _newest_checkpoint(ckpt.filesystem, ckpt.path.rsplit("/", 1)[0])
        if newest is None:  # nothing left: start the trial afresh (its epochs are rewritten)
            return None
        return super().restore(tune.Checkpoint(newest, filesystem=ckpt.filesystem))
