"""``python -m s2e_tune.bench methods``: final test accuracy of training methods on noisy MNIST-1D.

Runs the trainer in-process (no Ray, so nothing but training is timed) for each
noise setting x method x seed, with Co-teaching's default schedule (tau = noise
rate, c = 1, T_k = 10 of 200 reference epochs), and prints a Markdown table of
the final test accuracy (mean +- std over seeds), the mean over the last 10 %
of epochs (the seed's "average over the last ten epochs") and the mean label
precision.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from s2e_tune.data import DataSpec, prepare
from s2e_tune.spaces import coteaching_default
from trainables.engine import Trainer

SETTINGS = {"sym-20": ("sym", 0.2), "sym-50": ("sym", 0.5), "pair-45": ("pair", 0.45)}


def git_sha() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run(
    settings: list[str], methods: list[str], seeds: list[int], epochs: int, model: str | None, data_dir: str | None
) -> list[dict]:
    rows = []
    for setting in settings:
        noise, rate = SETTINGS[setting]
        for seed in seeds:
            data = prepare(DataSpec(noise=noise, noise_rate=rate, seed=seed, data_dir=data_dir))
            for method in methods:
                t0 = time.perf_counter()
                cfg = {"method": method, "epochs": epochs, "seed": seed, "model": model, **coteaching_default(rate)}
                tr = Trainer(cfg, data)
                hist = [tr.train_epoch() for _ in range(epochs)]
                tail = max(1, epochs // 10)
                rows.append(
                    {
                        "setting": setting,
                        "method": method,
                        "seed": seed,
                        "final_test_acc": hist[-1]["test_acc"],
                        "last10_test_acc": float(np.mean([h["test_acc"] for h in hist[-tail:]])),
                        "best_test_acc": max(h["test_acc"] for h in hist),
                        "label_precision": float(np.mean([h["label_precision"] for h in hist])),
                        "seconds": time.perf_counter() - t0,
                    }
                )
                r = rows[-1]
                print(
                    f"  {setting} {method:<11} seed {seed}: final test_acc {r['final_test_acc']:.4f} "
                    f"({r['seconds']:.0f} s)",
                    flush=True,
                )
    return rows


def table(rows: list[dict], settings: list[str], methods: list[str]) -> str:
    out = ["| setting | method | final test acc | last-10% test acc | label precision |", "|---|---|---|---|---|"]
    for s in settings:
        for m in methods:
            sel = [r for r in rows if r["setting"] == s and r["method"] == m]
            f = np.array([r["final_test_acc"] for r in sel])
            last = np.array([r["last10_test_acc"] for r in sel])
            lp = np.array([r["label_precision"] for r in sel])
            out.append(
                f"| {s} | {m} | {f.mean():.4f} ± {f.std():.4f} | {last.mean():.4f} ± {last.std():.4f} "
                f"| {lp.mean():.3f} |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m s2e_tune.bench methods", description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", default="sym-50", help=f"comma list of {', '.join(SETTINGS)} [sym-50]")
    p.add_argument("--methods", default="standard,coteaching", help="comma list [standard,coteaching]")
    p.add_argument("--seeds", default="0,1,2", help="comma list [0,1,2]")
    p.add_argument("--epochs", type=int, default=40, help="epochs per run [40]")
    p.add_argument("--model", default=None, help="model override [cnn1d for MNIST-1D]")
    p.add_argument("--data-dir", default=None)
    a = p.parse_args(argv)
    settings = a.settings.split(",")
    methods = a.methods.split(",")
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        p.error(f"unknown setting {bad[0]!r}; use {', '.join(SETTINGS)}")
    seeds = [int(s) for s in a.seeds.split(",")]
    print(
        f"methods benchmark: {a.epochs} epochs, seeds {seeds}, commit {git_sha()}, "
        f"{platform.processor() or platform.machine()}, {platform.node()}",
        flush=True,
    )
    rows = run(settings, methods, seeds, a.epochs, a.model, a.data_dir)
    print()
    print(table(rows, settings, methods))
    return 0
