"""The equations of S2E (the seed slides, "Derive a Search Algorithm": Algorithm 2 and Proposition 1).

With ``J(theta) = E_{x ~ p_theta}[f(x)]`` minimised over the product-Beta
``p_theta`` (:class:`searchers.beta.ProductBeta`):

* :func:`importance_weights`, :func:`weighted_utilities`: samples of earlier
  rounds reused under the current theta, and their costs;
* :func:`estimate_gradient`: ``grad J = E[f(x) grad log p_theta(x)]``, the
  log-likelihood trick (the slides' gradient; Algorithm 2, step 7);
* :func:`estimate_hessian`: ``grad^2 J = E[f(x) (grad^2 log p_theta(x) + s s^T)]``,
  ``s = grad log p_theta(x)`` (Proposition 1; Algorithm 2, step 7);
* :func:`newton_direction` / :func:`damped_newton_step`: the Newton step
  ``-[grad^2 J]^{-1} grad J`` (Algorithm 2, step 8), and
  :func:`trust_region_update`: theta moved along it;
* :func:`param_moments`: mean and variance of each hyperparameter under
  ``p_theta`` in its own units (for the history).

Departures from the authors' reference code, all aimed at a lower-variance,
always-improving step:

* every one of the K samples is used, through a *utility transform* of f
  (:func:`utility_transform`; centred ranks by default: invariant to monotone
  transforms of the metric, robust to outliers and to NaN/inf, and zero-mean,
  i.e. baseline-subtracted);
* the Hessian is the full ``2d x 2d`` matrix of Proposition 1 and the step is a
  true matrix-vector Newton step;
* *curvature pooling* (:func:`damped_newton_step`): K samples cannot pin down a
  ``2d x 2d`` Hessian, so the estimate is whitened by the Fisher information
  ``F = -grad^2 log p`` (known exactly, independent of x;
  :func:`fisher_inv_sqrt`) and averaged over rounds with weight
  ``hessian_memory`` on the past (an exponential moving average, like the
  covariance learning rate of CMA-ES); ``hessian_memory=0`` is per-round;
* *damping* (:func:`whitened_newton_step`): the eigenvalues of the whitened
  Hessian are replaced by their absolute values ("saddle-free Newton") and
  floored at ``eig_floor`` times the largest one.  The damped matrix is
  positive definite, so the step is always a descent direction of the
  estimated J (``eig_floor = 1`` gives the natural gradient ``-F^{-1} grad J``);
* *trust region* (:func:`trust_region_update`): ``KL(p_old || p_new) <=
  max_kl`` (``kl_per_param`` per hyperparameter; quadratic model ``0.5
  dtheta^T F dtheta``, checked on the exact KL with backtracking), then theta
  is clipped to ``[1, theta_max]`` so each Beta stays proper and unimodal.  By
  default (``fill_trust_region``) the damped Newton direction is followed to
  the trust-region boundary: the curvature from a few noisy samples is good
  for the direction but its implied step length is not (it is dominated by
  sampling noise and comes out far too short); ``fill_trust_region=False``
  takes Newton's own length, capped by the region.

Pure numpy/scipy: no ray, no torch.  How :class:`searchers.s2e_core.S2E`
assembles these into the search is described there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from noisylabels.spaces import Param
from searchers.beta import ProductBeta

__all__ = [
    "HESSIANS",
    "STEPS",
    "UTILITIES",
    "damped_newton_step",
    "estimate_gradient",
    "estimate_hessian",
    "fisher_inv_sqrt",
    "importance_weights",
    "mixture_weights",
    "newton_direction",
    "param_moments",
    "pooled_weights",
    "sample_weights",
    "sanitize_values",
    "trust_region_update",
    "utility_transform",
    "weighted_utilities",
    "whitened_newton_step",
]

UTILITIES = ("rank", "weighted", "standardize", "raw")
STEPS = ("newton", "natural", "gradient")
REUSE_WEIGHTS = ("ratio", "mixture")
HESSIANS = ("full", "block")


# ------------------------------------------------------------------ moments
def param_moments(dist: ProductBeta, params: Sequence[Param]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each hyperparameter *in its own units* under ``dist``.

    Linear parameters: ``low + (high - low) x`` with ``x ~ Beta(a, b)``.
    Log parameters: the value ``v = low * (high/low)^x`` itself (not its log),
    via ``E[exp(c x)] = 1F1(a; a + b; c)``, ``c = log(high / low)``.
    """
    mean_u, var_u = dist.mean(), dist.var()
    means = np.empty(len(params))
    var = np.empty(len(params))
    logs = np.array([p.log for p in params])
    if np.any(logs):
        c = np.array([math.log(p.high / p.low) if p.log else 0.0 for p in params])
        m1, m2 = dist.exp_moments(c)
    for k, p in enumerate(params):
        if p.log:
            means[k] = p.low * m1[k]
            var[k] = max(p.low * p.low * (m2[k] - m1[k] * m1[k]), 0.0)
        else:
            span = p.high - p.low
            means[k] = p.low + span * mean_u[k]
            var[k] = span * span * var_u[k]
    return means, var


