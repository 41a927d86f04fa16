"""Turn a clean data set into what a trial trains on: noisy labels and a validation split.

Data flow (DESIGN.md, step 2): labels of the training set are corrupted with a
seeded noise model; a validation split is then held out **from the noisy
training set** (its noisy labels are the search objective, so no clean label is
ever used for search unless ``val_labels="clean"``, the seed paper's setting);
clean labels of the training split are kept beside the noisy ones only to
measure label precision; the clean test set is for reporting only.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from noisylabels.data.base import RawDataset
from noisylabels.errors import UserError
from noisylabels.noise import check_noise, corrupt_labels

DATASETS = ("mnist1d", "mnist", "fashion-mnist", "cifar10", "cifar100")
VAL_LABELS = ("noisy", "clean")


def default_data_dir() -> Path:
    """``$S2E_TUNE_DATA`` or ``~/.cache/s2e-tune/data``."""
    env = os.environ.get("S2E_TUNE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "s2e-tune" / "data"


@dataclass(frozen=True)
class DataSpec:
    """Everything that determines the arrays a trial trains and is judged on."""

    dataset: str = "mnist1d"
    data_dir: str | None = None
    noise: str = "sym"
    noise_rate: float = 0.5
    val_fraction: float = 0.1
    val_labels: str = "noisy"
    seed: int = 0
    mnist1d_samples: int = 12_500

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise UserError(f"unknown dataset {self.dataset!r}; use one of {', '.join(DATASETS)}")
        if self.val_labels not in VAL_LABELS:
            raise UserError(f"val_labels must be noisy or clean, got {self.val_labels!r}")
        if not 0.0 < self.val_fraction < 0.5:
            raise UserError(f"val_fraction {self.val_fraction} is out of range; use a value in (0, 0.5)")
        if self.dataset == "mnist1d" and self.mnist1d_samples < 200:
            raise UserError(f"mnist1d_samples {self.mnist1d_samples} is too small; use at least 200")
        num_classes = 100 if self.dataset == "cifar100" else 10
        check_noise(self.noise, self.noise_rate, num_classes)


@dataclass
class PreparedData:
    """Arrays of one (data set, noise draw, split); what every searcher of one seed shares."""

    x_train: np.ndarray
    y_train: np.ndarray  # noisy labels the networks see
    y_train_clean: np.ndarray  # for label precision only
    x_val: np.ndarray
    y_val: np.ndarray  # noisy (default) or clean labels: the search objective
    x_test: np.ndarray
    y_test: np.ndarray  # clean, reporting only
    num_classes: int
    mean: np.ndarray  # per-channel (images) or scalar (signals) normalisation
    std: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load_raw(spec: DataSpec) -> RawDataset:
    """Read or generate the clean data set named by ``spec``."""
    data_dir = Path(spec.data_dir) if spec.data_dir else default_data_dir()
    if spec.dataset == "mnist1d":
        from noisylabels.data.mnist1d import load_mnist1d

        return load_mnist1d(data_dir, spec.mnist1d_samples)
    from noisylabels.data.vision import load_vision

    return load_vision(spec.dataset, data_dir)


def _normalisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim == 4:  # images NCHW: per channel, in [0, 1] units like ToTensor
        xs = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        mean = xs.mean(axis=(0, 2, 3))
        std = xs.std(axis=(0, 2, 3))
    else:
        mean = np.array([x.mean()], dtype=np.float32)
        std = np.array([x.std()], dtype=np.float32)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def prepare(spec: DataSpec, raw: RawDataset | None = None) -> PreparedData:
    """Corrupt, split and describe one data set; deterministic in ``spec.seed``."""
    spec.validate()
    raw = raw if raw is not None else load_raw(spec)
    noisy = corrupt_labels(raw.y_train, spec.noise, spec.noise_rate, raw.num_classes, spec.seed)
    n = len(raw.y_train)
    perm = np.random.default_rng([spec.seed, 1]).permutation(n)
    n_val = max(1, int(round(spec.val_fraction * n)))
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    y_val = raw.y_train[val_idx] if spec.val_labels == "clean" else noisy.labels[val_idx]
    mean, std = _normalisation(raw.x_train[train_idx])
    y_tr, y_tr_clean = noisy.labels[train_idx], raw.y_train[train_idx]
    info = {
        **asdict(spec),
        "realised_noise_rate": float(np.mean(y_tr != y_tr_clean)),
        "realised_noise_rate_all": noisy.realised_rate,
        "n_train": int(len(train_idx)),
        "n_val": int(n_val),
        "n_test": int(len(raw.y_test)),
        "num_classes": raw.num_classes,
    }
    return PreparedData(
        x_train=raw.x_train[train_idx],
        y_train=y_tr,
        y_train_clean=y_tr_clean,
        x_val=raw.x_train[val_idx],
        y_val=y_val,
        x_test=raw.x_test,
        y_test=raw.y_test,
        num_classes=raw.num_classes,
        mean=mean,
        std=std,
        info=info,
    )


def prepare_data(**spec: object) -> PreparedData:
    """:func:`prepare` from keywords: the fields of :class:`DataSpec` (``dataset``, ``noise``,
    ``noise_rate``, ``val_fraction``, ``val_labels``, ``seed``, ``mnist1d_samples``, ``data_dir``).

    What a trial of :class:`trainables.trainable.NoisyLabelTrainable` needs, for
    ``tune.with_parameters(NoisyLabelTrainable, data=prepare_data(...))``.  An unknown keyword or a
    bad value raises :class:`noisylabels.errors.UserError` naming it."""
    fields = set(DataSpec.__dataclass_fields__)
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise UserError(f"prepare_data: unknown argument(s) {', '.join(unknown)}; use {', '.join(sorted(fields))}")
    return prepare(DataSpec(**spec))  # type: ignore[arg-type]
