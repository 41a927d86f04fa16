"""Co-teaching and its baselines: the training loop and its Ray Tune Trainable.

For a user's own ``tune.Tuner`` (README, "S2E in your own Ray Tune script"):

* :class:`NoisyLabelTrainable` (``trainables.trainable``): one ``step()`` = one epoch;
* :func:`prepare_data` (``noisylabels.data.prepare_data``): the noisy labels and the validation
  split of one seed, for ``tune.with_parameters(NoisyLabelTrainable, data=...)``;
* :data:`TRAIN_DEFAULTS` (``trainables.engine``): every training key a trial's config may set.

They are imported on first use, so ``import trainables.engine`` never imports Ray.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NoisyLabelTrainable", "TRAIN_DEFAULTS", "prepare_data"]


def __getattr__(name: str) -> Any:
    if name == "NoisyLabelTrainable":
        from trainables.trainable import NoisyLabelTrainable

        return NoisyLabelTrainable
    if name == "TRAIN_DEFAULTS":
        from trainables.engine import TRAIN_DEFAULTS

        return TRAIN_DEFAULTS
    if name == "prepare_data":
        from noisylabels.data import prepare_data

        return prepare_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
