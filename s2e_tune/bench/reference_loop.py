"""A reference Co-teaching loop written the way the original Co-teaching code trains.

This is the yardstick of ``python -m s2e_tune.bench throughput``: the same
model (:func:`noisylabels.models.build_model`), data, normalisation, device,
R(t) (:func:`noisylabels.schedules.keep_ratio_curve`), Adam schedule (linear lr
decay and beta1 0.9 -> 0.1 from ``decay_start * T``) and seeding as
:class:`trainables.engine.Trainer`, but the loop of the original ``main.py`` /
``loss.py``:

* a :class:`torch.utils.data.Dataset` over the arrays that returns
  ``(x, noisy_label, index)`` per sample, read through a ``DataLoader``
  (batch 128, ``shuffle=True``, ``drop_last=True``, ``num_workers=0``) whose
  batches are moved to the device one by one;
* each network runs its own forward pass; ``loss_coteaching`` computes the
  per-sample losses, sorts them on the CPU with ``np.argsort``, keeps
  ``num_remember = int(R * batch)`` and recomputes the cross-entropy of each
  network on the samples its peer selected;
* the label precision ("pure ratio") of every batch is computed with numpy from
  the batch indices, as in the original;
* two separate ``zero_grad / backward / step`` sequences, one per network;
* evaluation with a batch-128 ``DataLoader`` over the validation and test sets.

Deliberate differences from the original, all in the reference's favour or
neutral, so the comparison is not against a straw man: evaluation runs under
``torch.no_grad()``; the per-batch top-1/top-5 *training* accuracy and the
periodic prints of the original are left out (the Trainer computes neither);
the selected loss is the plain mean (the original divides the mean once more by
``num_remember``, which only rescales the loss, and Adam is invariant to that);
``num_remember`` is at least 1 (as in ``trainables.methods.num_kept``); on CUDA
it uses the same bf16 autocast as the Trainer when ``amp`` is on, so a speed
ratio compares loop design and not numeric precision.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from noisylabels.data import PreparedData
from noisylabels.models import build_model, default_model
from noisylabels.schedules import keep_ratio_curve
from noisylabels.spaces import decode_config
from trainables.engine import TRAIN_DEFAULTS, resolve_device

BATCH_SIZE = 128  # the original's hard-coded batch size


def normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """The Trainer's normalisation, on the CPU (the original's ``ToTensor`` also runs on the CPU)."""
    t = torch.tensor(x)
    if t.dtype == torch.uint8:
        t = t.float().div_(255.0)
    t = t.float()
    m, s = torch.tensor(mean), torch.tensor(std)
    if t.ndim == 4:
        return (t - m.view(1, -1, 1, 1)) / s.view(1, -1, 1, 1)
    return (t - m) / s


class NoisyDataset(Dataset):
    """Per-sample access like the original's MNIST/CIFAR classes: ``(x, label, index)``."""

    def __init__(self, x: torch.Tensor, labels: np.ndarray) -> None:
        self.x = x
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.x[index], int(self.labels[index]), index


def loss_coteaching(
    y_1: torch.Tensor,
    y_2: torch.Tensor,
    t: torch.Tensor,
    keep: float,
    ind: np.ndarray,
    noise_or_not: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, float, float, int]:
    """The original ``loss_coteaching`` with ``forget_rate = 1 - keep``.

    Returns both update losses, both pure ratios and ``num_remember``.
    """
    loss_1 = F.cross_entropy(y_1, t, reduction="none")
    ind_1_sorted = np.argsort(loss_1.detach().cpu().numpy())
    loss_2 = F.cross_entropy(y_2, t, reduction="none")
    ind_2_sorted = np.argsort(loss_2.detach().cpu().numpy())

    num_remember = max(1, int(keep * len(ind_1_sorted)))

    pure_ratio_1 = np.sum(noise_or_not[ind[ind_1_sorted[:num_remember]]]) / float(num_remember)
    pure_ratio_2 = np.sum(noise_or_not[ind[ind_2_sorted[:num_remember]]]) / float(num_remember)

    ind_1_update = torch.from_numpy(ind_1_sorted[:num_remember]).to(y_1.device)
    ind_2_update = torch.from_numpy(ind_2_sorted[:num_remember]).to(y_1.device)
    # exchange: each network learns from the samples its peer found small-loss
    loss_1_update = F.cross_entropy(y_1[ind_2_update], t[ind_2_update])
    loss_2_update = F.cross_entropy(y_2[ind_1_update], t[ind_1_update])
    return loss_1_update, loss_2_update, float(pure_ratio_1), float(pure_ratio_2), num_remember


