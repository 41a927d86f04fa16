"""``python -m s2e_tune.bench overhead``: what running trials through Ray Tune costs.

The same ``--trials`` fixed-length Co-teaching trials (``--epochs`` epochs each,
default MNIST-1D, R(t) = Co-teaching's schedule with tau drawn uniformly from
[0.2, 0.6] and a random seed per trial) run twice:

1. **Tune**: ``NoisyLabelTrainable`` through ``tune.with_parameters``, resources
   ``{"cpu": 1}`` per trial, FIFO scheduler, ``num_samples = --trials``,
   ``max_concurrent_trials = --concurrency`` on a local Ray instance with
   ``--concurrency`` CPUs, with the run command's settings (``reuse_actors=True``:
   one worker process per concurrent slot, reset between trials; ``--fresh-actors``
   starts a process per trial instead; a checkpoint every epoch keeping one;
   ``--checkpoint-frequency 0`` turns that off).  Timed: the wall time of ``tuner.fit()`` (``ray.init`` is timed
   separately and not counted).
2. **In-process**: the configurations Tune sampled, run back to back with
   :class:`trainables.engine.Trainer` in this process, after ``ray.shutdown()``.
   Timed: each trial from building its Trainer to the end of its last epoch.

Fairness: Ray starts each 1-CPU trial with ``OMP_NUM_THREADS=1`` (the benchmark
checks the thread count a 1-CPU Ray worker actually gets and prints it), so the
in-process trials run with ``torch.set_num_threads(1)`` too; otherwise on a
machine with as many cores as the concurrency the in-process run would use all
of them for intra-op threads while each Tune trial uses one.  The ideal Tune
wall time is then ``sum(in-process trial times) / concurrency``: perfect packing,
no start-up, scheduling, result-logging or checkpoint cost, and no slowdown
from trials sharing the machine.

Reported: ``ratio = Tune wall / (summed in-process time / concurrency)``,
target <= 1.15 for trials of >= 10 s; with ``--repeats R`` the two phases
alternate R times and the median ratio is judged.  To tell Ray's cost from
other jobs' load on a shared machine it also reports (Linux ``/proc``): the
Tune trials' own training time (``time_total_s``, i.e. "trials ran slower inside
Ray" versus "time between and around trials"), the CPU seconds of each trial's
process and the share of a core it got while training, and the CPU seconds the
Tune driver and Ray's own processes (GCS, raylet, agents) used during the fit,
which on a machine with as many cores as trials comes straight out of the
trials' share.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import ray
import torch
from ray import tune
from ray.tune.schedulers import FIFOScheduler

from noisylabels.data import DataSpec, prepare
from noisylabels.spaces import coteaching_default
from s2e_tune.bench.common import loadavg, machine_line, short_commit
from s2e_tune.bench.procfs import descendants, proc_cpu_s
from trainables.engine import Trainer
from trainables.trainable import NoisyLabelTrainable

TARGET = 1.15
MIN_TRIAL_S = 10.0
NOISE_RATE = 0.5


def param_space(epochs: int, model: str | None) -> dict[str, Any]:
    return {
        "method": "coteaching",
        "epochs": epochs,
        "model": model,
        "device": "cpu",
        **coteaching_default(NOISE_RATE),
        "tau": tune.uniform(0.2, 0.6),
        "seed": tune.randint(0, 10_000),
    }


def ray_worker_threads() -> tuple[int, str]:
    """torch's intra-op thread count and OMP_NUM_THREADS inside a 1-CPU Ray task."""

    @ray.remote(num_cpus=1)
    def probe() -> tuple[int, str]:
        import torch as t  # in the Ray worker's process, whose threads are asked for

        return t.get_num_threads(), os.environ.get("OMP_NUM_THREADS", "unset")

    return ray.get(probe.remote())


