"""Ray Tune adapter: one ``step()`` = one epoch of :class:`trainables.engine.Trainer`.

Use through ``tune.with_parameters(NoisyLabelTrainable, data=prepared)`` so the
prepared arrays travel once through Ray's object store (the same noisy labels
for every trial of a seed, and on every node of a cluster).
"""

from __future__ import annotations

import os
from typing import Any

import ray
import torch
from ray import tune

from s2e_tune.data import PreparedData
from trainables.engine import Trainer

CHECKPOINT_FILE = "trainer.pt"


class NoisyLabelTrainable(tune.Trainable):
    """Co-teaching and its baselines as a class Trainable.

    The trial's config holds the training settings (``trainables.engine.TRAIN_DEFAULTS``)
    and the R(t) schedule keys (``s2e_tune.schedules``).  Stops itself after
    ``epochs`` steps, or at once when the training loss diverges (NaN/inf).
    """

    def setup(self, config: dict[str, Any], data: PreparedData | None = None) -> None:
        if data is None:
            raise ValueError("NoisyLabelTrainable needs data: use tune.with_parameters(..., data=...)")
        self.trainer = Trainer(config, data)
        self._node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""

    def step(self) -> dict[str, Any]:
        self._maybe_fault(self.trainer.epoch + 1)
        metrics = self.trainer.train_epoch()
        metrics["done"] = metrics["diverged"] or self.trainer.epoch >= self.trainer.epochs
        metrics["node_id"] = self._node_id
        return metrics

    def _maybe_fault(self, epoch: int) -> None:
        """Test hook: raise in epoch ``fault_raise_epoch``; with ``fault_marker`` only the first time."""
        cfg = self.trainer.config
        if cfg.get("fault_raise_epoch") != epoch:
            return
        marker = cfg.get("fault_marker")
        if marker:
            if os.path.exists(marker):
                return
            with open(marker, "w") as f:
                f.write(f"fault at epoch {epoch}\n")
        raise RuntimeError(f"injected fault at epoch {epoch} (fault_raise_epoch test hook)")

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save(self.trainer.state_dict(), os.path.join(checkpoint_dir, CHECKPOINT_FILE))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        path = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
        state = torch.load(path, map_location=self.trainer.device, weights_only=False)
        self.trainer.load_state_dict(state)
