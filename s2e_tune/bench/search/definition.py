"""What ``bench search`` runs: a frozen :class:`SearchBenchmark` (``FULL``, ``QUICK``), the
options of one invocation (:class:`BenchArgs`) and the files it keeps in ``--storage``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2e_tune.identity import IDENTITY_KEYS
from searchers.registry import ALL

# files of the benchmark: <storage>/<MARKDOWN_FILE>, <storage>/<META_FILE>, <storage>/<setting>/<REFERENCE_FILE>
MARKDOWN_FILE = "search_benchmark.md"
META_FILE = "search_benchmark.json"
REFERENCE_FILE = "reference.parquet"
REFERENCE = "random"  # budget to match: the final result of this searcher
REFERENCE_KINDS = {
    "coteaching-default": "ref: Co-teaching default",
    "standard": "ref: standard training",
    "keep-all": "ref: R = 1 (no selection)",  # the replay's stand-in for standard training
}
TRAINED_REFERENCES = ("coteaching-default", "standard")  # what the real backend trains per seed

# what makes two runs of one setting comparable: checked on --resume and --report-only; the run
# command's experiment identity (s2e_tune.identity), so the benchmark and the run agree
BUDGET_KEYS = IDENTITY_KEYS
# budget keys that only one searcher reads: a --rerun of that searcher may change them
SEARCHER_KEYS = {"samples_per_round": "s2e", "extra": "s2e"}  # the benchmark's extra is only extra.s2e


@dataclass(frozen=True)
class SearchBenchmark:
    """One search benchmark: every searcher on every noise setting and seed, each search
    ``trials`` full-length trials of ``epochs`` epochs of the ``model`` on ``mnist1d_samples``
    MNIST-1D signals, ``val_fraction`` of the training pool held out for validation (S2E:
    ``samples_per_round`` trials per round), trained (``backend`` real) or replayed from a
    recording (``replay``; ``s2e_tune.replay``)."""

    searchers: tuple[str, ...]
    settings: tuple[str, ...]
    seeds: tuple[int, ...]
    trials: int
    epochs: int
    samples_per_round: int
    mnist1d_samples: int
    val_fraction: float = 0.1
    model: str | None = None
    backend: str = "real"

    @property
    def budget(self) -> int:
        """Epochs per searcher and seed."""
        return self.trials * self.epochs

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> SearchBenchmark:
        return dataclasses.replace(self, **changes)


BACKENDS = ("real", "replay")
SLOTS = 2  # trials at once: on the 2-core machine the real backend runs 2; the replay simulates 2
# The protocol: the seed's (40 full trainings per search, S2E 20 rounds x K = 2; sym-20, sym-50,
# pair-45, and pair-45 searched on clean validation labels, the paper's objective) scaled to
# MNIST-1D on 2 CPU cores: the MLP (standard training peaks by epoch ~10-25 and then memorises,
# BENCHMARKS.md "Memorisation within the horizon"), 50 epochs, 6,250 signals = 4,000 training /
# 1,000 validation / 1,250 test.  The recording that ships (s2e_tune/replay/data) has these.
FULL = SearchBenchmark(
    searchers=ALL,
    settings=("sym-20", "sym-50", "pair-45", "pair-45-clean"),
    seeds=(0, 1, 2),
    trials=40,
    epochs=50,
    samples_per_round=2,  # = one per trial slot on 2 cores, as the authors' K = 2
    mnist1d_samples=6250,
    val_fraction=0.2,
    model="mlp",
)
# --quick: the protocol replayed for two searchers and two seeds on one setting (seconds)
QUICK = FULL.replace(searchers=("s2e", "random"), settings=("sym-50",), seeds=(0, 1), trials=8, backend="replay")


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
    table: str | None = None  # the recording the replay backend reads (None: the one that ships)
    workers: int = 1  # replay: searches replayed in parallel
    s2e_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # the run command's extra.s2e

    @property
    def root(self) -> Path:
        return Path(self.storage).resolve()


def experiment_dir(args: BenchArgs, setting: str) -> Path:
    """``<storage>/<setting>``: the run command's experiment of one noise setting."""
    return args.root / setting
