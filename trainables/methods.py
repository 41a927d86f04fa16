"""Per-mini-batch training rules: which samples each network learns from, and with which loss.

A method turns the logits of its networks on one mini-batch (one forward pass
per network), the noisy labels and the keep ratio ``R(t)`` into the losses to
back-propagate and the samples each network *selected*.  Selection works on
detached per-sample losses with ``topk`` (or one sort when the candidates are a
data-dependent subset such as a disagreement set): no per-sample Python, no
second forward pass, no host synchronisation.

``label_precision`` (the clean fraction of the selected samples) is computed by
the engine from :attr:`BatchResult.selected`: a long tensor of indices, a bool
mask over the batch, or ``None`` = the whole batch.  Methods that do not select
(``standard``, ``fcorrection``) therefore report the clean fraction of every
sample they trained on: the whole training set, less the ``< batch_size``
samples that ``drop_last`` leaves out of each epoch.

Methods (``METHODS``; references in each rule's docstring):

==================  ====  =======  =====  ==========================================
name                nets  selects  R(t)   rule
==================  ====  =======  =====  ==========================================
``standard``        1     no       no     cross-entropy on every noisy label
``coteaching``      2     yes      yes    each net picks small-loss samples for its peer
``selfteach``       1     yes      yes    one net learns from its own small-loss samples
``decoupling``      2     yes      no     both nets learn where their predictions disagree
``fcorrection``     1     no       no     forward loss correction with an estimated T
``coteaching_plus`` 2     yes      yes    Co-teaching inside the disagreement set
``jocor``           2     yes      yes    small joint (CE + co-regularisation) loss
==================  ====  =======  =====  ==========================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F


def num_kept(batch_size: int, keep: float) -> int:
    """``floor(R * n)`` like the original code, but at least one sample."""
    return max(1, min(batch_size, int(keep * batch_size)))


def small_loss_indices(losses: torch.Tensor, keep: float) -> torch.Tensor:
    """Indices of the ``R(t)`` fraction of smallest losses (Algorithm 1, steps 4-5)."""
    return torch.topk(losses.detach(), num_kept(losses.shape[0], keep), largest=False, sorted=False).indices


def small_loss_mask(losses: torch.Tensor, keep: float, among: torch.Tensor) -> torch.Tensor:
    """Bool mask of the ``floor(R * m)`` smallest losses among the ``m`` samples where ``among`` is True.

    At least one sample when ``m > 0``, none when ``m == 0``.  One sort of the
    batch on the device: ``m`` is never read back to the host.
    """
    masked = torch.where(among, losses.detach(), torch.full_like(losses, math.inf))
    order = torch.argsort(masked)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.shape[0], device=order.device)
    m = among.sum()
    k = torch.minimum(torch.clamp((m.double() * keep).floor().long(), min=1), m)
    return rank < k


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is True; 0 (with a graph, zero gradient) for an empty mask."""
    return (values * mask).sum() / mask.sum().clamp_min(1)


