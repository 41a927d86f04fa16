"""``python -m s2e_tune.bench variants``: S2E variants against the peers of a replayed search
benchmark, every variant ever tried kept with what it changed.

Each variant is S2E with some of its options (``searchers.s2e_settings.S2ESettings``) changed.  It
is measured by ``bench search --backend replay --rerun s2e --s2e-options ...`` on a copy of a
finished replay benchmark (``--peers DIR``, made by ``bench search --backend replay --storage DIR``),
so its numbers (paired difference to random, normalised score, mean rank, budget to match random)
are computed by the same code, against the same peer searches, as the benchmark's own.  The copy
links the peers' Parquet files (no copy of their data) and rewrites only what the rerun changes.

Results go to ``--out DIR``: one directory per variant (its ``summary.json`` marks it done; a
finished variant is not run again) and ``variants.md``, the table of every variant measured so far.
Decide on one set of seeds (e.g. ``--seeds 0-49``) and report the chosen variant on another
(``bench search --seeds 100-149``): the table says which seeds it was measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from noisylabels.errors import UserError, run_cli
from results.stats import DASH
from s2e_tune.bench import common

# name -> (S2E options, what changed); in the order they were tried.  Keep every one: the table in
# BENCHMARKS.md lists the variants that did not help beside the one that did.
BEFORE = {"init_concentration": 1.0, "surrogate": "none", "reuse_weights": "ratio", "kl_per_param": 0.1}
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "v0-before": (BEFORE, "S2E before this work: uniform start, rank utilities, per-round ratio weights"),
    "v1-linear": ({**BEFORE, "surrogate": "linear"}, "linear ridge surrogate as control variate"),
    "v2-quadratic": ({**BEFORE, "surrogate": "quadratic"}, "separable quadratic ridge surrogate as control variate"),
    "v3-centre4": ({**BEFORE, "init_concentration": 4.0}, "first distribution Beta(4, 4): CMA-ES's sigma0 = range/6"),
    "v4-centre4-linear": ({**BEFORE, "init_concentration": 4.0, "surrogate": "linear"}, "v3 + linear surrogate"),
    "v5-centre4-quadratic": (
        {**BEFORE, "init_concentration": 4.0, "surrogate": "quadratic"},
        "v3 + quadratic surrogate",
    ),
    "v6-centre4-linear-newton-length": (
        {**BEFORE, "init_concentration": 4.0, "surrogate": "linear", "fill_trust_region": False},
        "v4, Newton's own step length (capped by the trust region) instead of filling it",
    ),
    "v7-centre4-mixture": ({**BEFORE, "init_concentration": 4.0, "reuse_weights": "mixture"}, "v3 + mixture weights"),
    "v8-centre4-frozen": (
        {**BEFORE, "init_concentration": 4.0, "max_kl": 1e-9},
        "ablation: v3 that never moves (Beta(4, 4) sampling, no learning)",
    ),
    "v9-centre8": ({**BEFORE, "init_concentration": 8.0}, "first distribution Beta(8, 8)"),
    "v10-centre8-mixture": ({**BEFORE, "init_concentration": 8.0, "reuse_weights": "mixture"}, "v9 + mixture weights"),
    "v11-centre16": ({**BEFORE, "init_concentration": 16.0}, "first distribution Beta(16, 16)"),
    "v12-centre8-kl05": ({**BEFORE, "init_concentration": 8.0, "kl_per_param": 0.05}, "v9 with half the trust region"),
    "v13-centre8-frozen": (
        {**BEFORE, "init_concentration": 8.0, "max_kl": 1e-9},
        "ablation: v9 that never moves (Beta(8, 8) sampling, no learning)",
    ),
    "v14-mixture": ({**BEFORE, "reuse_weights": "mixture"}, "mixture weights for reused samples (uniform start)"),
    "v15-kl02": ({**BEFORE, "kl_per_param": 0.2}, "twice the trust region (uniform start): move off the prior faster"),
    "v16-kl04": ({**BEFORE, "kl_per_param": 0.4}, "four times the trust region (uniform start)"),
    "v17-centre2": ({**BEFORE, "init_concentration": 2.0}, "first distribution Beta(2, 2): a mild centring"),
    "v18-centre2-kl02": (
        {**BEFORE, "init_concentration": 2.0, "kl_per_param": 0.2},
        "v17 with twice the trust region",
    ),
}
SETTINGS = (*common.ALL_SETTINGS, "pair-45-clean")  # the protocol's four (bench search's FULL)
SUMMARY = "summary.json"
SCREEN = "screen.json"  # --screen: S2E's searches replayed in process (s2e_tune.bench.search.screen)
TABLE = "variants.md"


def copy_peers(peers: Path, dest: Path) -> None:
    """``peers`` copied to ``dest``: Parquet files hard-linked (never rewritten in place: the
    results layer writes a new file and renames it), everything else copied."""

    def link_or_copy(src: str, dst: str) -> str:
        if src.endswith(".parquet"):
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    shutil.copytree(peers, dest, copy_function=link_or_copy)


def run_variant(name: str, options: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Replay S2E with ``options`` against the peers; returns the summary JSON."""
    from s2e_tune.bench.search import main as search_main

    out = Path(args.out) / name
    summary = out / SUMMARY
    if summary.exists():
        return json.loads(summary.read_text())
    if out.exists():
        shutil.rmtree(out)  # an interrupted variant: start it again
    copy_peers(Path(args.peers), out)
    argv = [
        *peer_flags(out), "--backend", "replay", "--seeds", args.seeds, "--settings", ",".join(args.settings),
        "--storage", str(out), "--rerun", "s2e", "--s2e-options", json.dumps(options),
        "--summary-json", str(out / "summary.tmp.json"), "--quiet", "--workers", str(args.workers),
    ]  # fmt: skip
    if search_main(argv) != 0:
        raise UserError(f"variant {name}: bench search failed (see above)")
    os.replace(out / "summary.tmp.json", summary)
    return json.loads(summary.read_text())


