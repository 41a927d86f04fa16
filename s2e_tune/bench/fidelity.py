"""``python -m s2e_tune.bench fidelity``: does the replay rank searchers as real training does?

Reads two ``bench search --summary-json`` files made on the same protocol and seeds, one per
backend, and prints per setting and searcher the paired difference to random search, the
normalised score and the mean rank side by side, then the agreement: Spearman's rank correlation
of the searchers' mean ranks (per setting and over all), the share of searchers whose difference to
random has the same sign on both backends, and the mean absolute gap between the differences in
units of their standard errors (sqrt(se_real^2 + se_replay^2)).

With ``--real-dir``/``--replay-dir`` (the two benchmarks' ``--storage``) it also compares trial by
trial where both backends ran the same configuration (random search draws the same ones from the
same seed): the final ``val_acc`` and test accuracy of real training against the replay's, as the
correlation and the RMS difference beside the spread of the real values.

With ``--chance-dir`` (a replay ``--storage`` with many seeds, e.g. 0-49) it measures what rank
agreement to expect from noise alone: it cuts that replay's seeds into disjoint groups as large
as the real benchmark's (seeds 0-2, 3-5, ...: each group covers the recording's data seeds once,
as the real seeds do) and gives Spearman's correlation between the mean ranks of consecutive
groups, i.e. between two independent runs of the same benchmark with that many seeds.  A
real-vs-replay correlation inside that range says the few real seeds cannot check the ranks; one
below it says the replay ranks differently from real training.

Example::

    python -m s2e_tune.bench fidelity --real real.json --replay replay.json
    python -m s2e_tune.bench fidelity --real real.json --replay replay.json --real-dir R --replay-dir P
    python -m s2e_tune.bench fidelity --real real.json --replay replay.json --chance-dir P
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from noisylabels.errors import UserError, run_cli
from s2e_tune.bench.common import md_table

SAME = ("trials", "epochs", "space")  # what both summaries must share


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rank correlation of two aligned series (NaN pairs dropped; NaN if < 3 left)."""
    d = pd.concat([a, b], axis=1).dropna()
    if len(d) < 3:
        return math.nan
    r = d.rank()
    c = np.corrcoef(r.iloc[:, 0], r.iloc[:, 1])[0, 1]
    return float(c)