def disagreement(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
    """Bool mask of the samples on which the two networks predict different classes."""
    return logits1.detach().argmax(1) != logits2.detach().argmax(1)


@dataclass
class BatchResult:
    losses: list[torch.Tensor]  # scalars; their sum is back-propagated once (usually one per network)
    selected: list[torch.Tensor | None]  # per network: indices (long) or a bool mask it selected; None = all
    train_loss: torch.Tensor  # mean loss over the samples the networks were updated on


# ---- the rules --------------------------------------------------------------------------------


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


def selfteach(logits: list[torch.Tensor], y: torch.Tensor, keep: float) -> BatchResult:
    """Self-paced small-loss selection: one network learns from its own ``R(t)`` small-loss samples.

    The MentorNet baseline of the seed's table (Jiang et al., ICML 2018) in its
    self-paced form: MentorNet's *pre-defined* curriculum keeps the samples whose
    loss is below a threshold, here the ``R(t)`` quantile of the mini-batch, the
    same schedule Co-teaching uses.  No learned (data-driven) teacher network and
    no peer: the network's own selection errors feed back into its training,
    which is what Co-teaching's cross-update avoids.
    """
    loss_all = F.cross_entropy(logits[0], y, reduction="none")
    idx = small_loss_indices(loss_all, keep)
    loss = loss_all[idx].mean()
    return BatchResult([loss], [idx], loss.detach())


def decoupling(logits: list[torch.Tensor], y: torch.Tensor, keep: float) -> BatchResult:
    """Decoupling (Malach & Shalev-Shwartz, "Decoupling 'when to update' from 'how to update'", NeurIPS 2017).

    "Update by disagreement": both networks are updated, each with its own
    cross-entropy, only on the samples of the mini-batch where their predicted
    classes differ.  No ``R(t)`` (``keep`` is ignored).  The disagreement set is
    what this method selects, so ``label_precision`` is its clean fraction.  A
    mini-batch without disagreement gives a zero loss (no gradient).
    """
    dis = disagreement(logits[0], logits[1])
    l1 = F.cross_entropy(logits[0], y, reduction="none")
    l2 = F.cross_entropy(logits[1], y, reduction="none")
    loss1, loss2 = masked_mean(l1, dis), masked_mean(l2, dis)
    return BatchResult([loss1, loss2], [dis, dis], ((loss1 + loss2) / 2).detach())


def forward_corrected_loss(logits: torch.Tensor, y: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    """Per-sample ``CE(log(softmax(logits) @ T), y)`` (Patrini et al. 2017, Theorem 2, "forward")."""
    noisy_probs = F.softmax(logits, dim=1) @ transition
    return F.nll_loss(torch.log(noisy_probs.clamp_min(1e-12)), y, reduction="none")


def fcorrection(
    logits: list[torch.Tensor], y: torch.Tensor, keep: float, transition: torch.Tensor | None = None
) -> BatchResult:
    """Forward loss correction (Patrini et al., "Making deep neural networks robust to label noise:
    a loss correction approach", CVPR 2017).

    The network's clean-class posterior ``p(.|x)`` is pushed through the noise
    transition matrix ``T[i, j] = p(noisy j | clean i)`` before the
    cross-entropy with the noisy label: ``loss = CE(log(p(.|x) @ T_hat), y)``.
    ``T_hat`` comes from :func:`estimate_transition`; while it is ``None`` (the
    engine's warm-up phase, which trains the estimation network) the loss is
    plain cross-entropy.  No selection, no ``R(t)``.
    """
    if transition is None:
        return standard(logits, y, keep)
    loss = forward_corrected_loss(logits[0], y, transition).mean()
    return BatchResult([loss], [None], loss.detach())


def estimate_transition(probs: torch.Tensor, percentile: float = 97.0) -> torch.Tensor:
    """Anchor-point estimate of ``T`` from the predicted noisy posteriors of a network trained on noisy labels.

    ``probs`` (n x c): ``p(noisy . | x)`` for the training samples.  For each
    class ``i`` the anchor is the sample with the highest ``p(i|x)`` and row
    ``i`` of ``T_hat`` is ``p(.|anchor)``, rows renormalised to sum to one
    (Patrini et al. 2017, Eq. 12-13).  As in the paper's code
    (``NoiseEstimator(filter_outlier=True)``), the highest ``p(i|x)`` is taken
    *below the 97th percentile* of column ``i``: the top 3 % are treated as
    over-confident outliers (a network that memorised noisy labels is ~1.0 on
    them, which would give ``T_hat ~ I``).  ``percentile >= 100`` takes the plain
    argmax.  Unlike that code, the filtering of one column does not alter the
    probabilities used for the others (it zeroed them in place).
    """
    probs = probs.float()
    c = probs.shape[1]
    if percentile >= 100.0:
        anchors = probs.argmax(0)
    else:
        thresh = torch.quantile(probs, percentile / 100.0, dim=0, interpolation="higher")  # (c,)
        robust = torch.where(probs >= thresh, torch.zeros_like(probs), probs)
        anchors = robust.argmax(0)
    t_hat = probs[anchors]  # row i = p(. | anchor of class i)
    assert t_hat.shape == (c, c)
    return t_hat / t_hat.sum(1, keepdim=True).clamp_min(1e-12)


def coteaching_plus(logits: list[torch.Tensor], y: torch.Tensor, keep: float, disagree: bool = True) -> BatchResult:
    """Co-teaching+ (Yu et al., "How does disagreement help generalization against label corruption?", ICML 2019).

    "Update by disagreement" + cross-update: keep only the samples where the two
    networks' predictions disagree, let each network pick its ``floor(R(t) * m)``
    small-loss samples among these ``m`` (at least one), and update its *peer*
    on them.  A mini-batch without disagreement gives a zero loss.  With
    ``disagree=False`` this is plain Co-teaching: the paper's code does that for
    its first ``init_epoch`` epochs (the engine's ``cotplus_init``).
    """
    if not disagree:
        return coteaching(logits, y, keep)
    dis = disagreement(logits[0], logits[1])
    l1 = F.cross_entropy(logits[0], y, reduction="none")
    l2 = F.cross_entropy(logits[1], y, reduction="none")
    m1 = small_loss_mask(l1, keep, dis)
    m2 = small_loss_mask(l2, keep, dis)
    loss1 = masked_mean(l1, m2)  # net 1 learns from net 2's pick
    loss2 = masked_mean(l2, m1)
    return BatchResult([loss1, loss2], [m1, m2], ((loss1 + loss2) / 2).detach())


def symmetric_kl(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
    """Per-sample ``KL(p1 || p2) + KL(p2 || p1)`` of the softmax distributions (gradients reach both nets)."""
    lp1, lp2 = F.log_softmax(logits1, dim=1), F.log_softmax(logits2, dim=1)
    return ((lp1.exp() - lp2.exp()) * (lp1 - lp2)).sum(1)


def jocor(logits: list[torch.Tensor], y: torch.Tensor, keep: float, lam: float = 0.9) -> BatchResult:
    """JoCoR (Wei et al., "Combating noisy labels by agreement: a joint training method with
    co-regularization", CVPR 2020).

    Per-sample joint loss ``(1 - lam) * (CE1 + CE2) + lam * (KL(p1||p2) + KL(p2||p1))``;
    the ``R(t)`` fraction of small joint losses is selected and *both* networks
    are updated on its mean (one loss, one backward, as the paper's single
    optimiser over both networks).  ``lam`` is the config key ``jocor_lambda``
    (default 0.9, the paper's value).
    """
    ce1 = F.cross_entropy(logits[0], y, reduction="none")
    ce2 = F.cross_entropy(logits[1], y, reduction="none")
    joint = (1.0 - lam) * (ce1 + ce2) + lam * symmetric_kl(logits[0], logits[1])
    idx = small_loss_indices(joint, keep)
    loss = joint[idx].mean()
    return BatchResult([loss], [idx, idx], loss.detach())


# ---- the registry -----------------------------------------------------------------------------


def warmup_epochs(fraction: float, epochs: int) -> int:
    """Number of leading epochs that make up ``fraction`` of an ``epochs``-long run (rounded up)."""
    return max(0, min(epochs, math.ceil(float(fraction) * epochs - 1e-9)))


@dataclass
class EpochContext:
    """What a rule's epoch-level options may depend on."""

    epoch: int  # 1-based
    epochs: int
    config: Mapping[str, Any]
    transition: torch.Tensor | None = None  # fcorrection's T_hat once estimated


def _no_options(ctx: EpochContext) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Method:
    name: str
    num_nets: int
    selects: bool  # False: label_precision is the clean fraction of all training samples
    rule: Callable[..., BatchResult]
    uses_schedule: bool = False  # True: R(t) comes from the config's schedule; False: R = 1 (kept_ratio 1.0)
    options: Callable[[EpochContext], dict[str, Any]] = field(default=_no_options)  # extra rule kwargs
    # work after an epoch's metrics are known: (trainer, metrics) -> None, e.g. fcorrection's T_hat
    end_of_epoch: Callable[[Any, dict[str, Any]], None] | None = None


def _fcorrection_end_of_epoch(trainer: Any, metrics: dict[str, Any]) -> None:
    """Forward correction: at the end of the last warm-up epoch (``max(1, ceil(fc_warmup * T))``,
    never the last epoch of the run) estimate T_hat from the warmed-up network, once."""
    if trainer.transition is not None or metrics["diverged"]:
        return
    warm = max(1, warmup_epochs(float(trainer.config["fc_warmup"]), trainer.epochs))
    if warm <= metrics["epoch"] < trainer.epochs:
        trainer.estimate_transition()


METHODS: dict[str, Method] = {
    "standard": Method("standard", 1, False, standard),
    "coteaching": Method("coteaching", 2, True, coteaching, uses_schedule=True),
    "selfteach": Method("selfteach", 1, True, selfteach, uses_schedule=True),
    "decoupling": Method("decoupling", 2, True, decoupling),
    "fcorrection": Method(
        "fcorrection", 1, False, fcorrection,
        options=lambda ctx: {"transition": ctx.transition}, end_of_epoch=_fcorrection_end_of_epoch,
    ),
    "coteaching_plus": Method(
        "coteaching_plus", 2, True, coteaching_plus, uses_schedule=True,
        options=lambda ctx: {"disagree": ctx.epoch > warmup_epochs(ctx.config["cotplus_init"], ctx.epochs)},
    ),
    "jocor": Method(
        "jocor", 2, True, jocor, uses_schedule=True, options=lambda ctx: {"lam": float(ctx.config["jocor_lambda"])}
    ),
}
