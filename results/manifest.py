"""``manifest.json`` (``results.layout.MANIFEST``): what produced an experiment (config, versions,
commit, seeds, host, device)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from results import layout
from results.store import Store

PACKAGES = (
    "s2e-tune",
    "ray",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "wandb",
    "mnist1d",
    "optuna",
    "hyperopt",
    "bayesian-optimization",
    "hpbandster",
    "ConfigSpace",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, with ``-dirty`` if it has changes."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def host_info() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }


def write_manifest(store: Store, config: dict[str, Any], device: dict[str, Any], **extra: Any) -> dict[str, Any]:
    manifest = {
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "seeds": config.get("seeds"),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "host": host_info(),
        "device": device,
        **extra,
    }
    path = store.path(layout.MANIFEST)
    if store.exists(path):  # a resumed run keeps the original, records the resume and its config
        old = json.loads(store.read_bytes(path))
        old.setdefault("resumed_at", []).append(manifest["created_at"])
        old["config"] = config  # the same identity (s2e_tune.identity); searchers and seeds run so far
        old["seeds"] = config.get("seeds")
        manifest = old
    store.write_bytes(path, json.dumps(manifest, indent=2, default=str).encode())
    return manifest


def read_manifest(store: Store) -> dict[str, Any] | None:
    """The experiment's manifest, or ``None`` when it is missing or unreadable."""
    path = store.path(layout.MANIFEST)
    if not store.exists(path):
        return None
    try:
        return json.loads(store.read_bytes(path))
    except (OSError, ValueError):
        return None
