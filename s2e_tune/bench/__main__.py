"""Dispatch ``python -m s2e_tune.bench <benchmark> [options]``."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "search": "s2e_tune.bench.search",  # every searcher over seeds and noise settings
    "record": "s2e_tune.bench.record",  # train many schedules once, for the replay backend
    "variants": "s2e_tune.bench.search.variants",  # S2E variants replayed against a replay benchmark's peers
    "fidelity": "s2e_tune.bench.fidelity",  # replay vs real: ranks and differences side by side
    "headroom": "s2e_tune.bench.headroom",  # what a search can gain on the recorded landscape, against noise
    "methods": "s2e_tune.bench.methods",  # training methods on MNIST-1D noise settings, in-process
    "rounds": "s2e_tune.bench.rounds",  # inside S2E: does p_theta learn on the real objective, which K
    "synthetic": "s2e_tune.bench.synthetic",  # S2E vs random search on synthetic objectives
    "throughput": "s2e_tune.bench.throughput",  # trainer epochs/s vs standard training and a reference loop
    "overhead": "s2e_tune.bench.overhead",  # Ray Tune wall time vs the same trials in one process
    "gpu": "s2e_tune.bench.gpu",  # the loop on a GPU without Ray: epochs/s, memory, concurrent trials
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        bad = f"unknown benchmark {argv[0]!r}; " if argv and argv[0] not in ("-h", "--help") else ""
        print(f"{bad}usage: python -m s2e_tune.bench {{{','.join(BENCHMARKS)}}} [--help]", file=sys.stderr)
        return 2 if bad or not argv else 0
    return importlib.import_module(BENCHMARKS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
