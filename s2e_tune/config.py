"""One frozen ``ExperimentConfig`` per run: defaults < preset < ``--config`` file < flags.

Every key can be given in a YAML/JSON file with the same names as the flags
(underscores or dashes).  ``validate()`` raises :class:`UserError` with one line
for anything a user can get wrong, before Ray starts.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from noisylabels.data.prepare import DATASETS, VAL_LABELS, DataSpec
from noisylabels.errors import UserError
from noisylabels.models import MODELS
from noisylabels.noise import check_noise
from noisylabels.spaces import SPACES, get_space
from searchers import registry
from searchers.plan import SearchContext
from searchers.registry import ALL
from searchers.s2e_settings import S2ESettings
from trainables.engine import TRAIN_DEFAULTS
from trainables.methods import METHODS

SEARCHERS = ALL  # --searcher all (searchers.registry; "default" is a registered reference, not in all)

# Presets sit between the defaults and a --config file: defaults < preset < file < flags.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"trials": 4, "epochs": 3, "samples_per_round": 2, "mnist1d_samples": 2000},
    # the seed's setup (Co-teaching experiments): 9-layer CNN, 200 epochs, Adam 1e-3, batch 128;
    # with --searcher default the schedule is tau = noise rate, c = 1, T_k = 10
    "paper-mnist": {"dataset": "mnist", "model": "cnn9", "epochs": 200, "batch_size": 128, "lr": 1e-3},
    "paper-cifar10": {"dataset": "cifar10", "model": "cnn9", "epochs": 200, "batch_size": 128, "lr": 1e-3},
    "paper-cifar100": {"dataset": "cifar100", "model": "cnn9", "epochs": 200, "batch_size": 128, "lr": 1e-3},
}


@dataclass(frozen=True)
class ExperimentConfig:
    searchers: tuple[str, ...] = ("s2e",)
    space: str = "s2e"
    method: str = "coteaching"
    dataset: str = "mnist1d"
    data_dir: str | None = None
    mnist1d_samples: int = 12_500
    noise: str = "sym"
    noise_rate: float = 0.5
    val_fraction: float = 0.1
    val_labels: str = "noisy"
    model: str | None = None
    epochs: int = 20
    trials: int = 16
    samples_per_round: int | None = None  # S2E's K; None: one per parallel trial slot (experiment.resolve_k)
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 128
    lr: float = 1e-3
    gpus: float = 0
    gpus_per_trial: float | None = None
    cpus_per_trial: float = 1
    address: str | None = None
    storage: str = "s2e-results"
    name: str | None = None
    resume: bool = False
    wandb: str = "auto"  # auto: online with an API key, else offline; or online | offline | off
    quiet: bool = False
    # {"train": {...}}: keys of trainables.engine.TRAIN_DEFAULTS; {"s2e": {...}}: S2E's options
    # (searchers.s2e_settings.S2ESettings, except those the run sets: K, seed, mode, rounds)
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "config") -> ExperimentConfig:
        clean = normalise_keys(values, source)
        if "searchers" in clean:
            clean["searchers"] = parse_searchers(clean["searchers"])
        if "seeds" in clean:
            clean["seeds"] = parse_seeds(clean["seeds"])
        return cls(**clean)

    def replace(self, **changes: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)

    # ---- derived ------------------------------------------------------------------------
    @property
    def trial_gpus(self) -> float:
        if self.gpus_per_trial is not None:
            return float(self.gpus_per_trial)
        return 1.0 if self.gpus > 0 else 0.0

    @property
    def budget_epochs(self) -> int:
        """The epoch budget every searcher of one seed gets: trials x epochs."""
        return self.trials * self.epochs

    @property
    def wandb_mode(self) -> str:
        """``auto`` resolved: online when W&B finds an API key, else offline."""
        if self.wandb != "auto":
            return self.wandb
        from results.wandb_log import has_api_key

        return "online" if has_api_key() else "offline"

    def data_spec(self, seed: int) -> DataSpec:
        return DataSpec(
            dataset=self.dataset,
            data_dir=self.data_dir,
            noise=self.noise,
            noise_rate=self.noise_rate,
            val_fraction=self.val_fraction,
            val_labels=self.val_labels,
            seed=seed,
            mnist1d_samples=self.mnist1d_samples,
        )

    def train_config(self, seed: int) -> dict[str, Any]:
        """The fixed (not searched) part of every trial's config."""
        return {
            "method": self.method,
            "model": self.model,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": seed,
            "device": "cuda" if self.trial_gpus > 0 else "cpu",
            **self.extra.get("train", {}),
        }

    def search_context(self, seed: int) -> SearchContext:
        """What a searcher is given for the search of ``seed`` (``searchers.plan``)."""
        return SearchContext(
            space=get_space(self.space),
            fixed=self.train_config(seed),
            seed=seed,
            trials=self.trials,
            epochs=self.epochs,
            noise_rate=self.noise_rate,
            samples_per_round=self.samples_per_round,
            options={k: v for k, v in self.extra.items() if k in SEARCHER_OPTIONS},
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["searchers"] = list(self.searchers)
        d["seeds"] = list(self.seeds)
        return d

    # ---- validation ---------------------------------------------------------------------
    def validate(self) -> None:
        for s in self.searchers:
            registry.get(s)  # one line naming the known searchers when it is not one
        if self.space not in SPACES:
            raise UserError(f"unknown space {self.space!r}; use one of {', '.join(SPACES)}")
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.dataset not in DATASETS:
            raise UserError(f"unknown dataset {self.dataset!r}; use one of {', '.join(DATASETS)}")
        if self.model is not None and self.model not in MODELS:
            raise UserError(f"unknown model {self.model!r}; use one of {', '.join(MODELS)}")
        if self.val_labels not in VAL_LABELS:
            raise UserError(f"val_labels must be noisy or clean, got {self.val_labels!r}")
        check_noise(self.noise, self.noise_rate, 100 if self.dataset == "cifar100" else 10)
        _positive_int("epochs", self.epochs)
        _positive_int("trials", self.trials)
        if self.samples_per_round is not None:
            _positive_int("samples_per_round", self.samples_per_round, flag="samples-per-round")
            if self.samples_per_round < 2:
                raise UserError(
                    f"--samples-per-round must be at least 2 (S2E ranks the K trials of a round), "
                    f"got {self.samples_per_round}"
                )
        _positive_int("batch_size", self.batch_size, flag="batch-size")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"lr must be a positive number, got {self.lr!r}")
        if not self.seeds:
            raise UserError("no seeds given; pass e.g. --seeds 0 or --seeds 0,1,2")
        if self.gpus < 0:
            raise UserError(f"--gpus must be >= 0, got {self.gpus}")
        if self.trial_gpus < 0 or self.cpus_per_trial <= 0:
            raise UserError("--gpus-per-trial must be >= 0 and --cpus-per-trial > 0")
        if self.trial_gpus > 0 and self.gpus == 0:
            raise UserError(f"--gpus-per-trial {self.trial_gpus} needs GPUs; pass --gpus N (N >= 1)")
        if self.trial_gpus > self.gpus:
            raise UserError(
                f"--gpus-per-trial {self.trial_gpus} is more than --gpus {self.gpus}; lower it or raise --gpus"
            )
        if self.trial_gpus > 1 and self.trial_gpus != int(self.trial_gpus):
            raise UserError(f"--gpus-per-trial {self.trial_gpus}: above 1 it must be a whole number")
        if self.wandb not in ("auto", "online", "offline", "off"):
            raise UserError(f"--wandb must be auto, online, offline or off, got {self.wandb!r}")
        _check_extra(self.extra)
        if self.resume and not self.name:
            raise UserError("--resume needs --name NAME of the experiment to continue")
        self.data_spec(self.seeds[0]).validate()


