"""Per-mini-batch training rules: which samples each network learns from.

A method turns the logits of its networks on one mini-batch into one loss per
network and the indices each network *selected* (``None`` = the whole batch).
Selection works on the detached per-sample losses with one ``topk`` per
network: no per-sample Python, no second forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def num_kept(batch_size: int, keep: float) -> int:
    """``floor(R * n)`` like the original code, but at least one sample."""
    return max(1, min(batch_size, int(keep * batch_size)))


def small_loss_indices(losses: torch.Tensor, keep: float) -> torch.Tensor:
    """Indices of the ``R(t)`` fraction of smallest losses (Algorithm 1, steps 4-5)."""
    return torch.topk(losses.detach(), num_kept(losses.shape[0], keep), largest=False, sorted=False).indices


@dataclass
class BatchResult:
    losses: list[torch.Tensor]  # one scalar per network, to be summed and back-propagated
    selected: list[torch.Tensor | None]  # per network: the indices it selected, None = all
    train_loss: torch.Tensor  # mean loss over the samples the networks were updated on


def standard(logits: list[torch.Tensor], y: torch.Tensor, keep: float) -> BatchResult:
    """Standard training: one network, cross-entropy on every noisy label."""
    loss = F.cross_entropy(logits[0], y)
    return BatchResult([loss], [None], loss.detach())


def coteaching(logits: list[torch.Tensor], y: torch.Tensor, keep: float) -> BatchResult:
    """Co-teaching (Han et al., NeurIPS 2018; seed slides, Algorithm 1).

    Each network picks its ``R(t)`` small-loss samples (steps 4-5) and the
    *other* network is updated on them (steps 6-7).
    """
    l1 = F.cross_entropy(logits[0], y, reduction="none")
    l2 = F.cross_entropy(logits[1], y, reduction="none")
    idx1 = small_loss_indices(l1, keep)
    idx2 = small_loss_indices(l2, keep)
    loss1 = l1[idx2].mean()  # w_f <- grad f(D_g)
    loss2 = l2[idx1].mean()  # w_g <- grad g(D_f)
    return BatchResult([loss1, loss2], [idx1, idx2], ((loss1 + loss2) / 2).detach())


@dataclass(frozen=True)
class Method:
    name: str
    num_nets: int
    selects: bool  # False: label_precision is the clean fraction of all training samples
    rule: object


METHODS: dict[str, Method] = {
    "standard": Method("standard", 1, False, standard),
    "coteaching": Method("coteaching", 2, True, coteaching),
}
