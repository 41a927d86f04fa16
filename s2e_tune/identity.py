"""What an experiment is: the keys of its config that its results depend on (README, "Resuming").

Every field of :class:`s2e_tune.config.ExperimentConfig` is in exactly one group (a test holds it):

* :data:`IDENTITY_KEYS`: data, noise, split, budget, space, method, model, optimiser and the
  searchers' options; results made with other values are another experiment;
* :data:`EXTENSIBLE_KEYS`: the searchers and seeds; each (searcher, seed) search is its own Tune
  experiment on data fixed by the identity, so a ``--resume`` may run more of them (or fewer);
* :data:`RUNTIME_KEYS`: where and how it runs (storage, name, cluster, resources, logging).

A run whose experiment directory already holds a manifest must say ``--resume``
(:func:`check_fresh`); ``--resume`` takes the stored identity as the experiment, and a given
flag that would change it is refused with every differing key named (:func:`resumed_config`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from noisylabels.errors import UserError
from s2e_tune.config import ExperimentConfig

IDENTITY_KEYS = (
    "dataset",
    "mnist1d_samples",
    "noise",
    "noise_rate",
    "val_fraction",
    "val_labels",
    "method",
    "space",
    "model",
    "epochs",
    "trials",
    "samples_per_round",
    "batch_size",
    "lr",
    "extra",
)
EXTENSIBLE_KEYS = ("searchers", "seeds")
RUNTIME_KEYS = (
    "data_dir",
    "storage",
    "name",
    "resume",
    "address",
    "gpus",
    "gpus_per_trial",
    "cpus_per_trial",
    "wandb",
    "quiet",
)
FLAG_NAMES = {"searchers": "searcher", "extra": "s2e-options / extra"}  # where a key's flag is not its name


def flag(key: str) -> str:
    return "--" + FLAG_NAMES.get(key, key).replace("_", "-")


def _same(stored: Any, given: Any) -> bool:
    """Equal as the manifest stores them (JSON: tuples are lists, ints and floats compare by value)."""
    return json.loads(json.dumps(stored, default=str)) == json.loads(json.dumps(given, default=str))


def _show(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, (dict, list, tuple)) else repr(value)


def check_fresh(manifest_exists: bool, where: str, resume: bool) -> None:
    """A new run may not reuse an experiment: one line naming it and the ways out."""
    if manifest_exists and not resume:
        raise UserError(
            f"experiment {where} already exists; continue it with --resume, choose another --name, "
            f"or delete {where} to start it again"
        )


def resumed_config(
    cfg: ExperimentConfig, stored: Mapping[str, Any], given: Iterable[str] | None, where: str
) -> ExperimentConfig:
    """The config of a ``--resume``: the stored identity, the given searchers/seeds (else the
    stored ones) and the given runtime keys.  ``given``: the keys the user set (flags, config
    file, preset); ``None`` = every key (a config built in code).  A given identity key whose value
    differs from the stored one stops the run, naming each such key with both values."""
    given = {f.name for f in dataclasses.fields(ExperimentConfig)} if given is None else set(given)
    ours = cfg.to_dict()
    differ = [
        f"{key} stored {_show(stored[key])}, given {_show(ours[key])} ({flag(key)})"
        for key in IDENTITY_KEYS
        if key in given and key in stored and not _same(stored[key], ours[key])
        and not (key == "samples_per_round" and ours[key] is None)
    ]  # fmt: skip
    if differ:
        raise UserError(
            f"--resume of {where} would change the experiment: {'; '.join(differ)}; drop those flags to "
            "continue it as it was made, or use another --name for a new experiment"
        )
    changes: dict[str, Any] = {key: stored[key] for key in IDENTITY_KEYS if key in stored}
    for key in EXTENSIBLE_KEYS:
        if key not in given and key in stored:
            changes[key] = stored[key]
    values = {**ours, **changes}
    return ExperimentConfig.from_mapping(values, source=f"{where}/manifest.json")


def manifest_config(stored: Mapping[str, Any], cfg: ExperimentConfig) -> dict[str, Any]:
    """The config a manifest keeps after a resume: its identity, the union of the searchers and
    seeds run so far (in first-run order), and this run's runtime keys."""
    new = cfg.to_dict()
    out = dict(new)
    for key in EXTENSIBLE_KEYS:
        before = list(stored.get(key) or [])
        out[key] = before + [v for v in new[key] if v not in before]
    return out