class CpuProbe(tune.Callback):
    """Reads the CPU time of each trial's process (``result["pid"]``) at every result.

    With ``reuse_actors`` one process runs several trials one after another, so a trial's
    CPU time counts from its process's CPU time at the previous trial's last result (0 for
    a fresh process): start-up or reset, then its own epochs."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[float, float]] = {}
        self.last: dict[str, tuple[float, float]] = {}
        self.pids: set[int] = set()
        self.pid_cpu: dict[int, float] = {}  # each process's CPU time at its latest result
        self.base: dict[str, float] = {}  # each trial's process CPU time before the trial

    def on_trial_result(self, iteration, trials, trial, result, **info):
        pid = result.get("pid")
        cpu = proc_cpu_s(pid) if pid else None
        if cpu is None:
            return
        self.pids.add(pid)
        base = self.base.setdefault(trial.trial_id, self.pid_cpu.get(pid, 0.0))
        self.pid_cpu[pid] = cpu
        rec = (cpu - base, float(result["time_total_s"]))
        self.first.setdefault(trial.trial_id, rec)
        self.last[trial.trial_id] = rec


@dataclass
class TuneRun:
    wall_s: float  # tuner.fit()
    configs: list[dict]
    train_s: list[float]  # each trial's time_total_s (its steps, as Tune counts them)
    trial_cpu_s: list[float]  # each trial process's CPU seconds at its last result (nan if unknown)
    core_share: list[float]  # CPU s / wall s of each trial process between its first and last result
    first_cpu_s: list[float]  # each trial process's CPU seconds at its first result (start-up + epoch 1)
    epoch_cpu_s: list[float]  # its CPU seconds per epoch after the first
    ray_cpu_s: float  # CPU of the driver (Tune's controller) and of Ray's other processes during fit


def run_tune(
    data,
    trials: int,
    epochs: int,
    concurrency: int,
    model: str | None,
    ckpt_freq: int,
    storage: str,
    reuse_actors: bool = True,
):
    probe = CpuProbe()
    trainable = tune.with_resources(tune.with_parameters(NoisyLabelTrainable, data=data), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space=param_space(epochs, model),
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            scheduler=FIFOScheduler(),
            num_samples=trials,
            max_concurrent_trials=concurrency,
            reuse_actors=reuse_actors,
        ),
        run_config=tune.RunConfig(
            name="overhead",
            storage_path=storage,
            verbose=0,
            callbacks=[probe],
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=ckpt_freq, num_to_keep=1 if ckpt_freq else None
            ),
        ),
    )
    me = os.getpid()
    before = {pid: proc_cpu_s(pid) or 0.0 for pid in descendants(me)}
    c0, t0 = time.process_time(), time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - t0
    ray_cpu = time.process_time() - c0
    for pid in descendants(me):
        if pid not in probe.pids:
            ray_cpu += (proc_cpu_s(pid) or 0.0) - before.get(pid, 0.0)
    if grid.errors:
        raise RuntimeError(f"{len(grid.errors)} Tune trial(s) failed: {grid.errors[0]}")
    nan = float("nan")
    configs, train_s, cpu_s, share, first_cpu, epoch_cpu = [], [], [], [], [], []
    for res in grid:
        configs.append(dict(res.config))
        train_s.append(float(res.metrics["time_total_s"]))
        tid = res.metrics.get("trial_id")
        first, last = probe.first.get(tid), probe.last.get(tid)
        cpu_s.append(last[0] if last else nan)
        dt = (last[1] - first[1]) if first and last else 0.0
        share.append((last[0] - first[0]) / dt if dt > 0 else nan)
        first_cpu.append(first[0] if first else nan)
        n_ep = int(res.metrics["epoch"])
        epoch_cpu.append((last[0] - first[0]) / (n_ep - 1) if first and last and n_ep > 1 else nan)
    return TuneRun(
        wall_s=wall,
        configs=configs,
        train_s=train_s,
        trial_cpu_s=cpu_s,
        core_share=share,
        first_cpu_s=first_cpu,
        epoch_cpu_s=epoch_cpu,
        ray_cpu_s=ray_cpu,
    )


def run_in_process(data, configs: list[dict], log=print, first_cpu: list[float] | None = None):
    """Each configuration trained back to back here; returns wall and CPU seconds per trial.

    ``first_cpu``, when given, receives each trial's CPU seconds up to the end of its first epoch.
    """
    walls, cpus = [], []
    for i, cfg in enumerate(configs):
        t0, c0 = time.perf_counter(), time.process_time()
        tr = Trainer(cfg, data)
        for _ in range(tr.epochs):
            tr.train_epoch()
            if tr.epoch == 1 and first_cpu is not None:
                first_cpu.append(time.process_time() - c0)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        log(f"  in-process trial {i + 1}/{len(configs)}: {walls[-1]:.1f} s ({cpus[-1]:.1f} CPU-s)")
    return walls, cpus


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m s2e_tune.bench overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=4, help="trials, each run through Tune and in-process [4]")
    p.add_argument("--epochs", type=int, default=20, help="epochs per trial (fixed length) [20]")
    p.add_argument("--concurrency", type=int, default=2, help="concurrent Tune trials = Ray CPUs [2]")
    p.add_argument("--repeats", type=int, default=1, help="alternations Tune / in-process; median ratio [1]")
    p.add_argument("--samples", type=int, default=DataSpec.mnist1d_samples, help="MNIST-1D signals [12500]")
    p.add_argument("--model", choices=("cnn1d", "mlp"), default=None, help="[cnn1d, the MNIST-1D default]")
    p.add_argument(
        "--checkpoint-frequency",
        type=int,
        default=1,
        help="Tune checkpoint every N epochs, 0 = none [1, as the run command]",
    )
    p.add_argument(
        "--fresh-actors",
        action="store_true",
        help="a new Ray worker process per trial (reuse_actors=False); default: reuse, as the run command",
    )
    p.add_argument("--data-dir", default=None, help="data cache [$S2E_TUNE_DATA or ~/.cache/s2e-tune/data]")
    a = p.parse_args(argv)
    if min(a.trials, a.epochs, a.concurrency, a.repeats) < 1 or a.checkpoint_frequency < 0:
        p.error("--trials, --epochs, --concurrency and --repeats must be at least 1, --checkpoint-frequency >= 0")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(a)
    finally:
        torch.set_num_threads(threads_before)


def _fmean(xs: list[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return statistics.fmean(xs) if xs else float("nan")


def _fmt_share(xs: list[float]) -> str:
    xs = [x for x in xs if math.isfinite(x)]
    return f"{100 * statistics.fmean(xs):.0f}% of a core" if xs else "n/a"


def _run(a: argparse.Namespace) -> int:
    data = prepare(DataSpec(data_dir=a.data_dir, mnist1d_samples=a.samples, noise_rate=NOISE_RATE))
    print(
        f"overhead benchmark: {a.trials} Co-teaching trials x {a.epochs} epochs, MNIST-1D {a.samples} signals "
        f"({data.info['n_train']} train), concurrency {a.concurrency}, 1 CPU per trial, FIFO, "
        f"checkpoint every {a.checkpoint_frequency or 'never'} epoch(s), "
        f"{'a new worker per trial' if a.fresh_actors else 'actors reused'}, {a.repeats} repeat(s); "
        f"commit {short_commit()}",
        flush=True,
    )
    print(machine_line(torch.device("cpu")) + f"; ray {ray.__version__}", flush=True)
    if (os.cpu_count() or 1) < a.concurrency:
        print(f"note: concurrency {a.concurrency} exceeds this machine's {os.cpu_count()} CPUs", flush=True)

    ratios, trial_means, adjusted_ratios = [], [], []
    for rep in range(a.repeats):
        tag = f"[{rep + 1}/{a.repeats}] " if a.repeats > 1 else ""
        print(f"{tag}load average before Tune: {loadavg(2, ' ', cpus=True)}", flush=True)
        own_ray = not ray.is_initialized()
        t0 = time.perf_counter()
        if own_ray:
            ray.init(
                address="local",
                num_cpus=a.concurrency,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
        init_s = time.perf_counter() - t0
        try:
            threads, omp = ray_worker_threads()
            print(
                f"{tag}ray.init: {init_s:.1f} s (not counted); a 1-CPU Ray worker runs torch with {threads} "
                f"thread(s), OMP_NUM_THREADS={omp}",
                flush=True,
            )
            with tempfile.TemporaryDirectory(prefix="s2e-overhead-") as storage:
                reuse = not a.fresh_actors
                tr = run_tune(data, a.trials, a.epochs, a.concurrency, a.model, a.checkpoint_frequency, storage, reuse)
        finally:
            if own_ray:
                ray.shutdown()
        print(f"{tag}Tune: {len(tr.configs)} trials in {tr.wall_s:.1f} s wall (tuner.fit)", flush=True)
        print(f"{tag}load average after Tune: {loadavg(2, ' ', cpus=True)}", flush=True)
        first_cpu: list[float] = []
        walls, cpus = run_in_process(
            data, tr.configs, log=lambda s, tag=tag: print(tag + s, flush=True), first_cpu=first_cpu
        )
        print(f"{tag}load average after in-process: {loadavg(2, ' ', cpus=True)}", flush=True)

        ideal = sum(walls) / a.concurrency
        ratio = tr.wall_s / ideal
        ratios.append(ratio)
        trial_means.append(statistics.fmean(walls))
        cpu_known = [c for c in tr.trial_cpu_s if math.isfinite(c)]
        print()
        print(
            f"{tag}in-process: {len(walls)} trials, {sum(walls):.1f} s summed, {statistics.fmean(walls):.1f} s per "
            f"trial (min {min(walls):.1f}, max {max(walls):.1f}), {sum(cpus):.1f} CPU-s, ran at "
            f"{100 * sum(cpus) / sum(walls):.0f}% of a core, torch threads 1"
        )
        print(f"{tag}ideal Tune wall = summed in-process / concurrency = {sum(walls):.1f} / {a.concurrency} "
              f"= {ideal:.1f} s")
        print(
            f"{tag}Tune trials' own training time (time_total_s): {sum(tr.train_s):.1f} s summed, "
            f"{statistics.fmean(tr.train_s):.1f} s per trial = {sum(tr.train_s) / sum(walls):.2f}x in-process; "
            f"wall outside trials' training: {tr.wall_s - sum(tr.train_s) / a.concurrency:.1f} s"
        )
        if cpu_known:
            print(
                f"{tag}Tune trial processes: {sum(cpu_known):.1f} CPU-s for {len(cpu_known)} trials "
                f"({statistics.fmean(cpu_known):.1f} per trial, start-up included) and ran at "
                f"{_fmt_share(tr.core_share)} while training; the Tune driver and Ray's own processes used "
                f"{tr.ray_cpu_s:.1f} CPU-s during the fit ({100 * tr.ray_cpu_s / tr.wall_s:.0f}% of a core)"
            )
            epochs_left = max(a.epochs - 1, 1)
            in_epoch = [(c - f) / epochs_left for c, f in zip(cpus, first_cpu, strict=True)]
            print(
                f"{tag}CPU-s per trial, Tune vs in-process: start-up + epoch 1 "
                f"{_fmean(tr.first_cpu_s):.2f} vs {statistics.fmean(first_cpu):.2f}; each later epoch "
                f"{_fmean(tr.epoch_cpu_s):.3f} vs {statistics.fmean(in_epoch):.3f}"
            )
            work = (sum(cpu_known) + tr.ray_cpu_s) / sum(cpus[: len(cpu_known)])
            print(
                f"{tag}CPU-work ratio (Tune trial processes + Ray) / in-process: {work:.2f} - the wall ratio a "
                f"saturated but otherwise idle machine would show, before gaps between trials"
            )
            share_tune = [x for x in tr.core_share if math.isfinite(x)]
            share_in = sum(cpus) / sum(walls)
            if share_tune:
                outside = tr.wall_s - sum(tr.train_s) / a.concurrency
                adj_tune = outside + sum(t * c for t, c in zip(tr.train_s, tr.core_share, strict=True)
                                         if math.isfinite(c)) / a.concurrency
                adjusted = adj_tune / (sum(cpus) / a.concurrency)
                adjusted_ratios.append(adjusted)
                print(
                    f"{tag}load-adjusted ratio (training rescaled to a full core in both phases): {adjusted:.2f}"
                )
                gap = abs(statistics.fmean(share_tune) - share_in)
                if gap > 0.15:
                    print(
                        f"{tag}warning: the two phases got different shares of a core (Tune trials "
                        f"{100 * statistics.fmean(share_tune):.0f}%, in-process {100 * share_in:.0f}%): other jobs "
                        f"loaded the machine unevenly, so the wall ratio says more about them than about Ray; "
                        f"see the load-adjusted ratio, or rerun on an idle machine / with --repeats",
                        flush=True,
                    )
        print(f"{tag}ratio Tune wall / (summed in-process / concurrency): {ratio:.2f}", flush=True)
        print()

    ratio = statistics.median(ratios)
    mean_trial = statistics.fmean(trial_means)
    if mean_trial >= MIN_TRIAL_S:
        verdict = f"met (by {TARGET - ratio:.2f})" if ratio <= TARGET else f"MISSED (by {ratio - TARGET:.2f})"
        verdict = f"target <= {TARGET:g} for trials >= {MIN_TRIAL_S:g} s: {verdict}"
    else:
        verdict = (
            f"target <= {TARGET:g} applies to trials >= {MIN_TRIAL_S:g} s; these took {mean_trial:.1f} s, "
            f"so it is not judged"
        )
    spread = f" (median of {len(ratios)}, range {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    print(f"ratio Tune wall / (summed in-process / concurrency): {ratio:.2f}{spread} - {verdict}")
    if adjusted_ratios:
        adj = statistics.median(adjusted_ratios)
        if mean_trial >= MIN_TRIAL_S:
            note = f"{'within' if adj <= TARGET else 'above'} the {TARGET:g} target"
        else:
            note = "not judged (short trials)"
        print(f"load-adjusted ratio: {adj:.2f} - {note}")
    return 0