# ---------------------------------------------------------------- utilities
def sanitize_values(values: Sequence[float]) -> np.ndarray:
    """Replace non-finite values (NaN, +-inf: failed evaluations) by the worst
    finite value of the round (largest, as f is minimised); all non-finite -> 0."""
    f = np.asarray(values, dtype=float).copy()
    ok = np.isfinite(f)
    if not np.any(ok):
        return np.zeros_like(f)
    f[~ok] = np.max(f[ok])
    return f


def utility_transform(values: Sequence[float], kind: str = "rank") -> np.ndarray:
    """Turn K raw values of f (to be *minimised*) into K costs used in place of f.

    * ``"rank"``: centred ranks in ``[-0.5, 0.5]`` (best -> -0.5), ties averaged;
    * ``"weighted"``: CMA-ES log-rank weights on the best half, centred;
    * ``"standardize"``: ``(f - mean f) / std f``;
    * ``"raw"``: f itself (no baseline), the plain estimator of Proposition 1.

    All but ``"raw"`` are zero-mean, i.e. baseline-subtracted: since
    ``E[grad log p] = 0`` and ``E[grad^2 log p + s s^T] = 0`` a constant
    baseline leaves both estimators' expectations (up to O(1/K)) unchanged
    while cutting their variance.  Non-finite values count as the worst value.
    """
    f = sanitize_values(values)
    k = f.shape[0]
    if kind == "raw":
        return f
    if k < 2 or np.all(f == f[0]):
        return np.zeros(k)
    if kind == "rank":
        r = stats.rankdata(f) - 1.0  # 0 = best, ties averaged
        return r / (k - 1) - 0.5
    if kind == "weighted":
        mu = k / 2.0
        raw_w = np.maximum(0.0, math.log(mu + 0.5) - np.log(np.arange(1, k + 1)))
        raw_w /= raw_w.sum()
        order = stats.rankdata(f, method="ordinal") - 1
        w = raw_w[order]
        # average the weights over ties so equal values get equal cost
        for v in np.unique(f):
            idx = f == v
            if idx.sum() > 1:
                w[idx] = w[idx].mean()
        return -(w - 1.0 / k)
    if kind == "standardize":
        sd = f.std()
        return (f - f.mean()) / sd
    raise ValueError(f"unknown utility {kind!r}; choose one of {UTILITIES}")


def sample_weights(n: int, weights: np.ndarray | None) -> np.ndarray:
    """``weights`` normalised to sum 1, or the uniform ``1/n`` when ``None``."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def importance_weights(dist: ProductBeta, drawn_from: Sequence[tuple[ProductBeta, np.ndarray]]) -> np.ndarray:
    """Self-normalised importance weights ``p_theta(x) / q(x)`` (summing to 1)
    of samples ``x`` drawn from earlier distributions ``q``, for reusing them
    under the current ``dist``; ``drawn_from`` lists ``(q, samples)`` per round,
    in the order the samples are concatenated."""
    xs = np.concatenate([x for _, x in drawn_from])
    log_q = np.concatenate([q.log_density(x) for q, x in drawn_from])
    return _self_normalised(dist.log_density(xs) - log_q)


def mixture_weights(dist: ProductBeta, drawn_from: Sequence[tuple[ProductBeta, np.ndarray]]) -> np.ndarray:
    """Self-normalised *mixture* (balance-heuristic) weights ``p_theta(x) / (sum_m n_m q_m(x) / n)``
    of samples drawn from the earlier distributions ``q_m`` (``n_m`` samples each), for reusing them
    under ``dist``.  Unlike the per-round ratios of :func:`importance_weights`, each sample is
    weighed against the whole mixture it could have come from, so a sample that the latest step
    moved towards is not up-weighted by that step alone; the weights stay bounded by ``n / n_m``
    times the ratio to the nearest ``q_m``."""
    xs = np.concatenate([x for _, x in drawn_from])
    n = xs.shape[0]
    log_parts = np.stack([np.log(x.shape[0] / n) + q.log_density(xs) for q, x in drawn_from])
    top = log_parts.max(axis=0)
    log_mix = top + np.log(np.exp(log_parts - top).sum(axis=0))
    return _self_normalised(dist.log_density(xs) - log_mix)


def _self_normalised(log_w: np.ndarray) -> np.ndarray:
    """Weights ``exp(log_w)`` scaled to sum 1 (shifted by the maximum first, so none overflows)."""
    weights = np.exp(log_w - log_w.max())
    return weights / weights.sum()


def pooled_weights(dist: ProductBeta, rounds: Sequence[Mapping], rule: str) -> np.ndarray | None:
    """The reuse weights of the pooled samples of ``rounds`` (each ``{"a", "b", "x"}``: the
    distribution it was drawn from and its samples) under ``dist``: ``rule`` ``"ratio"``
    (:func:`importance_weights`) or ``"mixture"`` (:func:`mixture_weights`); ``None`` (uniform)
    for a single round."""
    if len(rounds) <= 1:
        return None
    drawn_from = [(ProductBeta(np.array(r["a"]), np.array(r["b"])), r["x"]) for r in rounds]
    return (mixture_weights if rule == "mixture" else importance_weights)(dist, drawn_from)


def weighted_utilities(costs: Sequence[float], kind: str, weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`utility_transform` of pooled samples' costs, re-centred on their
    ``weights``-weighted mean (the baseline; ``"raw"`` is left as is)."""
    f = utility_transform(costs, kind)
    if kind != "raw":
        f = f - (sample_weights(f.shape[0], weights) * f).sum()  # weighted baseline
    return f