def normalise_keys(values: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """``values`` with the field names of :class:`ExperimentConfig` (dashes as underscores,
    ``searcher``/``seed`` as ``searchers``/``seeds``); an unknown key is one line naming it."""
    known = {f.name for f in fields(ExperimentConfig)}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        name = {"searcher": "searchers", "seed": "seeds"}.get(str(key).replace("-", "_"), str(key).replace("-", "_"))
        if name not in known:
            raise UserError(f"unknown key {key!r} in {source}; valid keys: {', '.join(sorted(known))}")
        clean[name] = value
    return clean


# extra.<searcher>: the searchers whose algorithm takes options from the config file
SEARCHER_OPTIONS = ("s2e",)
S2E_RUN_KEYS = ("samples_per_round", "seed", "maximize", "rounds")  # set by the run, not by extra.s2e


def _check_extra(extra: Any) -> None:
    """``extra`` holds ``train`` (training-loop settings the Trainer knows) and ``s2e`` (options of
    :class:`searchers.s2e_settings.S2ESettings`)."""
    if not isinstance(extra, Mapping):
        raise UserError(f"extra must be a mapping such as {{train: {{jocor_lambda: 0.9}}}}, got {extra!r}")
    for key in extra:
        if key not in ("train", *SEARCHER_OPTIONS):
            raise UserError(
                f"unknown key {key!r} under extra in the config file; only extra: {{train: {{...}}, s2e: {{...}}}}"
            )
    train = extra.get("train", {})
    if not isinstance(train, Mapping):
        raise UserError(f"extra.train must be a mapping of training settings, got {train!r}")
    for key in train:
        if key not in TRAIN_DEFAULTS:
            raise UserError(
                f"unknown training setting {key!r} under extra.train in the config file; "
                f"valid: {', '.join(sorted(TRAIN_DEFAULTS))}"
            )
    _check_s2e_options(extra.get("s2e", {}))


def parse_s2e_options(text: str) -> dict[str, Any]:
    """``--s2e-options JSON`` (run command and ``bench search``): a JSON object of S2E's options,
    checked key by key later with the rest of the config (``_check_s2e_options``)."""
    try:
        options = json.loads(text)
    except ValueError:
        options = None
    if not isinstance(options, dict):
        example = '{"init_concentration": 8}'
        raise UserError(f"--s2e-options must be a JSON object such as '{example}', got {text!r}")
    return options


def _check_s2e_options(options: Any) -> None:
    if not isinstance(options, Mapping):
        raise UserError(f"extra.s2e must be a mapping of S2E options such as {{surrogate: linear}}, got {options!r}")
    valid = sorted(f for f in S2ESettings.__dataclass_fields__ if f not in S2E_RUN_KEYS)
    for key in options:
        if key not in valid:
            hint = " (set by the run: use --samples-per-round / --seeds)" if key in S2E_RUN_KEYS else ""
            raise UserError(f"unknown S2E option {key!r} under extra.s2e{hint}; valid: {', '.join(valid)}")
    try:
        S2ESettings(**options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"extra.s2e: {exc}") from None


def _positive_int(name: str, value: Any, flag: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"--{flag or name} must be a positive whole number, got {value!r}")


def parse_searchers(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(s).strip().lower() for s in items if str(s).strip()]
    if names == ["all"]:
        return SEARCHERS
    if not names:
        raise UserError("no searcher given; use --searcher s2e (or a comma list, or all)")
    return tuple(dict.fromkeys(names))


def parse_seeds(value: Any) -> tuple[int, ...]:
    """Seeds from ``0,1,2``, ranges ``0-49`` (both ends included), a mix ``0-4,10``, or a list."""
    items = value.split(",") if isinstance(value, str) else (value if isinstance(value, list | tuple) else [value])
    seeds: list[int] = []
    for item in (str(s).strip() for s in items):
        if not item:
            continue
        lo, dash, hi = item.partition("-")
        try:
            if dash and lo:  # a range a-b; "-3" stays a (negative) number
                a, b = int(lo), int(hi)
                if b < a:
                    raise UserError(f"--seeds range {item} runs backwards; write it low-high, e.g. {b}-{a}")
                seeds += range(a, b + 1)
            else:
                seeds.append(int(item))
        except ValueError:
            raise UserError(
                f"--seeds must be whole numbers or ranges separated by commas (e.g. 0,1,2 or 0-49), got {value!r}"
            ) from None
    if any(s < 0 for s in seeds):
        raise UserError(f"--seeds must be non-negative, got {value!r}")
    return tuple(dict.fromkeys(seeds))


def preset_values(name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML or JSON file of config keys."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {path} does not exist; check the path given to --config")
    text = p.read_text()
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"config file {path} is not valid YAML/JSON ({first}); fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values, got {type(data).__name__}")
    return data
