"""From per-sample latents theta to agent-level soft clusters and the sharing matrix P.

A Gaussian mixture (scikit-learn, explicit integer seed) on theta [n, d] gives each sample
responsibilities R [n, K]. Agent n's soft assignment is the mean responsibility of its own
samples, v_n = mean_{i: agent_i = n} R_i  (V [N, K], rows sum to one); the similarity is
S = V V^T [N, N] (symmetric, nonnegative) and the sharing matrix is S with its rows
normalised, P [N, N] (row-stochastic). Host-side NumPy; P goes back to JAX as an array.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture

from c3rl_jax.errors import check

__all__ = [
    "CRITERIA",
    "SharingResult",
    "adjusted_rand_index",
    "align_mixture",
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


CRITERIA = ("bic", "silhouette")
MIN_SILHOUETTE = 0.5  # below it at every K >= 2, the points are taken as one cluster
K_MARGIN = 0.05  # the silhouette a new K must gain over the previous rebuild's K to replace it


def fit_gmm(
    theta: Any,
    n_components: int | Sequence[int] = 2,
    seed: int = 0,
    covariance_type: str = "full",
    n_init: int = 3,
    standardize: bool = True,
    criterion: str = "bic",
    min_silhouette: float = MIN_SILHOUETTE,
    previous_k: int | None = None,
) -> GaussianMixture:
    """Fit a Gaussian mixture to theta [n, d]; with several candidate component counts
    (e.g. ``range(1, 6)``) the ``criterion`` picks one: "bic", the lowest BIC (ties: fewer
    components), or "silhouette", the K >= 2 whose hard labels have the highest silhouette,
    provided it exceeds ``min_silhouette``, else the smallest candidate; given the
    ``previous_k`` >= 2 of the rebuild before, that K is kept unless another beats its
    silhouette by more than K_MARGIN (environments do not change: a near tie is no reason
    to regroup, and flipping K flips P). BIC suits many
    per-sample latents; on a few agent-level points (20 agents) it picks too many components,
    where the silhouette rule does not (benchmarks/mechanisms.py). Its limit: in one
    dimension even 20 structureless points reach a silhouette of 0.5-0.65 at some K, so a
    population without groups may still be split.

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
    check(criterion in CRITERIA, "criterion", criterion, f"one of {CRITERIA}")
    check(int(n_init) >= 1, "n_init", n_init, "an integer >= 1")
    mean = theta.mean(axis=0) if standardize else np.zeros(theta.shape[1])
    scale = theta.std(axis=0) if standardize else np.ones(theta.shape[1])
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (theta - mean) / scale
    candidates = _component_range(n_components, theta.shape[0])

    def fit(k: int) -> GaussianMixture:
        return GaussianMixture(
            n_components=k,
            covariance_type=covariance_type,
            n_init=int(n_init),
            random_state=int(seed),
            reg_covar=1e-6,
        ).fit(z)

    if criterion == "bic":
        best, best_score = None, np.inf
        for k in candidates:
            gmm = fit(k)
            score = gmm.bic(z)
            if score < best_score - 1e-9:
                best, best_score = gmm, score
    else:
        scores = {}
        for k in (k for k in candidates if k >= 2):
            gmm = fit(k)
            labels = gmm.predict(z)
            if 2 <= len(np.unique(labels)) < len(z):
                scores[k] = (silhouette_score(z, labels), gmm)
        best, best_score = None, min_silhouette
        for score, gmm in scores.values():
            if score > best_score:
                best, best_score = gmm, score
        if previous_k in scores and best is not None:
            kept_score, kept = scores[previous_k]
            if best_score <= kept_score + K_MARGIN:
                best = kept
        best = best or fit(candidates[0])
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


def sharing_from_theta(
    theta: Any,
    agent_ids: Any,
    n_agents: int,
    n_components: int | Sequence[int] = range(1, 6),
    seed: int = 0,
    covariance_type: str = "full",
    n_init: int = 3,
    criterion: str = "bic",
    previous_k: int | None = None,
) -> SharingResult:
    """theta [n, d] and agent_ids [n] -> P [N, N], V [N, K], agent labels [N] (and more).

    ``n_components`` is a fixed count or a range searched by ``criterion`` (see
    ``fit_gmm``, also for ``previous_k``). P is float32 (ready for ``jnp.asarray``); the
    rest float64.
    """
    theta = _theta_2d(theta)
    ids = np.asarray(agent_ids)
    check(ids.shape == (theta.shape[0],), "agent_ids.shape", ids.shape, f"({theta.shape[0]},)")
    gmm = fit_gmm(
        theta,
        n_components,
        seed,
        covariance_type,
        n_init,
        criterion=criterion,
        previous_k=previous_k,
    )
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
    criterion: str = "bic",
    previous_k: int | None = None,
) -> SharingResult:
    """``sharing_from_theta`` with the training loop's settings: a fixed ``n_components``,
    or (None) the ``criterion``'s choice over 1..max_components (``previous_k``: the K of
    the rebuild before, see ``fit_gmm``)."""
    if n_components is None:
        check(int(max_components) >= 1, "max_components", max_components, "an integer >= 1")
        candidates: int | Sequence[int] = range(1, int(max_components) + 1)
    else:
        candidates = int(n_components)
    return sharing_from_theta(
        theta, agent_ids, n_agents, candidates, seed, criterion=criterion, previous_k=previous_k
    )


_COMPONENT_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def align_mixture(result: SharingResult, previous_labels: Any) -> SharingResult:
    """`result` with its mixture components reordered so that agent labels agree with
    `previous_labels` [N] as far as possible (a maximum-overlap matching of components to
    previous labels; components left unmatched keep their order after the matched ones).

    Only names change: P, S and the partition are the same, and the GMM (its arrays
    permuted alike) still gives `result.V`'s columns in the new order.
    """
    V = np.asarray(result.V)
    previous = np.asarray(previous_labels)
    check(
        previous.shape == (V.shape[0],), "previous_labels.shape", previous.shape, f"({V.shape[0]},)"
    )
    width = max(V.shape[1], int(previous.max()) + 1)
    overlap = V.T @ np.eye(width)[previous]  # [K, width]: soft count of k's agents labelled j
    rows, cols = linear_sum_assignment(-overlap)
    order = rows[np.argsort(cols)]  # new column i = old column order[i]
    gmm = copy.deepcopy(result.gmm)  # `result` keeps its own, unpermuted mixture
    shared = gmm.covariance_type == "tied"  # one covariance for all components
    for name in _COMPONENT_ARRAYS[:2] if shared else _COMPONENT_ARRAYS:
        setattr(gmm, name, getattr(gmm, name)[order])
    V = V[:, order]
    return result._replace(
        V=V, resp=np.asarray(result.resp)[:, order], agent_labels=agent_labels(V), gmm=gmm
    )