# --------------------------------------------------------------- estimators
def estimate_gradient(scores: np.ndarray, f: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Monte-Carlo ``grad J ~= (1/K) sum_i f_i grad log p_theta(x_i)`` (slide
    "Derive a Search Algorithm", log-likelihood trick; Algorithm 2, step 7).

    ``weights`` (normalised to sum 1; default ``1/K``) are self-normalised
    importance weights when some samples were drawn from earlier thetas.
    """
    scores = np.asarray(scores, dtype=float)
    f = np.asarray(f, dtype=float)
    return scores.T @ (sample_weights(f.shape[0], weights) * f)


def estimate_hessian(
    scores: np.ndarray,
    hess_logp: np.ndarray,
    f: np.ndarray,
    structure: str = "full",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Monte-Carlo Hessian of Proposition 1 (Algorithm 2, step 7):

    ``grad^2 J ~= (1/K) sum_i f_i (grad^2 log p_theta + s_i s_i^T)``,
    ``s_i = grad log p_theta(x_i)``.  ``grad^2 log p_theta`` does not depend on
    x for the product-Beta.  ``structure="block"`` keeps only the 2x2 block of
    each hyperparameter (drops the cross-parameter coupling of ``s s^T``).
    ``weights`` as in :func:`estimate_gradient`.
    """
    scores = np.asarray(scores, dtype=float)
    f = np.asarray(f, dtype=float)
    wf = sample_weights(f.shape[0], weights) * f
    h = wf.sum() * np.asarray(hess_logp, dtype=float) + (scores * wf[:, None]).T @ scores
    if structure == "block":
        mask = np.kron(np.eye(h.shape[0] // 2), np.ones((2, 2)))
        h = h * mask
    elif structure != "full":
        raise ValueError(f"unknown Hessian structure {structure!r}; choose one of {HESSIANS}")
    return 0.5 * (h + h.T)


# -------------------------------------------------------------- Newton step
def fisher_inv_sqrt(fisher: np.ndarray) -> np.ndarray:
    """Symmetric ``F^{-1/2}``: maps theta-space vectors to the Fisher-whitened
    coordinates in which the KL is (locally) the Euclidean norm."""
    lam, vecs = np.linalg.eigh(fisher)
    lam = np.maximum(lam, 1e-300)
    return (vecs / np.sqrt(lam)) @ vecs.T


def whitened_newton_step(grad_w: np.ndarray, hess_w: np.ndarray, eig_floor: float) -> np.ndarray:
    """Damped Newton step ``-H_damped^{-1} g`` in Fisher-whitened coordinates.

    Damping (saddle-free + floor): each eigenvalue ``lambda`` of ``hess_w`` is
    replaced by ``max(|lambda|, eig_floor * max|lambda|)``.  The damped matrix
    is positive definite, so ``g^T step < 0``: an improving direction for the
    minimised J whatever the sampling noise in H.
    """
    lam, vecs = np.linalg.eigh(0.5 * (hess_w + hess_w.T))
    lam = np.abs(lam)
    top = float(lam.max()) if lam.size else 0.0
    if not np.isfinite(top) or top <= 0.0:
        return -np.asarray(grad_w, dtype=float)
    lam = np.maximum(lam, max(eig_floor, 1e-12) * top)
    return -vecs @ ((vecs.T @ grad_w) / lam)


def damped_newton_step(
    grad: np.ndarray,
    hess: np.ndarray,
    fisher: np.ndarray,
    *,
    eig_floor: float,
    past_hess_w: np.ndarray | None = None,
    hessian_memory: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The damped Newton direction of Algorithm 2, step 8, and the whitened
    Hessian it used: ``(d, H_w)``.  The one Newton path of S2E.

    With ``W = F^{-1/2}`` (:func:`fisher_inv_sqrt`) the Hessian is whitened,
    ``H_w = W H W``; if ``past_hess_w`` (the previous round's ``H_w``) is given
    and ``hessian_memory > 0`` it is pooled, ``H_w = m past + (1 - m) W H W``
    (curvature pooling: K samples cannot pin down a ``2d x 2d`` Hessian, and
    whitening makes the rounds' matrices comparable).  Then ``H_w`` is damped
    by :func:`whitened_newton_step` and the step mapped back:
    ``d = W step(W g, H_w)``, a descent direction (``g^T d < 0``) whatever the
    noise in H.  Pass the returned ``H_w`` as ``past_hess_w`` next round.
    """
    w = fisher_inv_sqrt(fisher)
    hess_w = w @ hess @ w
    if past_hess_w is not None and hessian_memory > 0:
        hess_w = hessian_memory * past_hess_w + (1 - hessian_memory) * hess_w
    return w @ whitened_newton_step(w @ grad, hess_w, eig_floor), hess_w


def newton_direction(
    grad: np.ndarray,
    hess: np.ndarray | None,
    fisher: np.ndarray,
    *,
    step: str = "newton",
    eig_floor: float = 0.5,
) -> np.ndarray:
    """Search direction of Algorithm 2, step 8 for one round (no pooling).

    ``step="newton"``: the damped Newton direction ``-H_damped^{-1} grad J`` of
    :func:`damped_newton_step` (``eig_floor = 1`` gives the natural gradient
    ``-F^{-1} g`` up to length).  ``step="natural"`` gives ``-F^{-1} grad`` and
    ``step="gradient"`` the plain ``-grad`` (first-order baselines).  The
    length is limited by the trust region (:func:`trust_region_update`).
    """
    grad = np.asarray(grad, dtype=float)
    if step == "gradient":
        return -grad
    if step == "natural":
        return -np.linalg.solve(fisher, grad)
    if step != "newton":
        raise ValueError(f"unknown step {step!r}; choose one of {STEPS}")
    if hess is None:
        raise ValueError("step='newton' needs a Hessian")
    return damped_newton_step(grad, hess, fisher, eig_floor=eig_floor)[0]


def trust_region_update(
    dist: ProductBeta,
    direction: np.ndarray,
    *,
    max_kl: float,
    theta_max: float = 1e3,
    fill: bool = False,
    max_backtracks: int = 30,
) -> tuple[ProductBeta, float]:
    """Take ``theta + t * direction`` with ``KL(p_old || p_new) <= max_kl`` (Algorithm 2, step 8).

    ``t = min(1, sqrt(max_kl / (0.5 d^T F d)))`` (quadratic model of the KL);
    theta is then projected to ``[1, theta_max]`` (the slides' projection to
    ``theta >= 1``, plus an upper cap keeping the Beta numerically sane), and
    ``t`` is halved until the *exact* KL of the projected step is within the
    region.  ``fill=True`` always scales to the boundary (``t = sqrt(max_kl /
    quad)``): for first-order directions, whose length carries no information.
    Returns the new distribution and its KL from the old one.
    """
    theta = dist.theta
    direction = np.asarray(direction, dtype=float)
    if not np.all(np.isfinite(direction)):
        return dist, 0.0
    quad = 0.5 * float(direction @ dist.fisher() @ direction)
    if quad <= 0.0:
        return dist, 0.0
    t = math.sqrt(max_kl / quad)
    if not fill:
        t = min(1.0, t)
    for _ in range(max_backtracks):
        new_theta = np.clip(theta + t * direction, 1.0, theta_max)
        new = ProductBeta.from_theta(new_theta)
        kl = dist.kl(new)
        if kl <= max_kl * 1.0001:
            return new, kl
        t *= 0.5
    return dist, 0.0
