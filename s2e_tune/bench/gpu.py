"""``python -m s2e_tune.bench gpu``: the training loop on a GPU, in one call, without Ray.

Runs with the repository, PyTorch, numpy, pandas and pyarrow alone (no Ray, no network; MNIST-1D
from its cache directory or the ``mnist1d`` package).  For each workload:

* ``mnist1d-cnn1d``, ``mnist1d-mlp``: MNIST-1D (12,500 signals: 9,000 train), the 1-D CNN and the MLP;
* ``images32-cnn9``: the 9-layer CNN of the seed (Co-teaching's CIFAR network) on 32x32x3 images of
  CIFAR-10's shape (50,000 train / 10,000 test).  The pixels and labels are random: no image data
  set can be downloaded here, and an epoch's time depends on the shapes, not the pixels;

it reports

1. **epochs/s** of :class:`trainables.engine.Trainer` (Co-teaching and standard training) and of
   the reference loop (``s2e_tune.bench.reference_loop``, the original code's loop), timed as
   ``bench throughput`` does (interleaved blocks, ``torch.cuda.synchronize`` around each epoch,
   bf16 autocast on CUDA as in a trial); the Co-teaching/standard and reference/Co-teaching ratios;
2. **peak memory** of one Co-teaching trial (``torch.cuda.max_memory_allocated`` over an epoch, and
   the whole process's device footprint, CUDA context included);
3. **concurrent trials**: k trial processes (as Ray runs trials: one process each, one CPU thread)
   train at once on the one GPU; the aggregate epochs/s for each k, and how many such processes
   the free device memory holds.

``--device cpu`` runs the same code on the CPU (for a smoke test; memory columns are empty).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noisylabels.data import DataSpec, PreparedData, RawDataset, prepare
from noisylabels.spaces import coteaching_default
from s2e_tune.bench.common import machine_line, short_commit
from s2e_tune.bench.epoch_timing import block_means, measure, ratio_stats, time_epoch
from s2e_tune.bench.reference_loop import ReferenceCoteaching
from trainables.engine import Trainer

WORKLOADS = {  # name -> (data set, model)
    "mnist1d-cnn1d": ("mnist1d", "cnn1d"),
    "mnist1d-mlp": ("mnist1d", "mlp"),
    "images32-cnn9": ("images32", "cnn9"),
}
NOISE_RATE = 0.5
MIB = 2**20


def make_data(dataset: str, samples: int, images: int, data_dir: str | None, seed: int = 0) -> PreparedData:
    """MNIST-1D with ``samples`` signals, or ``images`` random 32x32x3 images (+ a fifth as test)."""
    if dataset == "mnist1d":
        return prepare(DataSpec(data_dir=data_dir, mnist1d_samples=samples, noise_rate=NOISE_RATE, seed=seed))
    rng = np.random.default_rng(seed)
    n_test = max(10, images // 5)
    raw = RawDataset(
        "images32",
        rng.integers(0, 256, (images, 3, 32, 32), dtype=np.uint8),
        rng.integers(0, 10, images).astype(np.int64),
        rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8),
        rng.integers(0, 10, n_test).astype(np.int64),
        10,
    )
    return prepare(DataSpec(dataset="cifar10", noise_rate=NOISE_RATE, seed=seed), raw=raw)


def trial_config(model: str, device: str, epochs: int, method: str = "coteaching") -> dict[str, Any]:
    return {"method": method, "model": model, "epochs": epochs, "seed": 0, "device": device,
            **coteaching_default(NOISE_RATE)}  # fmt: skip


def device_used_mib() -> float | None:
    """Memory in use on the current CUDA device by every process (``cudaMemGetInfo``)."""
    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    return (total - free) / MIB


# ------------------------------------------------------------------------------ one process
def timed_runners(data: PreparedData, model: str, device: torch.device, epochs: int, repeats: int, log) -> dict:
    """Epochs/s of coteaching, standard and the reference loop, and Co-teaching's peak memory."""
    total = 2 + epochs * repeats  # CUDA: a warm-up for the peak memory, then measure()'s own warm-up
    cfg = trial_config(model, device.type, total)
    runners: dict[str, Any] = {}
    peak: dict[str, float | None] = {}
    for name, make in (
        ("coteaching", lambda: Trainer(cfg, data)),
        ("standard", lambda: Trainer({**cfg, "method": "standard"}, data)),
        ("reference", lambda: ReferenceCoteaching(cfg, data)),
    ):
        if device.type == "cuda":
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        runners[name] = make()
        if device.type == "cuda":  # the warm-up epoch: its peak is the runner's own (others' memory subtracted)
            w, _ = time_epoch(runners[name], device)
            peak[name] = (torch.cuda.max_memory_allocated() - before) / MIB
            log(f"  warm-up {name:<10} {w:7.2f} s, peak {peak[name]:.0f} MiB")
        else:
            peak[name] = None
    blocks = measure(runners, epochs, repeats, device, log=log)
    out: dict[str, Any] = {"runners": {}}
    for name, bl in blocks.items():
        med = statistics.median(e[0] for b in bl for e in b)
        out["runners"][name] = {"epochs_per_s": 1.0 / med, "s_per_epoch": med, "peak_mib": peak[name]}
    cot, std, ref = (block_means(blocks[n], 0) for n in ("coteaching", "standard", "reference"))
    out["coteaching_over_standard"] = ratio_stats(cot, std)
    out["reference_over_coteaching"] = ratio_stats(ref, cot)
    return out


