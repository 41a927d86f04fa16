"""``python -m s2e_tune.bench throughput``: training epochs per second of the project's loop.

Three runners train on the same data (default MNIST-1D, sym-50 % noise), model,
device and R(t) (Co-teaching's default schedule, tau = 0.5) in one process:

* ``coteaching`` - :class:`trainables.engine.Trainer`, method ``coteaching``;
* ``standard``   - the same Trainer, method ``standard`` (one network);
* ``reference``  - :class:`s2e_tune.bench.reference_loop.ReferenceCoteaching`,
  Co-teaching written the way the original code trains (per-sample Dataset,
  DataLoader, CPU ``argsort``, per-batch ``.item()``/numpy statistics).

An epoch is one ``train_epoch()`` call (training plus the validation/test
evaluation every runner does each epoch).  Every runner first trains one
warm-up epoch that is not timed; then, ``--repeats`` times, each runner trains
a block of ``--epochs`` timed epochs, the runners interleaved in a rotating
order so that a change in machine load hits all of them alike.  Each epoch is
timed by wall clock (``perf_counter``, with ``torch.cuda.synchronize`` on
CUDA) and by this process's CPU time (``process_time``; on a shared machine
with ``--threads 1`` it barely moves with other jobs' load).  A ratio is taken
per repeat from the blocks' mean epoch times; the median over repeats is
reported, with its range.

Targets: Co-teaching epoch time <= 2.3 x standard training's (two networks
instead of one); the reference loop's epoch time >= 3 x the Trainer's on CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

import torch

from noisylabels.data import DataSpec, prepare
from noisylabels.spaces import coteaching_default
from s2e_tune.bench.common import loadavg, machine_line, short_commit
from s2e_tune.bench.epoch_timing import block_means, measure, ratio_stats
from s2e_tune.bench.reference_loop import ReferenceCoteaching
from trainables.engine import Trainer

RUNNERS = ("coteaching", "standard", "reference")
TARGET_COT_STD = 2.3  # coteaching / standard epoch time, at most
TARGET_REF_COT = 3.0  # reference / coteaching epoch time, at least (CPU)
NOISE_RATE = 0.5


def build_runners(data, total_epochs: int, model: str | None, device: str, seed: int = 0) -> dict[str, Any]:
    cfg = {
        "method": "coteaching",
        "epochs": total_epochs,
        "seed": seed,
        "model": model,
        "device": device,
        **coteaching_default(NOISE_RATE),
    }
    return {
        "coteaching": Trainer(cfg, data),
        "standard": Trainer({**cfg, "method": "standard"}, data),
        "reference": ReferenceCoteaching(cfg, data),
    }


def verdict_at_most(value: float, target: float) -> str:
    if value <= target:
        return f"target <= {target:g}x: met (by {target - value:.2f}x)"
    need = value / target
    return f"target <= {target:g}x: MISSED (by {value - target:.2f}x; co-teaching would need to be {need:.2f}x faster)"


def verdict_at_least(value: float, target: float) -> str:
    if value >= target:
        return f"target >= {target:g}x: met (by {value - target:.2f}x)"
    need = target / value
    return f"target >= {target:g}x: MISSED (by {target - value:.2f}x; co-teaching would need to be {need:.2f}x faster)"


def report(blocks: dict, device: torch.device) -> list[str]:
    lines = ["", "runner        epochs/s (wall)  s/epoch wall (median, min-max)  CPU s/epoch (median)"]
    for name, bl in blocks.items():
        walls = [e[0] for b in bl for e in b]
        cpus = [e[1] for b in bl for e in b]
        med = statistics.median(walls)
        lines.append(
            f"{name:<12}  {1.0 / med:14.3f}  {med:8.3f} ({min(walls):.3f}-{max(walls):.3f})"
            f"{'':>13}{statistics.median(cpus):8.3f}"
        )
    lines.append("")
    for which, label in ((0, "wall"), (1, "CPU")):
        if which == 1 and device.type == "cuda":
            continue  # process CPU time says little about GPU work
        cot, std, ref = (block_means(blocks[n], which) for n in RUNNERS)
        m, lo, hi = ratio_stats(cot, std)
        lines.append(
            f"ratio coteaching/standard epoch time ({label}): {m:.2f}x (median of {len(cot)} repeats, "
            f"range {lo:.2f}-{hi:.2f}) - {verdict_at_most(m, TARGET_COT_STD)}"
        )
        m, lo, hi = ratio_stats(ref, cot)
        if device.type == "cpu":
            verdict = verdict_at_least(m, TARGET_REF_COT)
        else:
            verdict = f"target >= {TARGET_REF_COT:g}x is set for CPU; on {device.type}: " + verdict_at_least(
                m, TARGET_REF_COT
            )
        lines.append(
            f"ratio reference/coteaching epoch time ({label}): {m:.2f}x (median of {len(ref)} repeats, "
            f"range {lo:.2f}-{hi:.2f}) - {verdict}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m s2e_tune.bench throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per runner per repeat [2]")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats; ratios are their median [5]")
    p.add_argument("--samples", type=int, default=DataSpec.mnist1d_samples, help="MNIST-1D signals [12500]")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="[cpu]")
    p.add_argument("--model", choices=("cnn1d", "mlp"), default=None, help="[cnn1d, the MNIST-1D default]")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads; 0 keeps torch's default [1: what a 1-CPU Tune trial gets]",
    )
    p.add_argument("--data-dir", default=None, help="data cache [$S2E_TUNE_DATA or ~/.cache/s2e-tune/data]")
    a = p.parse_args(argv)
    if a.epochs < 1 or a.repeats < 1:
        p.error("--epochs and --repeats must be at least 1")
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    threads_before = torch.get_num_threads()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        return _run(a)
    finally:
        torch.set_num_threads(threads_before)


def _run(a: argparse.Namespace) -> int:
    device = torch.device(a.device)
    data = prepare(DataSpec(data_dir=a.data_dir, mnist1d_samples=a.samples, noise_rate=NOISE_RATE))
    total = 1 + a.epochs * a.repeats
    print(
        f"throughput benchmark: MNIST-1D {a.samples} signals ({data.info['n_train']} train), sym-{NOISE_RATE:.0%} "
        f"noise, model {a.model or 'cnn1d'}, batch 128, 1 warm-up + {a.repeats} x {a.epochs} timed epochs "
        f"per runner (an epoch = training + val/test evaluation), commit {short_commit()}",
        flush=True,
    )
    print(machine_line(device), flush=True)
    print(f"load average at start: {loadavg(2, ' ', cpus=True)}", flush=True)
    runners = build_runners(data, total, a.model, a.device)
    blocks = measure(runners, a.epochs, a.repeats, device, log=lambda s: print(s, flush=True))
    for line in report(blocks, device):
        print(line)
    print(f"load average at end: {loadavg(2, ' ', cpus=True)}")
    return 0