def side_by_side(real: dict[str, Any], replay: dict[str, Any]) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Per common setting, a frame indexed by searcher with ``<stat>_real``/``<stat>_replay``
    columns; and the agreement numbers (``spearman_<setting>``, ``spearman_all``, ``same_sign``,
    ``gap_in_se``)."""
    for k in SAME:
        if real.get(k) != replay.get(k):
            raise UserError(
                f"the two summaries differ in {k} ({real.get(k)!r} vs {replay.get(k)!r}); compare one protocol"
            )
    frames, stats = {}, {}
    all_ranks = []
    signs, gaps = [], []
    for setting in [s for s in real["settings"] if s in replay["settings"]]:
        rows = []
        for name in real["settings"][setting]:
            if name not in replay["settings"][setting]:
                continue
            a, b = real["settings"][setting][name], replay["settings"][setting][name]
            rows.append(
                {
                    "searcher": name,
                    **{f"{k}_{side}": v.get(k) for side, v in (("real", a), ("replay", b)) for k in a},
                }
            )
        f = pd.DataFrame(rows).set_index("searcher").astype(float)
        frames[setting] = f
        stats[f"spearman_{setting}"] = spearman(f["mean_rank_real"], f["mean_rank_replay"])
        all_ranks.append(f[["mean_rank_real", "mean_rank_replay"]])
        d = f.dropna(subset=["diff_vs_random_mean_real", "diff_vs_random_mean_replay"])
        signs += list(np.sign(d["diff_vs_random_mean_real"]) == np.sign(d["diff_vs_random_mean_replay"]))
        se = np.sqrt(d["diff_vs_random_se_real"] ** 2 + d["diff_vs_random_se_replay"] ** 2)
        gaps += list((d["diff_vs_random_mean_real"] - d["diff_vs_random_mean_replay"]).abs() / se)
    if all_ranks:
        cat = pd.concat(all_ranks)
        stats["spearman_all"] = spearman(cat["mean_rank_real"], cat["mean_rank_replay"])
    stats["same_sign"] = float(np.mean(signs)) if signs else math.nan
    stats["gap_in_se"] = float(np.nanmean(gaps)) if gaps else math.nan
    return frames, stats


def _pm(m: float, s: float) -> str:
    if m is None or pd.isna(m):
        return ""
    return f"{m:+.4f} ± {s:.4f}" if not pd.isna(s) else f"{m:+.4f}"


def markdown(real: dict[str, Any], replay: dict[str, Any]) -> str:
    frames, stats = side_by_side(real, replay)
    lines = [
        f"Real: seeds {real.get('seeds')}, commit {real.get('commit')}; replay: seeds {replay.get('seeds')}, "
        f"commit {replay.get('commit')}; {real.get('trials')} trials x {real.get('epochs')} epochs, "
        f"space `{real.get('space')}`.",
        "",
    ]
    for setting, f in frames.items():
        rows = [
            [
                name,
                _pm(r["diff_vs_random_mean_real"], r["diff_vs_random_se_real"]),
                _pm(r["diff_vs_random_mean_replay"], r["diff_vs_random_se_replay"]),
                f"{r['normalized_score_mean_real']:.2f}" if not pd.isna(r["normalized_score_mean_real"]) else "",
                f"{r['normalized_score_mean_replay']:.2f}" if not pd.isna(r["normalized_score_mean_replay"]) else "",
                f"{r['mean_rank_real']:.2f}",
                f"{r['mean_rank_replay']:.2f}",
            ]
            for name, r in f.iterrows()
        ]
        head = ["searcher", "Δ vs random (real)", "Δ (replay)", "score (real)", "score (replay)", "rank (real)",
                "rank (replay)"]  # fmt: skip
        lines += [f"#### {setting}: Spearman {stats[f'spearman_{setting}']:.2f}", "", md_table(head, rows), ""]
    lines.append(
        f"Agreement: Spearman of mean ranks over all settings {stats.get('spearman_all', math.nan):.2f}; "
        f"same sign of Δ vs random {100 * stats['same_sign']:.0f} %; mean |Δ real - Δ replay| = "
        f"{stats['gap_in_se']:.2f} standard errors."
    )
    return "\n".join(lines) + "\n"


def same_trials(real_dir: Path, replay_dir: Path, searcher: str = "random") -> pd.DataFrame:
    """Per setting, seed and configuration that both backends trained to the end with
    ``searcher``: the final ``val_acc`` and ``test_acc`` of each (columns ``<metric>_real``,
    ``<metric>_replay``)."""
    from results.schema import CONFIG_PREFIX
    from results.store import Store
    from results.tables import read_epochs

    out = []
    for exp in sorted(p for p in real_dir.iterdir() if (p / "epochs").is_dir()):
        if not (replay_dir / exp.name / "epochs").is_dir():
            continue
        finals = []
        for d in (exp, replay_dir / exp.name):
            e = read_epochs(Store.from_uri(str(d)))
            e = e[e["searcher"] == searcher]
            if e.empty:  # this searcher has no trial here (yet): nothing to pair
                break
            last = e[e["epoch"] == e.groupby(["seed", "trial_id"])["epoch"].transform("max")]
            cfg = sorted(c for c in last.columns if c.startswith(CONFIG_PREFIX) and last[c].dtype.kind == "f")
            key = last[cfg].round(9).astype(str).agg("|".join, axis=1)
            finals.append(last.assign(key=key)[["seed", "key", "epoch", "val_acc", "test_acc"]])
        if len(finals) < 2:
            continue
        j = finals[0].merge(finals[1], on=["seed", "key", "epoch"], suffixes=("_real", "_replay"))
        out.append(j.assign(setting=exp.name))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def chance_agreement(finals: pd.DataFrame, group: int) -> list[float]:
    """Spearman between the searchers' mean ranks in disjoint groups of ``group`` consecutive
    seeds, paired (seeds 0..g-1 with g..2g-1, and so on); ``finals``: searcher, seed, best_val_acc."""
    from results.efficiency import mean_ranks

    seeds = sorted(finals["seed"].unique())
    groups = [seeds[i : i + group] for i in range(0, len(seeds) - group + 1, group)]
    return [
        spearman(mean_ranks(finals[finals["seed"].isin(a)]), mean_ranks(finals[finals["seed"].isin(b)]))
        for a, b in zip(groups[0::2], groups[1::2], strict=False)  # an odd last group is left out
    ]


def replay_finals(setting_dir: Path, budget: float, full_epochs: int) -> pd.DataFrame:
    """Per (searcher, seed) of one setting's results: the best ``val_acc`` at the full budget."""
    from results.efficiency import final_values, search_efficiency
    from results.store import Store
    from results.tables import read_epochs

    epochs = read_epochs(Store.from_uri(str(setting_dir)))
    eff = search_efficiency(epochs, full_epochs=full_epochs, x_max={"epochs": budget})
    return final_values(eff, budget)


