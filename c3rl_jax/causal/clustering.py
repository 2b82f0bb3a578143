"""From per-sample latents theta to agent-level soft clusters and the sharing matrix P.

A Gaussian mixture (scikit-learn, explicit integer seed) on theta [n, d] gives each sample
responsibilities R [n, K]. Agent n's soft assignment is the mean responsibility of its own
samples, v_n = mean_{i: agent_i = n} R_i  (V [N, K], rows sum to one); the similarity is
S = V V^T [N, N] (symmetric, nonnegative) and the sharing matrix is S with its rows
normalised, P [N, N] (row-stochastic). Host-side NumPy; P goes back to JAX as an array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from c3rl_jax.errors import check

__all__ = [
    "SharingResult",
    "adjusted_rand_index",
    "agent_labels",
    "agent_soft_assignments",
    "cluster_agents",
    "fit_gmm",
    "sharing_from_theta",
    "sharing_matrix",
    "similarity_matrix",
    "soft_assignments",
]

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _theta_2d(theta: Any) -> np.ndarray:
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim == 1:
        theta = theta[:, None]
    ok = theta.ndim == 2 and theta.shape[0] >= 1
    check(ok, "theta.shape", theta.shape, "shape [n, d] or [n]")
    bad = int(np.sum(~np.isfinite(theta)))
    check(bad == 0, "theta non-finite entries", bad, "0 (no NaN or inf)")
    return theta


def _component_range(n_components: int | Sequence[int], n: int) -> list[int]:
    if isinstance(n_components, int | np.integer):
        candidates = [int(n_components)]
    else:
        candidates = sorted({int(k) for k in n_components})
    check(bool(candidates) and candidates[0] >= 1, "n_components", n_components, "integers >= 1")
    usable = [k for k in candidates if k <= n]
    check(bool(usable), "n_components", n_components, f"at least one candidate <= n={n} samples")
    return usable


def fit_gmm(
    theta: Any,
    n_components: int | Sequence[int] = 2,
    seed: int = 0,
    covariance_type: str = "full",
    n_init: int = 3,
    standardize: bool = True,
) -> GaussianMixture:
    """Fit a Gaussian mixture to theta [n, d]; with several candidate component counts
    (e.g. ``range(1, 6)``) the one with the lowest BIC wins (ties: fewer components).

    ``standardize`` rescales theta per column first (GPPOM's theta scale is arbitrary).
    The returned model carries ``.theta_mean_`` / ``.theta_scale_`` used for that.
    """
    theta = _theta_2d(theta)
    check(
        covariance_type in _COVARIANCE_TYPES,
        "covariance_type",
        covariance_type,
        f"one of {_COVARIANCE_TYPES}",
    )
    check(int(n_init) >= 1, "n_init", n_init, "an integer >= 1")
    mean = theta.mean(axis=0) if standardize else np.zeros(theta.shape[1])
    scale = theta.std(axis=0) if standardize else np.ones(theta.shape[1])
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (theta - mean) / scale
    best, best_bic = None, np.inf
    for k in _component_range(n_components, theta.shape[0]):
        gmm = GaussianMixture(
            n_components=k,
            covariance_type=covariance_type,
            n_init=int(n_init),
            random_state=int(seed),
            reg_covar=1e-6,
        ).fit(z)
        bic = gmm.bic(z)
        if bic < best_bic - 1e-9:
            best, best_bic = gmm, bic
    best.theta_mean_ = mean
    best.theta_scale_ = scale
    return best


def soft_assignments(gmm: GaussianMixture, theta: Any) -> np.ndarray:
    """Responsibilities R [n, K] (rows sum to one) of theta [n, d] under a ``fit_gmm`` model."""
    theta = _theta_2d(theta)
    return gmm.predict_proba((theta - gmm.theta_mean_) / gmm.theta_scale_)


def agent_soft_assignments(resp: Any, agent_ids: Any, n_agents: int) -> np.ndarray:
    """V [N, K]: mean responsibility of each agent's samples (R [n, K], agent_ids [n]).

    An agent without samples gets the uniform row 1/K (it carries no evidence).
    """
    resp = np.asarray(resp, dtype=np.float64)
    ids = np.asarray(agent_ids)
    check(resp.ndim == 2, "resp.shape", resp.shape, "shape [n, K]")
    check(ids.shape == (resp.shape[0],), "agent_ids.shape", ids.shape, f"({resp.shape[0]},)")
    check(np.issubdtype(ids.dtype, np.integer), "agent_ids.dtype", str(ids.dtype), "integers")
    check(int(n_agents) >= 1, "n_agents", n_agents, "an integer >= 1")
    if ids.size:
        check(
            ids.min() >= 0 and ids.max() < n_agents,
            "agent_ids range",
            (int(ids.min()), int(ids.max())),
            f"within [0, n_agents={n_agents})",
        )
    k = resp.shape[1]
    sums = np.zeros((int(n_agents), k))
    np.add.at(sums, ids, resp)
    counts = np.bincount(ids, minlength=int(n_agents)).astype(np.float64)
    out = np.full((int(n_agents), k), 1.0 / k)
    has = counts > 0
    out[has] = sums[has] / counts[has, None]
    return out


def similarity_matrix(V: Any) -> np.ndarray:
    """S = V V^T [N, N] from soft assignments V [N, K]."""
    V = np.asarray(V, dtype=np.float64)
    return V @ V.T


def sharing_matrix(S: Any) -> np.ndarray:
    """P [N, N]: S with rows normalised to sum to one (a zero row becomes uniform)."""
    S = np.asarray(S, dtype=np.float64)
    check(S.ndim == 2 and S.shape[0] == S.shape[1], "S.shape", S.shape, "a square [N, N] shape")
    check(bool(np.all(S >= 0)), "S.min", float(S.min()), "nonnegative entries")
    rows = S.sum(axis=1, keepdims=True)
    return np.where(rows > 0, S / np.where(rows > 0, rows, 1.0), 1.0 / S.shape[0])


def agent_labels(V: Any) -> np.ndarray:
    """Hard agent-level cluster labels [N]: argmax of each agent's soft assignment."""
    return np.argmax(np.asarray(V), axis=1)


def adjusted_rand_index(labels_true: Any, labels_pred: Any) -> float:
    """Adjusted Rand index between two labelings (1: identical partitions, ~0: chance)."""
    return float(adjusted_rand_score(np.asarray(labels_true), np.asarray(labels_pred)))


class SharingResult(NamedTuple):
    """P [N, N] row-stochastic, V [N, K], S [N, N], agent_labels [N], resp [n, K],
    n_components (the K chosen), gmm (the fitted model)."""

    P: np.ndarray
    V: np.ndarray
    S: np.ndarray
    agent_labels: np.ndarray
    resp: np.ndarray
    n_components: int
    gmm: GaussianMixture

    @property
    def sharing(self) -> np.ndarray:
        """Alias of P."""
        return self.P

    @property
    def assignments(self) -> np.ndarray:
        """Alias of V."""
        return self.V

    @property
    def labels(self) -> np.ndarray:
        """Alias of agent_labels."""
        return self.agent_labels


def sharing_from_theta(
    theta: Any,
    agent_ids: Any,
    n_agents: int,
    n_components: int | Sequence[int] = range(1, 6),
    seed: int = 0,
    covariance_type: str = "full",
    n_init: int = 3,
) -> SharingResult:
    """theta [n, d] and agent_ids [n] -> P [N, N], V [N, K], agent labels [N] (and more).

    ``n_components`` is a fixed count or a range searched by BIC. P is float32 (ready for
    ``jnp.asarray``); the rest float64.
    """
    theta = _theta_2d(theta)
    ids = np.asarray(agent_ids)
    check(ids.shape == (theta.shape[0],), "agent_ids.shape", ids.shape, f"({theta.shape[0]},)")
    gmm = fit_gmm(theta, n_components, seed, covariance_type, n_init)
    resp = soft_assignments(gmm, theta)
    V = agent_soft_assignments(resp, ids, n_agents)
    S = similarity_matrix(V)
    P = sharing_matrix(S).astype(np.float32)
    return SharingResult(P, V, S, agent_labels(V), resp, int(gmm.n_components), gmm)


def cluster_agents(
    theta: Any,
    agent_ids: Any,
    n_agents: int,
    n_components: int | None = None,
    max_components: int = 6,
    seed: int = 0,
) -> SharingResult:
    """``sharing_from_theta`` with the training loop's settings: a fixed ``n_components``,
    or (None) the BIC choice over 1..max_components."""
    if n_components is None:
        check(int(max_components) >= 1, "max_components", max_components, "an integer >= 1")
        candidates: int | Sequence[int] = range(1, int(max_components) + 1)
    else:
        candidates = int(n_components)
    return sharing_from_theta(theta, agent_ids, n_agents, candidates, seed)
