"""``python -m s2e_tune.run``: search R(t) with S2E (and/or the usual searchers) on Ray Tune.

Examples::

    python -m s2e_tune.run                                  # S2E on MNIST-1D sym-50%, CPU
    python -m s2e_tune.run --searcher s2e,random --seeds 0,1 --trials 8 --epochs 10
    python -m s2e_tune.run --searcher s2e --gpus 8 --gpus-per-trial 0.5 --address auto
    python -m s2e_tune.run --preset paper-mnist --data-dir ~/data --searcher default --noise pair --noise-rate 0.45
    python -m s2e_tune.run --searcher s2e --name cmp --resume              # continue an interrupted run
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from noisylabels.data.prepare import DATASETS
from noisylabels.errors import UserError, run_cli
from noisylabels.spaces import SPACES
from s2e_tune.config import (
    PRESETS,
    SEARCHERS,
    ExperimentConfig,
    load_config_file,
    normalise_keys,
    parse_s2e_options,
    preset_values,
)
from searchers import registry
from trainables.methods import METHODS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UserError(f"{message}; see python -m s2e_tune.run --help")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m s2e_tune.run",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    S = argparse.SUPPRESS
    p.add_argument("--config", help="YAML/JSON file with the same keys as these flags (flags override it)")
    p.add_argument("--preset", default=S, help=f"a starting set of keys: {', '.join(PRESETS)}")
    p.add_argument(
        "--searcher",
        default=S,
        help=f"{', '.join(SEARCHERS)}, a comma list, or all [s2e]; "
        + "; ".join(f"'{s.name}': {s.summary}" for s in registry.SEARCHERS.values() if s.reference)
        + " (HEBO is not offered: HEBO 0.3.6 pins numpy<1.25 and cannot install beside numpy 2)",
    )
    p.add_argument("--space", default=S, choices=list(SPACES), help="R(t) search space [s2e]")
    p.add_argument(
        "--method",
        default=S,
        help=f"{', '.join(METHODS)} [coteaching]",
    )
    p.add_argument("--dataset", default=S, help=f"one of {', '.join(DATASETS)} [mnist1d]")
    p.add_argument("--data-dir", default=S, help="where data sets are read/cached [~/.cache/s2e-tune/data]")
    p.add_argument("--noise", default=S, help="label noise: sym or pair [sym]")
    p.add_argument("--noise-rate", type=float, default=S, help="label noise rate [0.5]")
    p.add_argument("--epochs", type=int, default=S, help="epochs T of every full-length trial [20]")
    p.add_argument("--trials", type=int, default=S, help="budget in full-length trials per searcher and seed [16]")
    p.add_argument(
        "--samples-per-round",
        type=int,
        default=S,
        help="K, trials per S2E round [one per parallel trial slot, >= 2, <= trials/2]",
    )
    p.add_argument(
        "--seeds", default=S, help="comma list or ranges (0,1,2 or 0-49); each seed repeats the comparison [0]"
    )
    p.add_argument(
        "--val-labels",
        default=S,
        help="labels of the validation split the search optimises: noisy (held out from the noisy training "
        "set, no clean label used) or clean (the seed paper's setting) [noisy]",
    )
    p.add_argument(
        "--val-fraction", type=float, default=S, help="of the training pool held out for validation, in (0, 0.5) [0.1]"
    )
    p.add_argument("--mnist1d-samples", type=int, default=S, help="MNIST-1D signals generated, >= 200 [12500]")
    p.add_argument(
        "--s2e-options",
        default=S,
        metavar="JSON",
        help="S2E's options as a JSON object, e.g. '{\"init_concentration\": 8}' (a config file's extra.s2e; keys of "
        "searchers.s2e_settings.S2ESettings) [S2E's defaults]",
    )
    p.add_argument("--model", default=S, help="cnn9, cnn1d or mlp [by data set]")
    p.add_argument("--gpus", type=float, default=S, help="GPUs the search may use; 0 = CPU [0]")
    p.add_argument("--gpus-per-trial", type=float, default=S, help="GPU share of one trial, e.g. 0.25 [1 if --gpus]")
    p.add_argument("--cpus-per-trial", type=float, default=S, help="CPUs of one trial [1]")
    p.add_argument("--address", default=S, help="join a running Ray cluster (e.g. auto); default: local Ray")
    p.add_argument("--storage", default=S, help="results root: a directory or s3://bucket/prefix [s2e-results]")
    p.add_argument("--name", default=S, help="experiment name under the storage root [timestamp-dataset-noise]")
    p.add_argument("--resume", action="store_true", default=S, help="continue the experiment --name")
    p.add_argument(
        "--wandb",
        default=S,
        choices=["auto", "online", "offline", "off"],
        help="W&B logging; auto = online with an API key, else offline files under the results [auto]",
    )
    p.add_argument("--quiet", action="store_true", default=S, help="no per-trial progress lines")
    return p


def parse_config(argv: Sequence[str] | None) -> ExperimentConfig:
    return ExperimentConfig.from_mapping(parse_values(argv))


def parse_values(argv: Sequence[str] | None) -> dict[str, Any]:
    """The keys the user set, by preset, ``--config`` file and flags (later wins), with the field
    names of :class:`ExperimentConfig`; a key not set here keeps its default (or, on
    ``--resume``, its stored value)."""
    args = vars(build_parser().parse_args(argv))
    config_file = args.pop("config", None)
    from_file = load_config_file(config_file) if config_file else {}
    preset = args.pop("preset", None) or from_file.pop("preset", None)
    s2e = args.pop("s2e_options", None)
    values = {**preset_values(preset), **from_file, **args}
    if s2e is not None:
        options = parse_s2e_options(s2e)
        extra = dict(values.get("extra") or {})
        values["extra"] = {**extra, "s2e": {**(extra.get("s2e") or {}), **options}}
    return normalise_keys(values, source=config_file or "flags")


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> None:
        values = parse_values(argv)
        cfg = ExperimentConfig.from_mapping(values)
        cfg.validate()
        # imported here, not at the top: Ray Tune takes seconds to import, and a bad flag or
        # config key should answer with its one line at once
        from s2e_tune.experiment import run_experiment

        run_experiment(cfg, given=values)

    return run_cli(body, "interrupted; continue with --resume --name NAME")


if __name__ == "__main__":
    sys.exit(main())
