"""``python -m s2e_tune.report RESULTS_DIR [RESULTS_DIR ...] [--out DIR] [--wandb-report]``

Rebuild the figures and the summary of a finished (or interrupted) run from its
Parquet and JSON files alone (``epochs/``, ``trials/``, ``manifest.json``,
``s2e/seed=<k>/history.json``); no Ray, no torch, no Tune directories.

For each RESULTS_DIR (a directory or an ``s3://bucket/prefix`` URI) it writes,
to ``RESULTS_DIR/plots/`` or to ``--out`` (``--out/<name>/`` when several
RESULTS_DIRs are given):

  search_efficiency.png  best-so-far val_acc and the test accuracy of that trial
                         vs. cumulative epochs and training time, mean ± s.e. over seeds
  label_precision.png    label precision / test accuracy per epoch of each searcher's best trial
  schedules.png          R(t) of each searcher's best configuration, Co-teaching's default,
                         and S2E's mean schedule per round
  summary.md             per searcher (mean ± s.e. over seeds) and per seed: best val_acc,
                         its test accuracy and label precision, cost; best-so-far at
                         25/50/100 % of the epoch budget; budget to match random's final best
  summary.csv            the per-searcher table (mean and s.e. columns)

and prints the per-searcher summary table.  ``--wandb-report`` also builds a W&B
Report (needs the optional package wandb-workspaces and a W&B API key; otherwise
one line says why it was skipped).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from noisylabels.errors import UserError, run_cli
from results import layout
from results.efficiency import budget_to_match, budget_values, search_efficiency
from results.history import history_seeds, read_history
from results.plots import describe, plot_label_precision, plot_schedules, plot_search_efficiency, png_bytes
from results.reader import open_store, read_results
from results.schema import CONFIG_PREFIX
from results.store import Store
from results.summary import format_searcher_table, markdown_table, per_seed_table, summary_table

FILE_NAMES = {  # what make_report writes, by key, under layout.PLOTS or --out
    "search_efficiency": "search_efficiency.png",
    "label_precision": "label_precision.png",
    "schedules": "schedules.png",
    "summary_md": "summary.md",
    "summary_csv": "summary.csv",
}
FILES = tuple(FILE_NAMES)
S2E = "s2e"  # the searcher whose record (p_theta per round) schedules.png draws


def _budget(manifest: dict[str, Any] | None) -> tuple[int | None, float | None]:
    cfg = (manifest or {}).get("config") or {}
    epochs = cfg.get("epochs")
    trials = cfg.get("trials")
    full = int(epochs) if epochs else None
    budget = float(epochs) * float(trials) if epochs and trials else None
    return full, budget


def summary_markdown(
    summary: pd.DataFrame,
    seeds: pd.DataFrame,
    budget_df: pd.DataFrame,
    match: pd.DataFrame,
    manifest: dict[str, Any] | None,
    budget: float | None,
) -> str:
    desc = describe(manifest)
    name = (manifest or {}).get("name")
    lines = [f"# s2e-tune summary{f': {name}' if name else ''}", ""]
    if desc:
        lines += [desc, ""]
    lines += [
        "## Per searcher (mean ± s.e. over seeds)",
        "",
        "best_val_acc: best `val_acc` at the last epoch (full-length trials when there are any); "
        "test_acc and label_precision: of that trial; trials, epochs_used, train_time_s: per seed. "
        "val_at_N: mean best-so-far `val_acc` after N % of the epoch budget"
        + (f" ({budget:g} epochs)" if budget else "")
        + "; budget_to_match_random: first budget fraction at which the mean reaches random's final mean.",
        "",
        markdown_table(summary),
        "",
        "## Per searcher and seed",
        "",
        markdown_table(seeds),
        "",
        "## Best-so-far at fractions of the budget (mean ± s.e. over seeds)",
        "",
        markdown_table(
            budget_df[["searcher", "fraction", "x", "val_mean", "val_se", "test_mean", "test_se"]].rename(
                columns={"x": "epochs"}
            )
        ),
        "",
    ]
    if match["target"].notna().any():
        lines += ["## Budget to match random's final best", "", markdown_table(match), ""]
    return "\n".join(lines)


def _pick_history(store: Store) -> dict[str, Any] | None:
    for seed in history_seeds(store, S2E):
        h = read_history(store, S2E, seed)
        if h and h.get("rounds"):
            return h
    return None


@dataclass
class Report:
    """What :func:`build_report` wrote: ``paths`` (key -> path in the output filesystem),
    the per-searcher ``summary``, the per-seed table ``seeds``, the ``manifest`` (or None)
    and the PNG bytes of each figure (``images``, e.g. for ``wandb.Image`` when the
    results live on S3)."""

    paths: dict[str, str]
    summary: pd.DataFrame
    seeds: pd.DataFrame
    manifest: dict[str, Any] | None
    images: dict[str, bytes]


def make_report(store_or_uri: Store | str | os.PathLike, out: str | os.PathLike | None = None) -> dict[str, str]:
    """Write the three figures, summary.md and summary.csv of one results directory.

    ``store_or_uri``: a :class:`Store`, a directory or an ``s3://`` URI.  ``out``: a
    directory (default: ``<results>/plots/`` through the results' own filesystem, so
    ``s3://`` works).  Returns ``{"search_efficiency", "label_precision", "schedules",
    "summary_md", "summary_csv"} -> path``.  Raises :class:`UserError` when there are
    no results.
    """
    return build_report(store_or_uri, out).paths


def build_report(store_or_uri: Store | str | os.PathLike, out: str | os.PathLike | None = None) -> Report:
    """:func:`make_report`, also returning the summary table and the manifest."""
    store, where = open_store(store_or_uri)
    epochs, trials, manifest = read_results(store, where)
    full, budget = _budget(manifest)
    planned = f"{CONFIG_PREFIX}epochs"  # the epochs every trial was given
    if full is None and planned in epochs.columns and epochs[planned].notna().any():
        full = int(epochs[planned].max())
    eff = search_efficiency(epochs, full_epochs=full, x_max={"epochs": budget} if budget else None)
    summary = summary_table(trials, full, efficiency=eff, budget=budget)
    seeds = per_seed_table(trials, full)
    bv = budget_values(eff, budget)
    match = budget_to_match(eff, "random", budget)

    if out is None:
        out_store = store
        paths = {k: store.path(layout.plot_file(f)) for k, f in FILE_NAMES.items()}
    else:
        out_store = Store.from_uri(str(out))
        paths = {k: f"{out_store.root}/{f}" for k, f in FILE_NAMES.items()}
    figures = {
        "search_efficiency": plot_search_efficiency(eff, manifest, budget),
        "label_precision": plot_label_precision(epochs, trials, manifest, full),
        "schedules": plot_schedules(epochs, trials, manifest, full, _pick_history(store)),
    }
    images = {key: png_bytes(fig) for key, fig in figures.items()}
    for key, png in images.items():
        out_store.write_bytes(paths[key], png)
    md = summary_markdown(summary, seeds, bv, match, manifest, budget)
    out_store.write_bytes(paths["summary_md"], md.encode())
    buf = io.StringIO()
    summary.to_csv(buf, index=False)
    out_store.write_bytes(paths["summary_csv"], buf.getvalue().encode())
    return Report(paths, summary, seeds, manifest, images)


# ------------------------------------------------------------------------------ W&B report
def wandb_report(report: Report, project: str | None = None) -> str:
    """Save a W&B Report of the experiment (``results.wandb_report``); one line says what happened."""
    from results.wandb_report import save_wandb_report  # local: imports wandb_log, hence ray

    return save_wandb_report(report.summary, report.manifest, project, media_keys=list(report.images))


# ------------------------------------------------------------------------------ CLI
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UserError(f"{message}; see python -m s2e_tune.report --help")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m s2e_tune.report",
        description=__doc__.split("\n\n")[1],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", nargs="+", metavar="RESULTS_DIR", help="<storage>/<name> of a run (dir or s3:// URI)")
    p.add_argument("--out", help="write here instead of RESULTS_DIR/plots/")
    p.add_argument("--wandb-report", action="store_true", help="also build a W&B Report (needs wandb-workspaces)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> None:
        args = build_parser().parse_args(argv)
        several = len(args.results) > 1
        for res in args.results:
            out = args.out
            if out is not None and several:
                out = os.path.join(out, Path(res.rstrip("/")).name or "results")
            rep = build_report(res, out)
            paths, summary = rep.paths, rep.summary
            if several:
                print(f"== {res}")
            print(format_searcher_table(summary))
            names = ", ".join(os.path.basename(p) for p in paths.values())
            print(f"\nreport: {os.path.dirname(paths['summary_md'])}/ ({names})")
            if args.wandb_report:
                print(wandb_report(rep), file=sys.stderr)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