def chance_markdown(real: dict[str, Any], replay: dict[str, Any], chance_dir: Path) -> str:
    """Per setting: the real-vs-replay Spearman beside the range two independent replays of as
    many seeds give (:func:`chance_agreement` over ``chance_dir``)."""
    _, stats = side_by_side(real, replay)
    group = len(real["seeds"])
    rows = []
    for setting in [s for s in real["settings"] if (chance_dir / s / "epochs").is_dir()]:
        finals = replay_finals(chance_dir / setting, float(real["trials"] * real["epochs"]), int(real["epochs"]))
        finals = finals[finals["searcher"].isin(list(real["settings"][setting]))]
        rho = np.array([r for r in chance_agreement(finals, group) if not math.isnan(r)])
        if not len(rho):
            continue
        obs = stats.get(f"spearman_{setting}", math.nan)
        rows.append(
            [setting, f"{obs:.2f}", str(len(rho)), f"{np.median(rho):.2f}", f"{rho.min():.2f} to {rho.max():.2f}",
             f"{100 * np.mean(rho <= obs):.0f} %"]
        )  # fmt: skip
    head = ["setting", "real vs replay", "replay pairs", "median", "range", "pairs at or below real vs replay"]
    return (
        f"Rank agreement by chance: Spearman between two independent replays of {group} seeds each "
        f"(disjoint seed groups of {chance_dir}):\n\n" + md_table(head, rows)
    )


def trial_markdown(pairs: pd.DataFrame) -> str:
    rows = []
    for setting, g in pairs.groupby("setting", sort=False):
        for m in ("val_acc", "test_acc"):
            a, b = g[f"{m}_real"], g[f"{m}_replay"]
            rows.append(
                [setting, m, str(len(g)), f"{np.corrcoef(a, b)[0, 1]:.2f}" if len(g) > 2 else "",
                 f"{np.sqrt(np.mean((a - b) ** 2)):.4f}", f"{a.std(ddof=1):.4f}"]
            )  # fmt: skip
    head = ["setting", "metric", "same trials", "correlation", "RMS real - replay", "SD of real"]
    return md_table(head, rows, "llrrrr") + "\n"


def _read(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the summary {path} ({exc}); make it with bench search --summary-json") from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> None:
        p = argparse.ArgumentParser(prog="python -m s2e_tune.bench fidelity", description=__doc__.split("\n\n")[0])
        p.add_argument("--real", required=True, help="bench search --summary-json of --backend real")
        p.add_argument("--replay", required=True, help="the same of --backend replay")
        p.add_argument("--real-dir", help="the real benchmark's --storage: compare the same trials")
        p.add_argument("--replay-dir", help="the replay benchmark's --storage")
        p.add_argument(
            "--chance-dir", help="a replay --storage with many seeds: the rank agreement two independent runs show"
        )
        a = p.parse_args(argv)
        real, replay = _read(a.real), _read(a.replay)
        print(markdown(real, replay), end="")
        if a.real_dir and a.replay_dir:
            pairs = same_trials(Path(a.real_dir), Path(a.replay_dir))
            print("\nThe same configurations (random search, same seeds), final epoch:\n")
            print(trial_markdown(pairs) if not pairs.empty else "none in common\n", end="")
        if a.chance_dir:
            print("\n" + chance_markdown(real, replay, Path(a.chance_dir)), end="")

    return run_cli(body)