class ReferenceCoteaching:
    """Co-teaching trained the original way; ``train_epoch()`` = one epoch + evaluation, like the Trainer."""

    def __init__(self, config: Mapping[str, Any], data: PreparedData) -> None:
        self.config = {**TRAIN_DEFAULTS, **decode_config(config)}
        cfg = self.config
        self.epochs = int(cfg["epochs"])
        self.device = resolve_device(cfg["device"])
        self.amp = bool(cfg["amp"]) and self.device.type == "cuda"
        self.batch_size = int(cfg["batch_size"])
        self.keep_curve = keep_ratio_curve(cfg, self.epochs, float(cfg["r_min"]))
        # learning-rate and beta1 plans, as in the original main.py
        lr = float(cfg["lr"])
        start = int(float(cfg["decay_start"]) * self.epochs)
        self.alpha_plan = [lr] * self.epochs
        self.beta1_plan = [0.9] * self.epochs
        for i in range(start, self.epochs):
            self.alpha_plan[i] = float(self.epochs - i) / (self.epochs - start) * lr
            self.beta1_plan[i] = 0.1

        torch.manual_seed(int(cfg["seed"]))
        model_name = cfg["model"] or default_model(data.input_shape)
        self.model1 = build_model(model_name, data.input_shape, data.num_classes).to(self.device)
        self.model2 = build_model(model_name, data.input_shape, data.num_classes).to(self.device)
        self.optimizer1 = torch.optim.Adam(self.model1.parameters(), lr=lr)
        self.optimizer2 = torch.optim.Adam(self.model2.parameters(), lr=lr)

        self.noise_or_not = np.asarray(data.y_train) == np.asarray(data.y_train_clean)
        train_dataset = NoisyDataset(normalise(data.x_train, data.mean, data.std), data.y_train)
        val_dataset = NoisyDataset(normalise(data.x_val, data.mean, data.std), data.y_val)
        test_dataset = NoisyDataset(normalise(data.x_test, data.mean, data.std), data.y_test)
        gen = torch.Generator().manual_seed(int(cfg["seed"]) + 1)
        self.train_loader = DataLoader(
            train_dataset, batch_size=self.batch_size, shuffle=True, drop_last=True, num_workers=0, generator=gen
        )
        self.val_loader = DataLoader(val_dataset, batch_size=self.batch_size, shuffle=False, num_workers=0)
        self.test_loader = DataLoader(test_dataset, batch_size=self.batch_size, shuffle=False, num_workers=0)
        self.epoch = 0
        self.batch_kept: list[int] = []  # num_remember of every batch of the last epoch

    def adjust_learning_rate(self, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        for param_group in optimizer.param_groups:
            param_group["lr"] = self.alpha_plan[epoch]
            param_group["betas"] = (self.beta1_plan[epoch], 0.999)  # only beta1 changes

    def train(self, keep: float) -> tuple[float, float, float]:
        """One pass over the train loader; returns mean loss and both mean pure ratios."""
        pure_ratio_1_list: list[float] = []
        pure_ratio_2_list: list[float] = []
        losses: list[float] = []
        self.batch_kept = []
        for images, labels, indexes in self.train_loader:
            ind = indexes.cpu().numpy().transpose()
            images = images.to(self.device)
            labels = labels.to(self.device)

            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits1 = self.model1(images)
                logits2 = self.model2(images)
            loss_1, loss_2, pure_ratio_1, pure_ratio_2, num_remember = loss_coteaching(
                logits1.float(), logits2.float(), labels, keep, ind, self.noise_or_not
            )
            pure_ratio_1_list.append(100 * pure_ratio_1)
            pure_ratio_2_list.append(100 * pure_ratio_2)
            self.batch_kept.append(num_remember)

            self.optimizer1.zero_grad()
            loss_1.backward()
            self.optimizer1.step()
            self.optimizer2.zero_grad()
            loss_2.backward()
            self.optimizer2.step()
            losses.append((loss_1.item() + loss_2.item()) / 2)
        n = max(len(losses), 1)
        return sum(losses) / n, sum(pure_ratio_1_list) / n / 100, sum(pure_ratio_2_list) / n / 100

    @torch.no_grad()
    def evaluate(self, loader: DataLoader) -> tuple[list[float], list[float]]:
        """Accuracy and mean cross-entropy of each network over ``loader``."""
        accs, losses = [], []
        for model in (self.model1, self.model2):
            model.eval()
            correct, total, loss_sum = 0, 0, 0.0
            for images, labels, _ in loader:
                images = images.to(self.device)
                labels = labels.to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    logits = model(images).float()
                outputs = F.softmax(logits, dim=1)
                _, pred = torch.max(outputs.data, 1)
                total += labels.size(0)
                correct += (pred == labels).sum().item()
                loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
            accs.append(correct / max(total, 1))
            losses.append(loss_sum / max(total, 1))
        return accs, losses

    def train_epoch(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.epoch += 1
        e0 = min(self.epoch, self.epochs) - 1
        keep = float(self.keep_curve[e0])
        self.model1.train()
        self.adjust_learning_rate(self.optimizer1, e0)
        self.model2.train()
        self.adjust_learning_rate(self.optimizer2, e0)
        train_loss, pr1, pr2 = self.train(keep)
        val_acc, val_loss = self.evaluate(self.val_loader)
        test_acc, _ = self.evaluate(self.test_loader)
        return {
            "epoch": self.epoch,
            "kept_ratio": keep,
            "train_loss": train_loss,
            "val_acc": float(np.mean(val_acc)),
            "val_loss": float(np.mean(val_loss)),
            "test_acc": float(np.mean(test_acc)),
            "test_acc_net1": test_acc[0],
            "test_acc_net2": test_acc[1],
            "label_precision": (pr1 + pr2) / 2,
            "label_precision_net1": pr1,
            "label_precision_net2": pr2,
            "diverged": not math.isfinite(train_loss),
            "epoch_time_s": time.perf_counter() - t0,
        }