# ------------------------------------------------------------------------------ k processes
def _trial_process(args: dict[str, Any], barrier, queue) -> None:
    """One trial as Ray would run it: its own process and CUDA context, one CPU thread."""
    torch.set_num_threads(1)
    data = make_data(args["dataset"], args["samples"], args["images"], args["data_dir"])
    trainer = Trainer(trial_config(args["model"], args["device"], 1 + args["epochs"]), data)
    device = trainer.device
    time_epoch(trainer, device)  # warm-up: CUDA kernels chosen, caches filled
    barrier.wait()
    t0 = time.time()
    for _ in range(args["epochs"]):
        time_epoch(trainer, device)
    t1 = time.time()
    used = device_used_mib() if device.type == "cuda" else None
    reserved = torch.cuda.max_memory_reserved() / MIB if device.type == "cuda" else None
    queue.put({"t0": t0, "t1": t1, "device_used_mib": used, "reserved_mib": reserved})


def concurrent(args: dict[str, Any], k: int, timeout: float) -> dict[str, Any]:
    """``k`` trial processes started together; aggregate epochs/s from the barrier to the last end."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(k), ctx.Queue()
    procs = [ctx.Process(target=_trial_process, args=(args, barrier, queue)) for _ in range(k)]
    for p in procs:
        p.start()
    rows = [queue.get(timeout=timeout) for _ in range(k)]
    for p in procs:
        p.join(timeout=60)
    wall = max(r["t1"] for r in rows) - min(r["t0"] for r in rows)
    used = [r["device_used_mib"] for r in rows if r["device_used_mib"] is not None]
    return {
        "k": k,
        "wall_s": wall,
        "epochs_per_s": k * args["epochs"] / wall,
        "device_used_mib": max(used) if used else None,
        "reserved_mib": max((r["reserved_mib"] or 0.0) for r in rows) or None,
    }


def fit_estimate(conc: list[dict[str, Any]], baseline_mib: float | None) -> int | None:
    """Trial processes the free device memory holds: free memory at the start / one process's
    footprint (the device memory in use with one trial running, less what was in use before)."""
    one = next((c for c in conc if c["k"] == 1), None)
    if not torch.cuda.is_available() or one is None or one["device_used_mib"] is None or baseline_mib is None:
        return None
    free, _ = torch.cuda.mem_get_info()
    footprint = max(one["device_used_mib"] - baseline_mib, 1.0)
    return int(free / MIB // footprint)


# ------------------------------------------------------------------------------ report
def markdown(results: dict[str, Any]) -> str:
    lines = [f"- {results['machine']}", f"- commit {results['commit']}; {results['setup']}", ""]
    lines += ["| workload | runner | epochs/s | s/epoch | peak MiB (one epoch) |", "|---|---|---:|---:|---:|"]
    for w, r in results["workloads"].items():
        for name, v in r["runners"].items():
            peak = "" if v["peak_mib"] is None else f"{v['peak_mib']:.0f}"
            lines.append(f"| {w} | {name} | {v['epochs_per_s']:.2f} | {v['s_per_epoch']:.3f} | {peak} |")
    lines += ["", "| workload | co-teaching / standard | reference / co-teaching |", "|---|---:|---:|"]
    for w, r in results["workloads"].items():
        (a, a0, a1), (b, b0, b1) = r["coteaching_over_standard"], r["reference_over_coteaching"]
        lines.append(f"| {w} | {a:.2f}x ({a0:.2f}-{a1:.2f}) | {b:.2f}x ({b0:.2f}-{b1:.2f}) |")
    lines += ["", "| workload | k trials at once | aggregate epochs/s | per trial | vs k = 1 | device MiB in use |"]
    lines += ["|---|---:|---:|---:|---:|---:|"]
    for w, r in results["workloads"].items():
        base = next((c["epochs_per_s"] for c in r.get("concurrent", []) if c["k"] == 1), None)
        for c in r.get("concurrent", []):
            rel = "" if base is None else f"{c['epochs_per_s'] / base:.2f}x"
            used = "" if c["device_used_mib"] is None else f"{c['device_used_mib']:.0f}"
            lines.append(
                f"| {w} | {c['k']} | {c['epochs_per_s']:.2f} | {c['epochs_per_s'] / c['k']:.2f} | {rel} | {used} |"
            )
        if r.get("fit") is not None:
            lines.append(f"| {w} | fit by memory: {r['fit']} | | | | |")
    return "\n".join(lines) + "\n"


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        ks = []
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"--concurrency wants positive integers like 1,2,4,8, got {text!r}")
    return ks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m s2e_tune.bench gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="[cuda]")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma list of {', '.join(WORKLOADS)} [all]")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per block [1]")
    p.add_argument("--repeats", type=int, default=3, help="interleaved blocks per runner [3]")
    p.add_argument("--concurrency", type=parse_ks, default=[1, 2, 4, 8], help="trial processes at once [1,2,4,8]")
    p.add_argument("--concurrent-epochs", type=int, default=2, help="timed epochs per trial process [2]")
    p.add_argument("--samples", type=int, default=DataSpec.mnist1d_samples, help="MNIST-1D signals [12500]")
    p.add_argument("--images", type=int, default=50_000, help="32x32 training images [50000]")
    p.add_argument("--data-dir", default=None, help="MNIST-1D cache [$S2E_TUNE_DATA or ~/.cache/s2e-tune/data]")
    p.add_argument("--out", default=None, help="write gpu.md and gpu.json to this directory")
    a = p.parse_args(argv)
    names = [w.strip() for w in a.workloads.split(",") if w.strip()]
    bad = [w for w in names if w not in WORKLOADS]
    if bad or not names:
        print(f"error: unknown workload(s) {', '.join(bad) or '(none)'}; use {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    if min(a.epochs, a.repeats, a.concurrent_epochs, a.samples // 200, a.images // 10) < 1:
        print("error: --epochs, --repeats, --concurrent-epochs must be >= 1, --samples >= 200, --images >= 10",
              file=sys.stderr)  # fmt: skip
        return 2
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA GPU; use --device cpu for a smoke test", file=sys.stderr)
        return 2
    return run(a, names)


def run(a: argparse.Namespace, names: list[str]) -> int:
    device = torch.device(a.device)
    log = lambda s: print(s, flush=True)  # noqa: E731
    results: dict[str, Any] = {
        "machine": machine_line(device),
        "commit": short_commit(),
        "setup": (f"batch 128, sym-{NOISE_RATE:.0%} noise, Co-teaching default R(t); {a.repeats} blocks x {a.epochs} "
                  f"epoch(s) per runner after a warm-up; concurrency {a.concurrency} x {a.concurrent_epochs} epochs"),
        "workloads": {},
    }  # fmt: skip
    log(f"bench gpu: {results['machine']}; commit {results['commit']}")
    for w in names:
        dataset, model = WORKLOADS[w]
        log(f"== {w} ==")
        data = make_data(dataset, a.samples, a.images, a.data_dir)
        r = timed_runners(data, model, device, a.epochs, a.repeats, log)
        del data
        if device.type == "cuda":
            torch.cuda.empty_cache()
        baseline = device_used_mib()
        args = {"dataset": dataset, "model": model, "device": a.device, "epochs": a.concurrent_epochs,
                "samples": a.samples, "images": a.images, "data_dir": a.data_dir}  # fmt: skip
        r["concurrent"] = []
        for k in a.concurrency:
            c = concurrent(args, k, timeout=600.0)
            r["concurrent"].append(c)
            log(f"  {k} trial process(es) at once: {c['epochs_per_s']:.2f} epochs/s together")
        r["fit"] = fit_estimate(r["concurrent"], baseline)
        results["workloads"][w] = r
        if a.out:  # after every workload, so a run stopped early keeps what it measured
            out = Path(a.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "gpu.json").write_text(json.dumps(results, indent=1))
            (out / "gpu.md").write_text(markdown(results))
    print()
    print(markdown(results))
    return 0
