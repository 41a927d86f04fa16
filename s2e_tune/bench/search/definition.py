"""What ``bench search`` runs: a frozen :class:`SearchBenchmark` (``FULL``, ``QUICK``), the
options of one invocation (:class:`BenchArgs`) and the files it keeps in ``--storage``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2e_tune.bench.common import ALL_SETTINGS
from searchers.registry import ALL

# files of the benchmark: <storage>/<MARKDOWN_FILE>, <storage>/<META_FILE>, <storage>/<setting>/<REFERENCE_FILE>
MARKDOWN_FILE = "search_benchmark.md"
META_FILE = "search_benchmark.json"
REFERENCE_FILE = "reference.parquet"
REFERENCE = "random"  # budget to match: the final result of this searcher
REFERENCE_KINDS = {
    "coteaching-default": "ref: Co-teaching default",
    "standard": "ref: standard training",
}

# what makes two runs of one setting comparable: checked on --resume and --report-only
BUDGET_KEYS = (
    "dataset",
    "method",
    "space",
    "noise",
    "noise_rate",
    "epochs",
    "trials",
    "mnist1d_samples",
    "samples_per_round",
    "val_fraction",
    "batch_size",
    "lr",
)
# budget keys that only one searcher reads: a --rerun of that searcher may change them
SEARCHER_KEYS = {"samples_per_round": "s2e"}


@dataclass(frozen=True)
class SearchBenchmark:
    """One search benchmark: every searcher on every noise setting and seed, each search
    ``trials`` full-length trials of ``epochs`` epochs on ``mnist1d_samples`` MNIST-1D signals
    (S2E: ``samples_per_round`` trials per round)."""

    searchers: tuple[str, ...]
    settings: tuple[str, ...]
    seeds: tuple[int, ...]
    trials: int
    epochs: int
    samples_per_round: int
    mnist1d_samples: int

    @property
    def budget(self) -> int:
        """Epochs per searcher and seed."""
        return self.trials * self.epochs

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> SearchBenchmark:
        return dataclasses.replace(self, **changes)


# the full benchmark; BENCHMARKS.md ("Search efficiency") has what it measures and costs
FULL = SearchBenchmark(
    searchers=ALL,
    settings=ALL_SETTINGS,
    seeds=(0, 1, 2, 3, 4),
    trials=8,
    epochs=8,
    samples_per_round=2,  # = one per trial slot on 2 cores, the run command's default there
    mnist1d_samples=4000,
)
# --quick: a few minutes; still two searchers and two seeds so every column has a value
QUICK = SearchBenchmark(
    searchers=("s2e", "random"),
    settings=("sym-50",),
    seeds=(0, 1),
    trials=4,
    epochs=3,
    samples_per_round=2,
    mnist1d_samples=2000,
)


@dataclass(frozen=True)
class BenchArgs:
    """One invocation: the benchmark (``FULL`` or ``QUICK`` with the flags applied) and how to run it."""

    bench: SearchBenchmark
    space: str
    data_dir: str | None
    storage: str
    resume: bool
    report_only: bool
    rerun: tuple[str, ...]
    update_benchmarks: str | None
    reference: bool
    cpus_per_trial: float
    gpus: float
    gpus_per_trial: float | None
    wandb: str
    quiet: bool
    quick: bool
    summary_json: str | None = None

    @property
    def root(self) -> Path:
        return Path(self.storage).resolve()


def experiment_dir(args: BenchArgs, setting: str) -> Path:
    """``<storage>/<setting>``: the run command's experiment of one noise setting."""
    return args.root / setting
