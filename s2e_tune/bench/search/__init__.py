"""``python -m s2e_tune.bench search``: S2E against random, BO, TPE, Hyperband, ASHA and BOHB on MNIST-1D.

For each noise setting (sym-20 %, sym-50 %, pair-45 %: the seed's three) the
benchmark runs every (seed, searcher) search of Co-teaching's R(t) through
:func:`s2e_tune.experiment.run_experiment` -- one experiment per setting,
``<storage>/<setting>/``, with the usual Parquet results, plots and manifest --
and two reference rows per seed on the same data: Co-teaching's default
schedule (tau = noise rate, c = 1, T_k = 10) and standard training, each one
full-length run with :class:`trainables.engine.Trainer` in this process.

It prints, and writes to ``<storage>/search_benchmark.md``, per setting and
searcher (mean ± standard error over seeds):

* the best-so-far ``val_acc`` and the clean test accuracy of the trial holding
  it after 25 %, 50 % and 100 % of the epoch budget (``trials x epochs`` per
  searcher and seed; ``results.efficiency.budget_values``);
* the budget fraction at which the searcher's mean first reaches random
  search's final mean (``results.efficiency.budget_to_match``);
* the paired difference to random search at the full budget (per seed, then
  mean ± standard error: ``aggregate.paired_difference``);
* the mean rank: searchers ranked per (setting, seed) by best ``val_acc`` at
  the full budget (1 = best, ties share the average rank), averaged over seeds;

and the reference rows' final ``val_acc`` and test accuracy.
``--update-benchmarks FILE`` puts the same Markdown between
``<!-- bench-search:start -->`` and ``<!-- bench-search:end -->`` in FILE
(markers appended when absent), so BENCHMARKS.md is regenerated, never edited.
What the full benchmark measured, and how long it took, is in BENCHMARKS.md.

The package: ``definition`` (the benchmark as a frozen dataclass: ``FULL``,
``QUICK``), ``launch`` (the driver), ``aggregate`` (the numbers, from the files
alone), ``render`` (the Markdown); this module is the command line.

Examples::

    python -m s2e_tune.bench search                          # the full benchmark (see BENCHMARKS.md)
    python -m s2e_tune.bench search --quick                  # a few minutes: 2 searchers, 2 seeds, sym-50
    python -m s2e_tune.bench search --resume                 # continue an interrupted run (same flags)
    python -m s2e_tune.bench search --rerun s2e              # after changing S2E: redo its searches only
    python -m s2e_tune.bench search --report-only --update-benchmarks BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from noisylabels.errors import UserError, run_cli
from noisylabels.models import MODELS
from s2e_tune.bench.common import SETTINGS
from s2e_tune.bench.search.definition import BACKENDS, FULL, MARKDOWN_FILE, QUICK, BenchArgs
from s2e_tune.bench.search.launch import run_benchmark
from s2e_tune.bench.search.render import END_MARK, START_MARK, update_benchmarks
from s2e_tune.config import parse_s2e_options, parse_searchers, parse_seeds
from searchers.registry import ALL

__all__ = ["build_parser", "parse_args", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UserError(f"{message}; see python -m s2e_tune.bench search --help")


def _show(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple | list) else str(v)


def build_parser() -> argparse.ArgumentParser:
    d = FULL
    p = _Parser(
        prog="python -m s2e_tune.bench search",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes: "
        + ", ".join(f"{k} {_show(v)}" for k, v in QUICK.as_dict().items())
        + " (flags given override these)",
    )
    p.add_argument("--searchers", help=f"comma list of {', '.join(ALL)}, or all [all]")
    p.add_argument("--settings", help=f"comma list of {', '.join(SETTINGS)} [{_show(d.settings)}]")
    p.add_argument("--seeds", help=f"comma list or ranges, e.g. 0-49 [{_show(d.seeds)}]")
    p.add_argument("--trials", type=int, help=f"budget in full-length trials per searcher and seed [{d.trials}]")
    p.add_argument("--epochs", type=int, help=f"epochs T of a full-length trial [{d.epochs}]")
    p.add_argument("--samples-per-round", type=int, help=f"K, trials per S2E round [{d.samples_per_round}]")
    p.add_argument("--mnist1d-samples", type=int, help=f"MNIST-1D signals generated [{d.mnist1d_samples}]")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        help="real: train every trial (Ray Tune); replay: answer trials from a recording "
        f"(python -m s2e_tune.bench record), the same searcher and scheduler objects [{d.backend}; --quick: replay]",
    )
    p.add_argument("--table", metavar="DIR", help="replay: the recording's directory [the one in s2e_tune/replay/data]")
    p.add_argument("--workers", type=int, default=None, help="replay: searches replayed in parallel [CPUs]")
    p.add_argument(
        "--val-fraction", type=float, help=f"of the training pool held out for validation [{d.val_fraction}]"
    )
    p.add_argument("--model", choices=MODELS, help=f"network [{d.model}]")
    p.add_argument("--space", default="s2e", help="R(t) search space [s2e]")
    p.add_argument(
        "--s2e-options",
        metavar="JSON",
        help="S2E's options as a JSON object, e.g. '{\"surrogate\": \"linear\"}' (the run command's extra.s2e; "
        "keys of searchers.s2e_settings.S2ESettings) [S2E's defaults]",
    )
    p.add_argument("--data-dir", default=None, help="where MNIST-1D is cached [~/.cache/s2e-tune/data]")
    p.add_argument(
        "--storage",
        default="bench-results",
        help="results root; one experiment per setting in <storage>/<setting>/ [bench-results]",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted benchmark in --storage (pass the same flags)"
    )
    p.add_argument(
        "--rerun",
        metavar="SEARCHERS",
        help="comma list of searchers whose results in --storage are deleted and run again (e.g. after "
        "changing one), keeping every other searcher's; implies --resume",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="no training: rebuild the tables from the results already in --storage",
    )
    p.add_argument(
        "--update-benchmarks",
        metavar="FILE",
        help=f"replace the section between {START_MARK} and {END_MARK} in FILE with the tables",
    )
    p.add_argument(
        "--summary-json",
        metavar="FILE",
        help="also write the tables' numbers as JSON to FILE (per setting and searcher: best val, its test "
        "accuracy, difference to random, normalised score, budget to match random, mean rank)",
    )
    p.add_argument("--no-reference", action="store_true", help="skip the Co-teaching-default/standard rows")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs of one trial [1]")
    p.add_argument("--gpus", type=float, default=0.0, help="GPUs the searches may use [0]")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="GPU share of one trial [1 if --gpus]")
    p.add_argument("--wandb", default="off", choices=["auto", "online", "offline", "off"], help="W&B logging [off]")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    return p


def parse_args(argv: Sequence[str] | None) -> BenchArgs:
    a = build_parser().parse_args(argv)
    base = QUICK if a.quick else FULL

    def pick(key: str) -> Any:
        v = getattr(a, key)
        return getattr(base, key) if v is None else v

    searchers = parse_searchers(a.searchers) if a.searchers else base.searchers
    bad = [s for s in searchers if s not in ALL]
    if bad:
        raise UserError(f"unknown searcher {bad[0]!r}; use one of {', '.join(ALL)}, a comma list or all")
    settings = (
        tuple(dict.fromkeys(s.strip() for s in a.settings.split(",") if s.strip())) if a.settings else base.settings
    )
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings:
        raise UserError(f"unknown setting {bad[0] if bad else ''!r}; use a comma list of {', '.join(SETTINGS)}")
    seeds = parse_seeds(a.seeds) if a.seeds else base.seeds
    if not seeds:
        raise UserError("no seeds given; pass e.g. --seeds 0,1,2,3,4")
    if "://" in a.storage:
        raise UserError("the benchmark writes its tables locally; pass a directory as --storage")
    rerun = parse_searchers(a.rerun) if a.rerun else ()
    bad = [s for s in rerun if s not in searchers]
    if bad:
        raise UserError(f"--rerun {bad[0]}: not one of this benchmark's searchers ({', '.join(searchers)})")
    if (a.resume or rerun) and a.report_only:
        raise UserError("--resume/--rerun run searches, --report-only runs none; pass one of them")
    bench = base.replace(
        searchers=tuple(searchers),
        settings=tuple(settings),
        seeds=tuple(seeds),
        trials=pick("trials"),
        epochs=pick("epochs"),
        samples_per_round=pick("samples_per_round"),
        mnist1d_samples=pick("mnist1d_samples"),
        val_fraction=pick("val_fraction"),
        model=pick("model"),
        backend=pick("backend"),
    )
    s2e_options = parse_s2e_options(a.s2e_options) if a.s2e_options else {}
    workers = a.workers if a.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    return BenchArgs(
        bench=bench,
        space=a.space,
        data_dir=a.data_dir,
        storage=a.storage,
        resume=a.resume or bool(rerun),
        report_only=a.report_only,
        rerun=rerun,
        update_benchmarks=a.update_benchmarks,
        reference=not a.no_reference,
        cpus_per_trial=a.cpus_per_trial,
        gpus=a.gpus,
        gpus_per_trial=a.gpus_per_trial,
        wandb=a.wandb,
        quiet=a.quiet,
        quick=a.quick,
        summary_json=a.summary_json,
        table=a.table,
        workers=workers,
        s2e_options=s2e_options,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> None:
        args = parse_args(argv)
        doc = run_benchmark(args, argv)
        print()
        print(doc, end="")
        print(f"\nwritten: {args.root / MARKDOWN_FILE}")
        if args.summary_json:
            print(f"written: {args.summary_json}")
        if args.update_benchmarks:
            update_benchmarks(args.update_benchmarks, doc)
            print(f"updated: {args.update_benchmarks} (between {START_MARK} and {END_MARK})")

    return run_cli(body, "interrupted; continue with the same flags and --resume")
