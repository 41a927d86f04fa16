"""Timing training epochs fairly: one epoch's wall and CPU seconds, interleaved blocks of runners,
and the ratio of two runners' block means (used by ``bench throughput`` and ``bench gpu``).

A helper of the benchmarks, not a benchmark: it imports torch only.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epoch(runner: Any, device: torch.device) -> tuple[float, float]:
    """Wall and process CPU seconds of one ``train_epoch()``."""
    _sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    runner.train_epoch()
    _sync(device)
    return time.perf_counter() - w0, time.process_time() - c0


def measure(runners: dict[str, Any], epochs: int, repeats: int, device: torch.device, log=print) -> dict:
    """Warm-up epoch, then ``repeats`` interleaved blocks of ``epochs`` timed epochs per runner.

    Returns ``{name: [[(wall, cpu), ...] per block]}``.
    """
    names = list(runners)
    for name in names:
        w, _ = time_epoch(runners[name], device)
        log(f"  warm-up {name:<10} {w:7.2f} s (not counted)")
    blocks: dict[str, list[list[tuple[float, float]]]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            block = [time_epoch(runners[name], device) for _ in range(epochs)]
            blocks[name].append(block)
            mean_w = statistics.fmean(w for w, _ in block)
            log(f"  repeat {r + 1}/{repeats} {name:<10} {mean_w:7.2f} s/epoch ({epochs} epochs)")
    return blocks


def block_means(blocks: list[list[tuple[float, float]]], which: int) -> list[float]:
    return [statistics.fmean(e[which] for e in block) for block in blocks]


def ratio_stats(num: list[float], den: list[float]) -> tuple[float, float, float]:
    ratios = [a / b for a, b in zip(num, den, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)
