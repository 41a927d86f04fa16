"""The training loop of every method, without Ray: one call = one epoch.

Speed: the whole data set lives as tensors on the trial's device,
mini-batches are index slices of one ``randperm`` per epoch, every statistic is
accumulated on the device and read back once per epoch, and CUDA runs under
bf16 autocast.  Adam with Co-teaching's schedule: learning rate ``lr`` until
``decay_start * T``, then linear decay to zero at ``T``, and Adam's beta1
switched from 0.9 to 0.1 at the same point (the original Co-teaching code).

Methods (``trainables.methods.METHODS``) share this loop and its metrics; the
loop asks a method once per epoch for its options (``Method.options``) and
once per mini-batch for its losses and selections.  Method-specific keys:

* ``jocor_lambda`` (0.9): JoCoR's co-regularisation weight.
* ``cotplus_init`` (0.1): Co-teaching+ runs plain Co-teaching for the first
  ``ceil(cotplus_init * T)`` epochs (the paper's ``init_epoch``: 20 of 200
  epochs in its CIFAR-10 code, 0 for MNIST).
* ``fc_warmup`` (0.2), ``fc_percentile`` (97), ``fc_reinit`` (True): forward
  correction trains with plain cross-entropy for the first
  ``max(1, ceil(fc_warmup * T))`` epochs; at the end of the last of them the
  network predicts the (noisy) training set and ``T_hat`` is estimated from its
  anchor points (:func:`trainables.methods.estimate_transition`); with
  ``fc_reinit`` the network and its optimiser then start afresh, so the
  corrected network is trained from scratch as in the paper's two-stage
  procedure (one run, one epoch budget, instead of two full trainings), else
  training continues from the estimation network.  ``T_hat`` is part of the
  checkpoint state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from noisylabels.data import PreparedData
from noisylabels.models import build_model, default_model
from noisylabels.schedules import R_MIN, keep_ratio_curve
from noisylabels.spaces import decode_config
from trainables.methods import METHODS, EpochContext, estimate_transition

TRAIN_DEFAULTS: dict[str, Any] = {
    "method": "coteaching",
    "model": None,  # None: chosen by data set (models.default_model)
    "epochs": 20,
    "batch_size": 128,
    "lr": 1e-3,
    "decay_start": 0.4,  # fraction of T (80 of 200 epochs in the original code)
    "seed": 0,
    "r_min": R_MIN,
    "device": "auto",  # auto | cpu | cuda
    "amp": True,  # bf16 autocast on CUDA; ignored on CPU
    "eval_batch_size": 2048,
    # method-specific keys (see the module docstring)
    "jocor_lambda": 0.9,
    "cotplus_init": 0.1,
    "fc_warmup": 0.2,
    "fc_percentile": 97.0,
    "fc_reinit": True,
}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def keep_curve(config: Mapping[str, Any], epochs: int) -> np.ndarray:
    """R for epochs ``1..epochs`` of a trial config (log10-encoded keys decoded, ``r_min`` from the
    config or :data:`TRAIN_DEFAULTS`): the curve a selecting method trains with."""
    cfg = {**TRAIN_DEFAULTS, **decode_config(config)}
    return keep_ratio_curve(cfg, epochs, float(cfg["r_min"]))


class Trainer:
    """Trains one configuration of one method on one prepared data set."""

    def __init__(self, config: Mapping[str, Any], data: PreparedData) -> None:
        unknown_method = config.get("method", TRAIN_DEFAULTS["method"])
        if unknown_method not in METHODS:
            raise ValueError(f"unknown method {unknown_method!r}; use one of {', '.join(METHODS)}")
        self.config = {**TRAIN_DEFAULTS, **decode_config(config)}
        cfg = self.config
        self.method = METHODS[cfg["method"]]
        self.epochs = int(cfg["epochs"])
        self.device = resolve_device(cfg["device"])
        self.amp = bool(cfg["amp"]) and self.device.type == "cuda"
        self.keep_curve = keep_curve(cfg, self.epochs) if self.method.uses_schedule else np.ones(self.epochs)
        torch.manual_seed(int(cfg["seed"]))
        self.shuffle_gen = torch.Generator().manual_seed(int(cfg["seed"]) + 1)
        self._model_args = (cfg["model"] or default_model(data.input_shape), data.input_shape, data.num_classes)
        self.nets = [build_model(*self._model_args).to(self.device) for _ in range(self.method.num_nets)]
        self.opts = [torch.optim.Adam(n.parameters(), lr=float(cfg["lr"])) for n in self.nets]
        self._load_tensors(data)
        self.transition: torch.Tensor | None = None  # fcorrection's T_hat, once estimated
        self.epoch = 0
        self.last_metrics: dict[str, Any] | None = None

    def _load_tensors(self, data: PreparedData) -> None:
        dev = self.device
        mean = torch.tensor(data.mean, device=dev)
        std = torch.tensor(data.std, device=dev)

        def to_x(x: np.ndarray) -> torch.Tensor:
            t = torch.tensor(x, device=dev)  # a copy: arrays from Ray's object store are read-only
            if t.dtype == torch.uint8:
                t = t.float().div_(255.0)
            t = t.float()
            if t.ndim == 4:
                return (t - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
            return (t - mean) / std

        def to_y(y: np.ndarray) -> torch.Tensor:
            return torch.tensor(y, dtype=torch.long, device=dev)

        self.x_train, self.y_train = to_x(data.x_train), to_y(data.y_train)
        self.clean_mask = to_y(data.y_train) == to_y(data.y_train_clean)
        self.x_val, self.y_val = to_x(data.x_val), to_y(data.y_val)
        self.x_test, self.y_test = to_x(data.x_test), to_y(data.y_test)

    def _set_optimizer_schedule(self, epoch: int) -> None:
        """Linear lr decay and beta1 0.9 -> 0.1 after ``decay_start * T`` (0-based epoch)."""
        cfg = self.config
        e0 = epoch - 1
        start = int(float(cfg["decay_start"]) * self.epochs)
        lr, beta1 = float(cfg["lr"]), 0.9
        if e0 >= start:
            lr = float(cfg["lr"]) * (self.epochs - e0) / (self.epochs - start)
            beta1 = 0.1
        for opt in self.opts:
            for group in opt.param_groups:
                group["lr"] = lr
                group["betas"] = (beta1, 0.999)

    def train_epoch(self) -> dict[str, Any]:
        """Run one epoch and return the metrics of DESIGN.md for it."""
        t0 = time.perf_counter()
        self.epoch += 1
        epoch = self.epoch
        curve_pos = min(epoch, len(self.keep_curve)) - 1
        keep = float(self.keep_curve[curve_pos])
        options = self.method.options(EpochContext(epoch, self.epochs, self.config, self.transition))
        self._set_optimizer_schedule(min(epoch, self.epochs))
        for net in self.nets:
            net.train()
        n = self.x_train.shape[0]
        bs = min(int(self.config["batch_size"]), n)
        perm = torch.randperm(n, generator=self.shuffle_gen).to(self.device)
        n_nets = len(self.nets)
        sel_clean = torch.zeros(n_nets, device=self.device)
        sel_count = torch.zeros(n_nets, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        batches = n // bs  # drop_last, as in the original code
        for b in range(batches):
            idx = perm[b * bs : (b + 1) * bs]
            xb, yb, clean = self.x_train[idx], self.y_train[idx], self.clean_mask[idx]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = [net(xb) for net in self.nets]
            res = self.method.rule([lg.float() for lg in logits], yb, keep, **options)
            for opt in self.opts:
                opt.zero_grad(set_to_none=True)
            total = torch.stack(res.losses).sum()
            total.backward()
            for opt in self.opts:
                opt.step()
            for k, sel in enumerate(res.selected):
                if sel is None:
                    sel_clean[k] += clean.sum()
                    sel_count[k] += bs
                elif sel.dtype == torch.bool:  # a mask: variable-size selections stay on the device
                    sel_clean[k] += (clean & sel).sum()
                    sel_count[k] += sel.sum()
                else:
                    sel_clean[k] += clean[sel].sum()
                    sel_count[k] += sel.shape[0]
            loss_sum += res.train_loss
        # NaN when a network selected nothing in the whole epoch (e.g. no disagreement left)
        precision = torch.where(sel_count > 0, sel_clean / sel_count.clamp_min(1), math.nan).tolist()
        train_loss = float(loss_sum) / max(batches, 1)
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "kept_ratio": keep,
            "train_loss": train_loss,
            **self._evaluate(),
        }
        metrics["label_precision"] = float(np.mean(precision))
        metrics["label_precision_net1"] = precision[0]
        metrics["label_precision_net2"] = precision[1] if n_nets > 1 else math.nan
        metrics["diverged"] = not math.isfinite(train_loss)
        if metrics["diverged"]:  # NaN weights: report the worst objective, never a lucky argmax
            metrics.update(val_acc=0.0, val_loss=math.inf)
        if self.method.end_of_epoch is not None:  # e.g. fcorrection estimates T_hat after its warm-up
            self.method.end_of_epoch(self, metrics)
        metrics["epoch_time_s"] = time.perf_counter() - t0
        self.last_metrics = metrics
        return metrics

    def estimate_transition(self) -> None:
        """fcorrection: T_hat from the warmed-up network's predictions on the noisy training set."""
        probs = torch.softmax(self._predict(self.x_train)[0], dim=1)
        self.transition = estimate_transition(probs, float(self.config["fc_percentile"]))
        if self.config["fc_reinit"]:
            self.nets[0] = build_model(*self._model_args).to(self.device)
            self.opts[0] = torch.optim.Adam(self.nets[0].parameters(), lr=float(self.config["lr"]))

    @property
    def finished(self) -> bool:
        """All epochs run, or training diverged."""
        return self.epoch >= self.epochs or bool(self.last_metrics and self.last_metrics["diverged"])

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> list[torch.Tensor]:
        bs = int(self.config["eval_batch_size"])
        outs = []
        for net in self.nets:
            net.eval()
            chunks = []
            for i in range(0, x.shape[0], bs):
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    chunks.append(net(x[i : i + bs]).float())
            outs.append(torch.cat(chunks))
        return outs

    def score(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Accuracy and cross-entropy on ``(x, y)``, each the mean over the networks: how
        ``val_acc``/``val_loss`` are computed (e.g. against other labels of the same inputs)."""
        logits = self._predict(x.to(self.device))
        y = y.to(self.device)
        acc = [float((lg.argmax(1) == y).float().mean()) for lg in logits]
        loss = [float(F.cross_entropy(lg, y)) for lg in logits]
        return float(np.mean(acc)), float(np.mean(loss))

    def _evaluate(self) -> dict[str, float]:
        val_acc, val_loss = self.score(self.x_val, self.y_val)
        test_acc = [float((lg.argmax(1) == self.y_test).float().mean()) for lg in self._predict(self.x_test)]
        return {
            "val_acc": val_acc,
            "val_loss": val_loss,
            "test_acc": float(np.mean(test_acc)),
            "test_acc_net1": test_acc[0],
            "test_acc_net2": test_acc[1] if len(test_acc) > 1 else math.nan,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a restored trial needs to continue exactly: nets, optimizers, RNGs, epoch, T_hat."""
        state = {
            "epoch": self.epoch,
            "nets": [n.state_dict() for n in self.nets],
            "opts": [o.state_dict() for o in self.opts],
            "shuffle_gen": self.shuffle_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "last_metrics": self.last_metrics,
            "transition": None if self.transition is None else self.transition.cpu(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.last_metrics = state.get("last_metrics")
        t_hat = state.get("transition")
        self.transition = None if t_hat is None else t_hat.to(self.device)
        for net, s in zip(self.nets, state["nets"], strict=True):
            net.load_state_dict(s)
        for opt, s in zip(self.opts, state["opts"], strict=True):
            opt.load_state_dict(s)
        # RNG states are CPU byte tensors; a checkpoint loaded with map_location="cuda" (as the
        # Trainable restores on a GPU) has moved them to the device, which set_state refuses
        self.shuffle_gen.set_state(state["shuffle_gen"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
