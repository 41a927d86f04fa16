"""``python -m s2e_tune.bench methods``: test accuracy of the training methods on noisy MNIST-1D.

Runs the trainer in-process (no Ray, so nothing but training is timed) for each
noise setting x method x seed and prints the seed's comparison table (its
"average test accuracy over the last ten epochs", here the mean over the last
10 % of epochs, mean ± std over seeds, the best of each row in bold), then a
detailed table: final test accuracy, last-10 % test accuracy, mean label
precision and seconds per run.

Every method trains through the same :class:`trainables.engine.Trainer` with
the same data, model, optimiser and epoch budget.  The methods with an R(t)
(coteaching, selfteach, coteaching_plus, jocor) all use Co-teaching's default
schedule (tau = noise rate, c = 1, T_k = 10 of 200 reference epochs), as the
seed's experiments give MentorNet, Co-teaching and Co-teaching+ the same R(t).
Each seed draws new noisy labels, a new validation split and new
initialisations; within a seed every method sees the same data.

By default every method runs under the seed's three settings (pair-45, sym-50,
sym-20) for seeds 0, 1, 2; ``--settings``, ``--methods`` and ``--seeds`` pick
subsets, ``--set KEY=VALUE`` overrides a training config key (e.g.
``jocor_lambda=0.5``), ``--out FILE`` appends one JSON line per finished run (a long
benchmark that dies keeps what it finished) and ``--table-only FILE...``
prints the tables from such files without training (e.g. to merge runs made in
parallel processes).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from noisylabels.data import DataSpec, prepare
from noisylabels.spaces import coteaching_default
from s2e_tune.bench.common import SETTINGS, short_commit
from trainables.engine import Trainer
from trainables.methods import METHODS

SEED_NAMES = {"pair-45": "Pair-45%", "sym-50": "Symmetry-50%", "sym-20": "Symmetry-20%"}
METHOD_NAMES = {  # column heads in the seed's wording where it has the method
    "standard": "Standard (Normal)",
    "fcorrection": "F-correction",
    "decoupling": "Decoupling",
    "selfteach": "Self-teach (MentorNet-style)",
    "coteaching": "Co-teaching",
    "coteaching_plus": "Co-teaching+",
    "jocor": "JoCoR",
}
DEFAULT_METHODS = ["standard", "fcorrection", "decoupling", "selfteach", "coteaching", "coteaching_plus", "jocor"]
assert sorted(DEFAULT_METHODS) == sorted(METHODS)


def run_one(
    data, setting: str, method: str, seed: int, epochs: int, model: str | None, rate: float,
    overrides: dict | None = None,
) -> dict:
    t0 = time.perf_counter()
    cfg = {"method": method, "epochs": epochs, "seed": seed, "model": model, **coteaching_default(rate)}
    cfg.update(overrides or {})
    tr = Trainer(cfg, data)
    hist = [tr.train_epoch() for _ in range(epochs)]
    tail = max(1, epochs // 10)
    return {
        "setting": setting,
        "method": method,
        "seed": seed,
        "epochs": epochs,
        "final_test_acc": hist[-1]["test_acc"],
        "last10_test_acc": float(np.mean([h["test_acc"] for h in hist[-tail:]])),
        "best_test_acc": max(h["test_acc"] for h in hist),
        "label_precision": float(np.nanmean([h["label_precision"] for h in hist])),
        "test_acc_curve": [h["test_acc"] for h in hist],
        "seconds": time.perf_counter() - t0,
    }


def run(
    settings: list[str],
    methods: list[str],
    seeds: list[int],
    epochs: int,
    model: str | None,
    data_dir: str | None,
    samples: int | None = None,
    out: str | None = None,
    overrides: dict | None = None,
) -> list[dict]:
    rows = []
    for setting in settings:
        noise, rate = SETTINGS[setting]
        for seed in seeds:
            size = {"mnist1d_samples": samples} if samples else {}
            data = prepare(DataSpec(noise=noise, noise_rate=rate, seed=seed, data_dir=data_dir, **size))
            for method in methods:
                r = run_one(data, setting, method, seed, epochs, model, rate, overrides)
                rows.append(r)
                if out:
                    with open(out, "a") as f:
                        f.write(json.dumps(r) + "\n")
                print(
                    f"  {setting} {method:<15} seed {seed}: final test_acc {r['final_test_acc']:.4f}, "
                    f"last-10% {r['last10_test_acc']:.4f}, label precision {r['label_precision']:.3f} "
                    f"({r['seconds']:.0f} s)",
                    flush=True,
                )
    return rows


def _select(rows: list[dict], setting: str, method: str, key: str) -> np.ndarray:
    return np.array([r[key] for r in rows if r["setting"] == setting and r["method"] == method], dtype=float)


def seed_table(rows: list[dict], settings: list[str], methods: list[str]) -> str:
    """The seed's layout: settings x methods, mean ± std (%) of the last-10 % test accuracy; best in bold."""
    out = [
        "| Flipping rate | " + " | ".join(METHOD_NAMES.get(m, m) for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for s in settings:
        stats = [_select(rows, s, m, "last10_test_acc") * 100 for m in methods]
        means = [a.mean() if a.size else np.nan for a in stats]
        best = np.nanmax(means) if np.isfinite(means).any() else np.nan
        cells = []
        for a, mu in zip(stats, means, strict=True):
            if not a.size:
                cells.append("–")
                continue
            cell = f"{mu:.2f}% ±{a.std():.2f}%"
            cells.append(f"**{cell}**" if mu == best else cell)
        out.append(f"| {SEED_NAMES.get(s, s)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def table(rows: list[dict], settings: list[str], methods: list[str]) -> str:
    out = [
        "| setting | method | final test acc | last-10% test acc | label precision | s/run |",
        "|---|---|---|---|---|---|",
    ]
    for s in settings:
        for m in methods:
            f = _select(rows, s, m, "final_test_acc")
            if not f.size:
                continue
            last = _select(rows, s, m, "last10_test_acc")
            lp = _select(rows, s, m, "label_precision")
            sec = _select(rows, s, m, "seconds")
            out.append(
                f"| {s} | {m} | {f.mean():.4f} ± {f.std():.4f} | {last.mean():.4f} ± {last.std():.4f} "
                f"| {lp.mean():.3f} | {sec.mean():.0f} |"
            )
    return "\n".join(out)


def _split(value: str, allowed: list[str], what: str, p: argparse.ArgumentParser) -> list[str]:
    items = list(allowed) if value == "all" else [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        p.error(f"unknown {what} {bad[0] if bad else value!r}; use all or a comma list of {', '.join(allowed)}")
    return items


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m s2e_tune.bench methods", description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", default="all", help=f"all or a comma list of {', '.join(SETTINGS)} [all]")
    p.add_argument("--methods", default="all", help=f"all or a comma list of {', '.join(DEFAULT_METHODS)} [all]")
    p.add_argument("--seeds", default="0,1,2", help="comma list [0,1,2]")
    p.add_argument("--epochs", type=int, default=40, help="epochs per run [40]")
    p.add_argument("--model", default=None, help="model override [cnn1d for MNIST-1D]")
    p.add_argument("--samples", type=int, default=None, help="MNIST-1D signals [the data module's default]")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads [1: fastest on a shared machine]")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training config key for every run, e.g. jocor_lambda=0.5 (repeatable)")
    p.add_argument("--out", default=None, help="append one JSON line per finished run to this file")
    p.add_argument("--table-only", nargs="+", default=None, metavar="FILE",
                   help="print the tables from --out files, train nothing")
    a = p.parse_args(argv)
    settings = _split(a.settings, list(SETTINGS), "setting", p)
    methods = _split(a.methods, DEFAULT_METHODS, "method", p)
    if a.table_only:
        rows = [json.loads(line) for f in a.table_only for line in Path(f).read_text().splitlines() if line.strip()]
        settings = [s for s in settings if any(r["setting"] == s for r in rows)]
        methods = [m for m in methods if any(r["method"] == m for r in rows)]
    else:
        seeds = [int(s) for s in a.seeds.split(",")]
        if a.epochs < 1:
            p.error("--epochs must be at least 1")
        torch.set_num_threads(max(1, a.threads))
        print(
            f"methods benchmark: {a.epochs} epochs, seeds {seeds}, commit {short_commit()}, "
            f"{platform.processor() or platform.machine()}, {platform.node()}, torch threads {torch.get_num_threads()}",
            flush=True,
        )
        overrides = {}
        for item in a.set:
            key, sep, value = item.partition("=")
            if not sep or not key:
                p.error(f"--set needs KEY=VALUE, got {item!r}")
            try:
                overrides[key] = json.loads(value)  # numbers, true/false; anything else stays a string
            except json.JSONDecodeError:
                overrides[key] = value
        if overrides:
            print(f"config overrides: {overrides}", flush=True)
        rows = run(settings, methods, seeds, a.epochs, a.model, a.data_dir, a.samples, a.out, overrides)
    print()
    print(seed_table(rows, settings, methods))
    print()
    print(table(rows, settings, methods))
    return 0