def screen_variant(name: str, options: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``--screen``: the variant's S2E searches in this process against the stored peers."""
    from s2e_tune.bench.search import launch, parse_args
    from s2e_tune.bench.search.screen import screen

    path = Path(args.out) / name / SCREEN
    if path.exists():
        return json.loads(path.read_text())
    flags = [*peer_flags(Path(args.peers)), "--backend", "replay", "--seeds", args.seeds]
    flags += ["--settings", ",".join(args.settings), "--storage", str(args.peers), "--s2e-options", json.dumps(options)]
    bench_args = parse_args(flags)
    cfgs = {s: launch.setting_config(bench_args, s) for s in args.settings}
    js = screen(bench_args, cfgs, Path(args.out), args.workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    common.write_json(path, js, indent=2)
    return js


def peer_flags(storage: Path) -> list[str]:
    """The ``bench search`` flags the peer benchmark was made with (its first manifest's config):
    searchers, space and budget, so the variant's rerun passes the same-budget check."""
    for manifest in sorted(storage.glob("*/manifest.json")):
        c = json.loads(manifest.read_text())["config"]
        searchers = list(dict.fromkeys(["s2e", *c["searchers"]]))  # the variant replaces (or adds) S2E's row
        return [
            "--searchers", ",".join(searchers), "--space", c["space"], "--trials", str(c["trials"]),
            "--epochs", str(c["epochs"]), "--samples-per-round", str(c["samples_per_round"]),
            "--mnist1d-samples", str(c["mnist1d_samples"]), "--val-fraction", str(c["val_fraction"]),
            "--model", str(c["model"]),
        ]  # fmt: skip
    raise UserError(f"no replay benchmark at {storage}; make one with python -m s2e_tune.bench search --backend replay")


def space_of(storage: Path) -> str:
    flags = peer_flags(storage)
    return flags[flags.index("--space") + 1]


def cell(js: dict[str, Any], setting: str) -> str:
    rows = js["settings"].get(setting, {})
    me = rows.get("s2e")
    if not me:
        return DASH
    peers = [r["normalized_score_mean"] for s, r in rows.items() if s != "s2e"]
    peers = [p for p in peers if p is not None]
    best_peer = min(peers) if peers else None
    pooled = [r.get("pooled_normalized_score") for s, r in rows.items() if s != "s2e"]
    pooled = [p for p in pooled if p is not None]

    def num(v: float | None, spec: str) -> str:
        return DASH if v is None else format(v, spec)

    return (
        f"{num(me['diff_vs_random_mean'], '+.4f')} ± {num(me['diff_vs_random_se'], '.4f')}; "
        f"score {num(me['normalized_score_mean'], '.2f')} (best peer {num(best_peer, '.2f')}); "
        f"pooled {num(me.get('pooled_normalized_score'), '.2f')} (best peer {num(min(pooled, default=None), '.2f')}); "
        f"rank {num(me['mean_rank'], '.2f')}; match {common.fmt_fraction(me['budget_fraction_to_random_final'])}"
    )


def table(results: dict[str, dict[str, Any]], settings: Sequence[str], seeds: str, space: str) -> str:
    header = ["variant", "what changed", "measured by", *settings]
    rows = []
    for name, js in results.items():
        how = "screen" if "screen" in js["backend"] else "bench search"
        rows.append([name, VARIANTS[name][1], how, *(cell(js, s) for s in settings)])
    return (
        f"S2E variants replayed on seeds {seeds}, space `{space}`; per setting: paired difference of the "
        "best val_acc to random (mean ± s.e.), normalised score per seed and pooled (lower is better; the best "
        "peer's beside each), "
        "mean rank among all searchers, budget fraction at which the mean first reaches random's final best.\n\n"
        + common.md_table(header, rows, align="lll" + "l" * len(settings))
        + "\n"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m s2e_tune.bench variants", description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", required=True, help="a finished bench search --backend replay storage")
    p.add_argument("--out", required=True, help="where the variants' results and variants.md go")
    p.add_argument("--variants", help=f"comma list of {', '.join(VARIANTS)} [all]")
    p.add_argument("--seeds", default="0-49", help="the seeds to decide on [0-49]")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma list [{','.join(SETTINGS)}]")
    p.add_argument(
        "--screen",
        action="store_true",
        help="replay S2E's searches in this process against the stored peers (seconds per variant; "
        "s2e_tune.bench.search.screen) instead of through bench search --rerun",
    )
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="replays in parallel [CPUs]")
    return p


def main(argv: list[str] | None = None) -> int:
    def body() -> None:
        args = build_parser().parse_args(argv)
        args.settings = [s for s in args.settings.split(",") if s]
        names = [v for v in args.variants.split(",") if v] if args.variants else list(VARIANTS)
        unknown = [v for v in names if v not in VARIANTS]
        if unknown:
            raise UserError(f"unknown variant {unknown[0]!r}; use one of {', '.join(VARIANTS)}")
        if not Path(args.peers, "search_benchmark.json").exists():
            raise UserError(f"no replay benchmark at {args.peers}; make one with bench search --backend replay")
        Path(args.out).mkdir(parents=True, exist_ok=True)
        results = {}
        for name in names:
            print(f"[variants] {name}: {VARIANTS[name][1]}", flush=True)
            run = screen_variant if args.screen else run_variant
            results[name] = run(name, VARIANTS[name][0], args)
        done = {}
        for n in VARIANTS:  # measured through bench search where it was, else screened
            for f in (SUMMARY, SCREEN):
                if (Path(args.out) / n / f).exists():
                    done[n] = json.loads((Path(args.out) / n / f).read_text())
                    break
        doc = table(done, args.settings, args.seeds, space_of(Path(args.peers)))
        (Path(args.out) / TABLE).write_text(doc)
        print(doc)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
