"""Checks and set-up before any search runs: storage writable, cluster reachable, GPUs present,
Ray started, S2E's K resolved from the cluster, the devices recorded.  Every problem a user can
cause stops here with one line (:class:`noisylabels.errors.UserError`)."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch

from noisylabels.errors import UserError
from results.manifest import read_manifest
from results.store import Store
from s2e_tune.config import ExperimentConfig


def check_storage(cfg: ExperimentConfig) -> None:
    """Write and delete a probe file under ``--storage`` (a directory or s3://...) before anything runs."""
    try:
        if "://" not in cfg.storage:
            Path(cfg.storage).resolve().mkdir(parents=True, exist_ok=True)
        store = Store.from_uri(cfg.storage)
        probe = store.path(f".write-test-{os.getpid()}")
        store.write_bytes(probe, b"ok")
        store.fs.delete_file(probe)
    except (OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"storage {cfg.storage} is not writable ({reason}); pass --storage DIR or s3://bucket/prefix you can write"
        ) from None


def check_address(address: str) -> None:
    """Fail fast on a cluster address nothing listens at (``ray.init`` would retry for minutes)."""
    if address == "auto":
        if os.environ.get("RAY_ADDRESS") or Path(tempfile.gettempdir(), "ray", "ray_current_cluster").exists():
            return
        raise UserError("--address auto found no running Ray cluster on this machine; start one with `ray start "
                        "--head` or pass --address HOST:PORT")
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address} is not HOST:PORT, ray://HOST:PORT or auto; fix --address")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot join Ray cluster at {address} ({exc.strerror or exc}); start it or fix --address"
        ) from None


def init_ray(cfg: ExperimentConfig) -> None:
    """Join ``--address`` or start a local Ray; check ``--gpus`` against what is really there."""
    if cfg.address:
        check_address(cfg.address)
        try:
            ray.init(address=cfg.address, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's address
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise UserError(f"cannot join Ray cluster at {cfg.address} ({first}); start it or fix --address") from None
        have = ray.cluster_resources().get("GPU", 0)
        if cfg.gpus > have:
            ray.shutdown()
            raise UserError(f"--gpus {cfg.gpus:g} but the cluster at {cfg.address} has {have:g} GPUs; lower --gpus")
        return
    if cfg.gpus > 0:
        have = torch.cuda.device_count()
        if cfg.gpus > have:
            raise UserError(f"--gpus {cfg.gpus:g} but this machine has {have} CUDA GPUs; lower --gpus or use --address")
    ray.init(
        address="local",  # always a new local instance, never another run's cluster left on this machine
        num_cpus=os.cpu_count(),
        num_gpus=int(math.ceil(cfg.gpus)),
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )


def resolve_k(cfg: ExperimentConfig, store: Store) -> ExperimentConfig:
    """S2E's K when ``--samples-per-round`` is not given: one trial per parallel trial slot of
    the Ray cluster, so a round (Algorithm 2, steps 3-6) runs as one wave and no slot idles while
    the round waits for its last trial; at least 2 (S2E ranks a round's samples) and at most half
    the trials (at least two rounds, i.e. one update of p_theta that the budget still uses).
    A resumed run keeps the K it started with (``manifest.json``)."""
    if cfg.samples_per_round is not None:
        return cfg
    manifest = read_manifest(store) if cfg.resume else None
    if manifest is not None:
        old = (manifest.get("config") or {}).get("samples_per_round")
        if isinstance(old, int) and old >= 2:
            return dataclasses.replace(cfg, samples_per_round=old)
    res = ray.cluster_resources()
    slots = res.get("CPU", 1.0) / cfg.cpus_per_trial
    if cfg.trial_gpus > 0:
        slots = min(slots, min(cfg.gpus, res.get("GPU", 0.0)) / cfg.trial_gpus)
    k = max(2, min(int(slots + 1e-9), cfg.trials // 2))
    return dataclasses.replace(cfg, samples_per_round=k)


def device_info(cfg: ExperimentConfig) -> dict[str, Any]:
    """What the manifest records of the devices: the flags, Ray's resources, the CUDA GPUs."""
    info: dict[str, Any] = {"gpus": cfg.gpus, "gpus_per_trial": cfg.trial_gpus, "cpus_per_trial": cfg.cpus_per_trial}
    if ray.is_initialized():
        info["cluster_resources"] = {k: v for k, v in ray.cluster_resources().items() if "node:" not in k}
    if cfg.gpus > 0 and not cfg.address:
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info
