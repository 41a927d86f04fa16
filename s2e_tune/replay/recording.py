"""A recording: many R(t) schedules trained once through the real :class:`~trainables.engine.Trainer`,
every per-epoch metric kept, so a search can later be replayed against it (``s2e_tune.replay.table``).

The idea is Syne Tune's blackbox repository (tabulated learning curves of real trainings, replayed
by a simulated backend).  Every space of ``noisylabels.spaces`` maps a configuration to a keep-ratio
curve R(1..T) (``noisylabels.schedules.keep_ratio_curve``), and the Trainer sees nothing else of
it, so one recording serves all spaces: a query is answered from the recorded schedules whose
curves are nearest to its own.

What is trained, per (setting, data seed): the fixed schedules (Co-teaching's default, R = 1 i.e.
no selection), then prior draws from each space in turn (seeded by the data seed), each with the
search's own training seed (= the data seed, as ``ExperimentConfig.train_config`` gives every
trial); and ``repeats`` extra trainings of the first ``repeat_schedules`` schedules with other
training seeds, from which the replay's evaluation noise is measured.  Besides the Trainer's
metrics a row holds ``val_acc_clean``/``val_loss_clean`` (the same validation inputs scored
against their clean labels), so one recording replays both objectives of the seed: noisy
validation and the paper's ``val_labels: clean``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from noisylabels.data import DataSpec, PreparedData, prepare
from noisylabels.spaces import SPACES, coteaching_default
from results.schema import METRIC_COLUMNS

RECORD_SPACES = ("s2e", "s2e-authors", "coteaching")  # prior draws come from these, in turn
FIXED_SCHEDULES = ("coteaching-default", "keep-all")
REPEAT_SEED_STEP = 1000  # repeat r of data seed d trains with seed d + r * REPEAT_SEED_STEP
CLEAN_COLUMNS = ("val_acc_clean", "val_loss_clean")
KEY_COLUMNS = ("setting", "data_seed", "schedule_id", "train_seed")
# a recording's directory holds these two files; the one made for the protocol ships in SHIPPED
TABLE_FILE, META_FILE = "recording.parquet", "recording.json"
SHIPPED = Path(__file__).resolve().parent / "data"  # s2e_tune/replay/data
COLUMNS = (*KEY_COLUMNS, "space", "config", "epoch", *METRIC_COLUMNS, *CLEAN_COLUMNS, "diverged")


@dataclass(frozen=True)
class RecordingSpec:
    """What a recording holds; saved beside it (``recording.json``) and checked on resume."""

    settings: tuple[str, ...]
    data_seeds: tuple[int, ...]
    schedules: int  # per (setting, data seed), the fixed ones included
    repeat_schedules: int  # the first this many schedules are also trained ...
    repeats: int  # ... this many more times, with other training seeds
    epochs: int
    mnist1d_samples: int
    val_fraction: float
    model: str
    batch_size: int
    lr: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"], d["data_seeds"] = list(self.settings), list(self.data_seeds)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecordingSpec:
        return cls(**{**d, "settings": tuple(d["settings"]), "data_seeds": tuple(d["data_seeds"])})


@dataclass(frozen=True)
class Job:
    """One training of a recording."""

    setting: str
    data_seed: int
    schedule_id: int
    train_seed: int
    space: str  # the space the schedule was drawn from, or one of FIXED_SCHEDULES
    config: str  # the schedule's config as JSON (its keys as the space names them)

    @property
    def key(self) -> str:
        return f"{self.setting}-d{self.data_seed}-s{self.schedule_id:04d}-t{self.train_seed}"


def prior_draw(space_name: str, rng: np.random.Generator) -> dict[str, Any]:
    """One configuration of ``space_name`` from its prior (uniform, log-uniform where ``log``):
    the distribution Ray Tune's ``tune.uniform``/``tune.loguniform`` domains sample."""
    space = SPACES[space_name]
    return space.config_from_unit([rng.uniform() for _ in space.params])


def schedules(spec: RecordingSpec, noise_rate: float, data_seed: int) -> list[tuple[str, dict[str, Any]]]:
    """The ``spec.schedules`` schedules of one (setting, data seed), as (space, config)."""
    out: list[tuple[str, dict[str, Any]]] = [
        ("coteaching-default", coteaching_default(noise_rate)),
        ("keep-all", {"schedule": "constant", "keep": 1.0}),
    ][: spec.schedules]
    rng = np.random.default_rng([data_seed, 7])
    while len(out) < spec.schedules:
        name = RECORD_SPACES[(len(out) - len(FIXED_SCHEDULES)) % len(RECORD_SPACES)]
        out.append((name, prior_draw(name, rng)))
    return out


def jobs(spec: RecordingSpec, noise_rates: Mapping[str, float]) -> list[Job]:
    """Every training of ``spec``, ordered schedule-major (schedule 0 of every setting and seed
    first), so an interrupted recording covers all settings and seeds evenly."""
    out = []
    per = {(s, d): schedules(spec, noise_rates[s], d) for s in spec.settings for d in spec.data_seeds}
    for i in range(spec.schedules):
        for d in spec.data_seeds:
            for s in spec.settings:
                space, config = per[(s, d)][i]
                seeds = [d] + (
                    [d + r * REPEAT_SEED_STEP for r in range(1, spec.repeats + 1)] if i < spec.repeat_schedules else []
                )
                for t in seeds:
                    out.append(Job(s, d, i, t, space, json.dumps(config, sort_keys=True)))
    return out


def data_spec(spec: RecordingSpec, noise: str, noise_rate: float, data_seed: int, data_dir: str | None) -> DataSpec:
    return DataSpec(
        dataset="mnist1d",
        data_dir=data_dir,
        noise=noise,
        noise_rate=noise_rate,
        val_fraction=spec.val_fraction,
        val_labels="noisy",
        seed=data_seed,
        mnist1d_samples=spec.mnist1d_samples,
    )


@lru_cache(maxsize=4)
def _prepared(base: DataSpec) -> tuple[PreparedData, torch.Tensor]:
    """The data of one (setting, data seed) and its clean validation labels, once per process."""
    clean = prepare(replace(base, val_labels="clean")).y_val
    return prepare(base), torch.as_tensor(clean, dtype=torch.long)


def train(spec: RecordingSpec, job: Job, noise: str, noise_rate: float, data_dir: str | None = None) -> pd.DataFrame:
    """Train ``job`` for ``spec.epochs`` epochs on the CPU; one row per epoch (:data:`COLUMNS`)."""
    from trainables.engine import Trainer

    data, clean_y = _prepared(data_spec(spec, noise, noise_rate, job.data_seed, data_dir))
    config = {
        "method": "coteaching",
        "model": spec.model,
        "epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "lr": spec.lr,
        "seed": job.train_seed,
        "device": "cpu",
        **json.loads(job.config),
    }
    trainer = Trainer(config, data)
    rows = []
    for _ in range(spec.epochs):
        m = trainer.train_epoch()
        acc, loss = trainer.score(trainer.x_val, clean_y)
        rows.append(
            {**{k: m[k] for k in ("epoch", *METRIC_COLUMNS, "diverged")}, "val_acc_clean": acc, "val_loss_clean": loss}
        )
        if m["diverged"]:
            break
    df = pd.DataFrame(rows)
    for k in KEY_COLUMNS + ("space", "config"):
        df[k] = getattr(job, k)
    return df[list(COLUMNS)]
