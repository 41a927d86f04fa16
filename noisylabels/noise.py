"""Seeded label noise from a transition matrix (seed slides, "Experiments - Setup").

``T[i, j]`` is the probability that a sample of clean class ``i`` carries the
noisy label ``j``.  Two families from the Co-teaching experiments:

* ``sym`` (symmetry flipping): keep the label with probability ``1 - rate``,
  otherwise flip uniformly to one of the other ``C - 1`` classes.
* ``pair`` (pair flipping): keep with probability ``1 - rate``, otherwise flip
  class ``c`` to ``c + 1 (mod C)``.

A rate is *possible* only while the clean label stays the most likely noisy
label, otherwise the noise is not learnable: ``pair`` needs ``rate < 0.5``,
``sym`` needs ``rate < 1 - 1/C``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noisylabels.errors import UserError

NOISE_TYPES = ("sym", "pair")


def transition_matrix(noise: str, rate: float, num_classes: int) -> np.ndarray:
    """Return the ``C x C`` row-stochastic transition matrix of a noise model."""
    check_noise(noise, rate, num_classes)
    c = num_classes
    if noise == "sym":
        t = np.full((c, c), rate / (c - 1))
        np.fill_diagonal(t, 1.0 - rate)
    else:
        t = np.eye(c) * (1.0 - rate)
        t[np.arange(c), (np.arange(c) + 1) % c] += rate
    return t


def check_noise(noise: str, rate: float, num_classes: int) -> None:
    """Reject an unknown noise type or an impossible rate with a one-line UserError."""
    if noise not in NOISE_TYPES:
        raise UserError(f"unknown noise type {noise!r}; use one of {', '.join(NOISE_TYPES)}")
    if not np.isfinite(rate) or rate < 0:
        raise UserError(f"noise rate {rate} is negative or not a number; use a rate in [0, 1)")
    limit = 0.5 if noise == "pair" else 1.0 - 1.0 / num_classes
    if rate >= limit:
        raise UserError(
            f"{noise} noise rate {rate} is impossible with {num_classes} classes "
            f"(the clean label must stay the most likely one); use a rate below {limit:.4g}"
        )


@dataclass(frozen=True)
class NoisyLabels:
    """Noisy labels drawn from a transition matrix, with the realised noise rate."""

    labels: np.ndarray
    matrix: np.ndarray
    realised_rate: float


def corrupt_labels(clean: np.ndarray, noise: str, rate: float, num_classes: int, seed: int) -> NoisyLabels:
    """Draw one noisy label per sample from row ``clean[i]`` of the transition matrix.

    Vectorised inverse-CDF sampling: one uniform number per sample, so the same
    ``seed`` always gives the same labels.
    """
    t = transition_matrix(noise, rate, num_classes)
    rng = np.random.default_rng(seed)
    u = rng.random(len(clean))
    cdf = np.cumsum(t, axis=1)
    cdf[:, -1] = 1.0
    noisy = (u[:, None] >= cdf[clean]).sum(axis=1).astype(np.int64)
    realised = float(np.mean(noisy != clean)) if len(clean) else 0.0
    return NoisyLabels(labels=noisy, matrix=t, realised_rate=realised)
