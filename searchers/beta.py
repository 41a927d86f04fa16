"""The product-of-Betas search distribution p_theta(x) used by S2E.

The seed slides ("Derive a Search Algorithm") relax ``min_x f(x)`` to
``min_theta J(theta) = E_{x ~ p_theta}[f(x)]``.  Here ``x`` lives in the unit
cube ``(0, 1)^d`` (every hyperparameter rescaled from its range) and

    p_theta(x) = prod_k Beta(x_k; a_k, b_k),   theta = (a_1, b_1, ..., a_d, b_d).

``theta`` is stored *interleaved*, parameter by parameter, so that the Hessian
of ``log p_theta`` is block diagonal with one 2x2 block per hyperparameter.

Pure numpy/scipy: no ray, no torch.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["ProductBeta"]


class ProductBeta:
    """Independent ``Beta(a_k, b_k)`` on each coordinate of ``(0, 1)^d``.

    ``a`` and ``b`` must be positive; S2E keeps them in ``[1, theta_max]`` so
    that every factor is proper, bounded and unimodal (``theta = 1`` is the
    uniform distribution, Algorithm 2, step 1).
    """

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        a = np.array(a, dtype=float, ndmin=1)
        b = np.array(b, dtype=float, ndmin=1)
        if a.ndim != 1 or a.shape != b.shape:
            raise ValueError(f"a and b must be 1-d and of equal length, got {a.shape}, {b.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise ValueError("a and b must be finite")
        if np.any(a <= 0) or np.any(b <= 0):
            raise ValueError("a and b must be positive")
        self.a = a
        self.b = b

    # ----------------------------------------------------------------- theta
    @property
    def dim(self) -> int:
        """Number of hyperparameters ``d`` (``theta`` has ``2 d`` entries)."""
        return int(self.a.shape[0])

    @property
    def theta(self) -> np.ndarray:
        """``theta = (a_1, b_1, a_2, b_2, ...)`` (interleaved), a copy."""
        out = np.empty(2 * self.dim)
        out[0::2] = self.a
        out[1::2] = self.b
        return out

    @classmethod
    def from_theta(cls, theta: np.ndarray) -> ProductBeta:
        theta = np.asarray(theta, dtype=float)
        if theta.ndim != 1 or theta.shape[0] % 2:
            raise ValueError("theta must be a 1-d array of even length (a_1, b_1, a_2, b_2, ...)")
        return cls(theta[0::2], theta[1::2])

    @classmethod
    def uniform(cls, dim: int) -> ProductBeta:
        """``theta^1 = 1``: the uniform distribution (Algorithm 2, step 1)."""
        return cls(np.ones(dim), np.ones(dim))

    # -------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator, n: int, eps: float = 1e-7) -> np.ndarray:
        """Draw ``n`` points, shape ``(n, d)``, clipped to ``[eps, 1 - eps]``.

        The clip keeps ``log x`` and ``log(1 - x)`` finite in the score
        (Algorithm 2, step 4: "draw K x ~ p_theta").
        """
        x = rng.beta(self.a, self.b, size=(int(n), self.dim))
        return np.clip(x, eps, 1.0 - eps)

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {x.shape}")
        return x

    # ------------------------------------------------------------- densities
    def log_density(self, x: np.ndarray) -> np.ndarray:
        """``log p_theta(x)`` for each row of ``x``; shape ``(n,)``."""
        x = self._check_x(x)
        a, b = self.a, self.b
        per = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - special.betaln(a, b)
        return per.sum(axis=1)

    def score(self, x: np.ndarray) -> np.ndarray:
        """``grad_theta log p_theta(x)`` for each row; shape ``(n, 2 d)``.

        For one factor: ``d/da log p = log x + psi(a + b) - psi(a)`` and
        ``d/db log p = log(1 - x) + psi(a + b) - psi(b)`` (the log-likelihood
        trick behind ``grad J = E[f(x) grad log p_theta(x)]``).
        """
        x = self._check_x(x)
        a, b = self.a, self.b
        psi_ab = special.digamma(a + b)
        out = np.empty((x.shape[0], 2 * self.dim))
        out[:, 0::2] = np.log(x) + psi_ab - special.digamma(a)
        out[:, 1::2] = np.log1p(-x) + psi_ab - special.digamma(b)
        return out

    def hessian_log_density(self) -> np.ndarray:
        """``grad^2_theta log p_theta(x)``, shape ``(2 d, 2 d)``.

        Block diagonal; for one factor the block is
        ``[[psi1(a+b) - psi1(a), psi1(a+b)], [psi1(a+b), psi1(a+b) - psi1(b)]]``
        (``psi1`` = trigamma).  It does not depend on ``x``; this is the
        ``grad^2 log p`` term of Proposition 1.
        """
        return -self.fisher()

    def fisher_blocks(self) -> np.ndarray:
        """Per-parameter 2x2 Fisher blocks, shape ``(d, 2, 2)`` (= minus the Hessian)."""
        a, b = self.a, self.b
        t_ab = special.polygamma(1, a + b)
        blocks = np.empty((self.dim, 2, 2))
        blocks[:, 0, 0] = special.polygamma(1, a) - t_ab
        blocks[:, 1, 1] = special.polygamma(1, b) - t_ab
        blocks[:, 0, 1] = -t_ab
        blocks[:, 1, 0] = -t_ab
        return blocks

    def fisher(self) -> np.ndarray:
        """Fisher information ``F = -grad^2 log p_theta`` (positive definite), ``(2d, 2d)``."""
        d = self.dim
        out = np.zeros((2 * d, 2 * d))
        blocks = self.fisher_blocks()
        for k in range(d):
            out[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = blocks[k]
        return out

    # --------------------------------------------------------------- moments
    def mean(self) -> np.ndarray:
        """``E[x_k] = a_k / (a_k + b_k)`` in the unit cube."""
        return self.a / (self.a + self.b)

    def var(self) -> np.ndarray:
        """``Var[x_k] = a b / ((a + b)^2 (a + b + 1))`` in the unit cube."""
        s = self.a + self.b
        return self.a * self.b / (s * s * (s + 1.0))

    def mode(self) -> np.ndarray:
        """Mode of each factor (the mean where ``a = b = 1``, i.e. uniform)."""
        a, b = self.a, self.b
        s = a + b - 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(s > 0, (a - 1.0) / np.where(s > 0, s, 1.0), 0.5)
        return m

    def exp_moments(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``E[exp(c_k x_k)]`` and ``E[exp(2 c_k x_k)]`` per coordinate.

        Used for the mean/variance of log-scale hyperparameters
        ``v = low * exp(c x)`` with ``c = log(high / low)``.  Closed form via the
        confluent hypergeometric function ``1F1(a; a + b; c)``; falls back to
        Gauss-Legendre quadrature of the Beta density where ``1F1`` is not
        finite.
        """
        c = np.asarray(c, dtype=float)
        m1 = special.hyp1f1(self.a, self.a + self.b, c)
        m2 = special.hyp1f1(self.a, self.a + self.b, 2.0 * c)
        bad = ~(np.isfinite(m1) & np.isfinite(m2))
        if np.any(bad):
            for k in np.flatnonzero(bad):
                m1[k], m2[k] = _quad_exp_moments(self.a[k], self.b[k], c[k])
        return m1, m2

    # -------------------------------------------------------------- distance
    def kl(self, other: ProductBeta) -> float:
        """``KL(self || other)``, closed form, summed over coordinates."""
        a, b, a2, b2 = self.a, self.b, other.a, other.b
        per = (
            special.betaln(a2, b2)
            - special.betaln(a, b)
            + (a - a2) * special.digamma(a)
            + (b - b2) * special.digamma(b)
            + (a2 - a + b2 - b) * special.digamma(a + b)
        )
        return float(np.sum(per))


def _quad_exp_moments(a: float, b: float, c: float) -> tuple[float, float]:
    """Numerical ``E[exp(c x)]``, ``E[exp(2 c x)]`` under ``Beta(a, b)``."""
    nodes, weights = np.polynomial.legendre.leggauss(400)
    x = 0.5 * (nodes + 1.0)
    w = 0.5 * weights
    x = np.clip(x, 1e-300, 1 - 1e-16)
    logpdf = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - special.betaln(a, b)
    pdf = np.exp(logpdf)
    norm = float(np.sum(w * pdf))
    m1 = float(np.sum(w * pdf * np.exp(c * x))) / norm
    m2 = float(np.sum(w * pdf * np.exp(2 * c * x))) / norm
    return m1, m2
