"""What the benchmarks share: the noise settings, Markdown cells and tables, run metadata.

A benchmark imports this module (and the project's packages), never another benchmark.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from results.manifest import git_commit
from s2e_tune.config import ExperimentConfig


# ------------------------------------------------------------------------------ worker processes
def one_thread() -> None:
    """Pin this process to one thread: torch's intra-op pool and every BLAS/OpenMP pool numpy,
    scipy and torch loaded. A benchmark worker pool starts one process per core; without this
    each process's OpenBLAS spins on every core, and a GP-based searcher's replay (BO, GP-BO)
    runs about 3x slower on 2 cores (BENCHMARKS.md, "The replay")."""
    import threadpoolctl

    torch.set_num_threads(1)
    threadpoolctl.threadpool_limits(1)


# ------------------------------------------------------------------------------ noise settings
SETTINGS = {  # name -> (noise, rate)
    "pair-45": ("pair", 0.45),
    "sym-50": ("sym", 0.5),
    "sym-20": ("sym", 0.2),
    "pair-45-clean": ("pair", 0.45),
}
# settings searched on clean validation labels (the paper's setting); the rest on noisy ones
CLEAN_VALIDATION = {"pair-45-clean"}
ALL_SETTINGS = ("sym-20", "sym-50", "pair-45")  # the order the search benchmarks report them in
SETTING_TITLES = {
    "sym-20": "symmetric 20 %",
    "sym-50": "symmetric 50 %",
    "pair-45": "pair 45 %",
    "pair-45-clean": "pair 45 %, clean validation labels",
}


def val_labels(setting: str) -> str:
    """The validation labels a setting searches on: ``clean`` or ``noisy``."""
    return "clean" if setting in CLEAN_VALIDATION else "noisy"


def recorded_as(setting: str) -> tuple[str, str]:
    """The training setting a recording holds a setting under, and its objective (noisy or
    clean validation labels): the clean-validation variant trains exactly as its noisy twin."""
    base = setting.removesuffix("-clean")
    return base, val_labels(setting)


def setting_config(setting: str, **fields: Any) -> ExperimentConfig:
    """The run command's validated configuration of one noise setting on MNIST-1D: experiment
    ``<storage>/<setting>``; ``fields``: any other :class:`~s2e_tune.config.ExperimentConfig` key."""
    noise, rate = SETTINGS[setting]
    fields.setdefault("val_labels", val_labels(setting))
    cfg = ExperimentConfig(dataset="mnist1d", noise=noise, noise_rate=rate, name=setting, **fields)
    cfg.validate()
    return cfg


# ------------------------------------------------------------------------------ Markdown
def fmt_fraction(f: float | None) -> str:
    """A budget fraction as a percentage; ``–`` when the target was not reached within the budget."""
    if f is None or pd.isna(f) or f > 1 + 1e-9:
        return "–"
    return f"{100 * f:.0f} %"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A GitHub Markdown table with padded columns (readable as plain text too); ``align``: one
    ``l`` or ``r`` per column, default the first left and the rest right."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    align = align or "l" + "r" * (len(header) - 1)
    out = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    out.append(
        "|"
        + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align, strict=True))
        + "|"
    )
    for r in rows:
        cells = [str(c).rjust(w) if a == "r" else str(c).ljust(w) for c, w, a in zip(r, widths, align, strict=True)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------------------ metadata
def short_commit() -> str:
    """The short commit of the source tree (``results.manifest.git_commit``), ``-dirty`` when
    tracked files have changes; ``unknown`` outside a git checkout."""
    full = git_commit()
    if not full:
        return "unknown"
    sha, _, dirty = full.partition("-")
    return sha[:7] + (f"-{dirty}" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kb = int(next(ln for ln in meminfo if ln.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError, IndexError):
        return ""
    return f", {kb / 2**20:.0f} GiB RAM"


def machine_line(device: torch.device | None = None) -> str:
    """Where a benchmark ran, in one line.

    Without ``device`` (what ``bench search`` records): host, CPUs and their model, RAM, OS.
    With the torch ``device`` an in-process benchmark trains on: ``machine: `` platform, CPUs,
    the Python and torch versions, torch's intra-op threads and the device (its name on CUDA).
    """
    if device is None:
        return (
            f"{platform.node()}: {os.cpu_count()} CPUs ({_cpu_model()}){_memory()}, "
            f"{platform.system()} {platform.release()}"
        )
    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    return (
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"python {platform.python_version()}, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
        f"device {dev}"
    )


def loadavg(digits: int = 1, sep: str = " / ", cpus: bool = False) -> str:
    """The 1, 5 and 15-minute load averages, ``digits`` decimals joined by ``sep`` (with ``cpus``:
    followed by ``(1/5/15 min, N CPUs)``); ``n/a`` where the system has none."""
    try:
        values = os.getloadavg()
    except OSError:
        return "n/a"
    text = sep.join(f"{x:.{digits}f}" for x in values)
    return text + (f" (1/5/15 min, {os.cpu_count()} CPUs)" if cpus else "")


def versions() -> str:
    """``Python 3.x, torch x, ray x`` (the packages that are installed)."""
    out = [f"Python {platform.python_version()}"]
    for pkg in ("torch", "ray"):
        try:
            out.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command_line(benchmark: str, argv: Sequence[str]) -> str:
    """The command that ran ``benchmark`` with ``argv``, quoted for a shell."""
    return f"python -m s2e_tune.bench {benchmark}" + ("" if not argv else " " + shlex.join(argv))


def write_json(path: Path, obj: Any, indent: int = 1) -> None:
    """Write ``obj`` as JSON through a temporary file and a rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=indent, default=str) + "\n")
    os.replace(tmp, path)


class WallClock:
    """Adds this invocation's elapsed time to ``target["wall_s"]`` (``target``: ``meta`` itself,
    or a record inside it such as a rerun's) and writes ``meta`` to the JSON file ``path`` every
    ``every`` seconds and on :meth:`save`, so a killed run loses at most ``every`` seconds of it."""

    def __init__(
        self, path: Path, meta: dict[str, Any], target: dict[str, Any] | None = None, every: float = 30.0
    ) -> None:
        self.path, self.meta, self.every = Path(path), meta, every
        self.target = meta if target is None else target
        self.base = float(self.target.get("wall_s") or 0.0)
        self.t0 = time.perf_counter()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        while not self.done.wait(self.every):
            self.save()

    def save(self, **changes: Any) -> None:
        with self.lock:
            self.meta.update(changes)
            self.target["wall_s"] = self.base + time.perf_counter() - self.t0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, self.meta)

    def __enter__(self) -> WallClock:
        self.save()
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        self.thread.join()
        self.save()
