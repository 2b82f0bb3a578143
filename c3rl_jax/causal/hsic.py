"""HSIC independence test with the gamma approximation (Gretton et al. 2007), and ANM-MM's
causal-direction rule built on it.

Both variables get a Gaussian kernel exp(-||a - b||^2 / med), med the median of the nonzero
pairwise squared distances (the median heuristic). With H = I - 11^T/n, Kc = H K H,
Lc = H L H, the statistic is n * HSIC_b = sum(Kc * Lc) / n; under independence it is
approximated by a gamma law matched to the null mean and variance of HSIC_b, and the test
rejects independence at level alpha when the statistic exceeds that law's 1 - alpha quantile.
Everything here is jittable and vmappable (pure functions of arrays).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax.causal.gppom import GPPOMConfig, GPPOMFit, fit_gppom, fit_gppom_batch, sq_dist
from c3rl_jax.errors import check

__all__ = [
    "DirectionResult",
    "HSICTest",
    "causal_direction",
    "gamma_ppf",
    "hsic_gamma_test",
    "hsic_statistic",
    "median_heuristic_gram",
]

MIN_POINTS = 8


class HSICTest(NamedTuple):
    """Result of ``hsic_gamma_test`` (all scalars, or [B] when vmapped).

    statistic: n * HSIC_b; threshold: the gamma law's 1 - alpha quantile; p_value;
    shape, scale: the fitted gamma law; reject: statistic > threshold (dependence found).
    """

    statistic: jax.Array
    threshold: jax.Array
    p_value: jax.Array
    shape: jax.Array
    scale: jax.Array
    reject: jax.Array

    @property
    def ratio(self) -> jax.Array:
        """statistic / threshold: below 1 means 'independent at this level'."""
        return self.statistic / self.threshold


def _as_2d(a: jax.Array) -> jax.Array:
    a = jnp.asarray(a)
    return a[:, None] if a.ndim == 1 else a


def median_heuristic_gram(a: jax.Array) -> jax.Array:
    """Gaussian Gram matrix [n, n] of a [n] or [n, d], width from the median heuristic.

    Zero distances (duplicates) are left out of the median; if all are zero the width is 1.
    """
    a = _as_2d(a)
    n = a.shape[0]
    sq = sq_dist(a, a)
    iu = jnp.triu_indices(n, k=1)
    d = sq[iu]
    med = jnp.nanmedian(jnp.where(d > 0, d, jnp.nan))
    med = jnp.where(jnp.isfinite(med) & (med > 0), med, 1.0)
    return jnp.exp(-sq / med)


def _centre(K: jax.Array) -> jax.Array:
    row = jnp.mean(K, axis=1)
    col = jnp.mean(K, axis=0)
    return K - row[:, None] - col[None, :] + jnp.mean(K)


def hsic_statistic(x: jax.Array, y: jax.Array) -> jax.Array:
    """n * HSIC_b (biased empirical HSIC times n) of x [n(, dx)], y [n(, dy)]."""
    K = median_heuristic_gram(x)
    L = median_heuristic_gram(y)
    return jnp.sum(_centre(K) * _centre(L)) / K.shape[0]


hsic_statistic = jax.jit(hsic_statistic)


@functools.partial(jax.jit, static_argnames="iters")
def gamma_ppf(q: jax.Array, shape: jax.Array, scale: jax.Array, iters: int = 100) -> jax.Array:
    """Quantile function of the gamma law (shape k, scale s), by bisection on the
    regularised lower incomplete gamma function. Jittable; scalars or broadcastable arrays."""
    q, shape, scale = jnp.broadcast_arrays(*(jnp.asarray(v) for v in (q, shape, scale)))
    dtype = jnp.result_type(q.dtype, shape.dtype, scale.dtype, jnp.float32)
    q, shape = q.astype(dtype), shape.astype(dtype)
    # upper bracket in standard units: mean + generous multiple of the std, plus a margin
    hi = shape + 50.0 * jnp.sqrt(shape) + 100.0
    lo = jnp.zeros_like(hi)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = jax.scipy.special.gammainc(shape, mid) < q
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (lo, hi))
    return 0.5 * (lo + hi) * scale.astype(dtype)


@jax.jit
def hsic_gamma_test(x: jax.Array, y: jax.Array, alpha: float = 0.05) -> HSICTest:
    """Gamma-approximation HSIC test of independence of x [n(, dx)] and y [n(, dy)].

    Jitted (alpha is traced, so any level reuses the program) and vmappable; needs n >= 8.
    """
    x, y = _as_2d(x), _as_2d(y)
    n = x.shape[0]
    check(y.shape[0] == n, "y.shape", y.shape, f"the same number of samples as x.shape={x.shape}")
    check(n >= MIN_POINTS, "n (samples)", n, f"at least {MIN_POINTS} for the HSIC gamma test")
    K = median_heuristic_gram(x)
    L = median_heuristic_gram(y)
    Kc, Lc = _centre(K), _centre(L)
    stat = jnp.sum(Kc * Lc) / n
    off = 1.0 - jnp.eye(n, dtype=K.dtype)
    v = (Kc * Lc / 6.0) ** 2
    var = jnp.sum(v * off) / (n * (n - 1))
    var = var * 72.0 * (n - 4) * (n - 5) / (n * (n - 1) * (n - 2) * (n - 3))
    mu_x = jnp.sum(K * off) / (n * (n - 1))
    mu_y = jnp.sum(L * off) / (n * (n - 1))
    mean = (1.0 + mu_x * mu_y - mu_x - mu_y) / n
    shape = mean**2 / var
    scale = var * n / mean
    thresh = gamma_ppf(1.0 - alpha, shape, scale)
    p_value = jax.scipy.special.gammaincc(shape, stat / scale)
    return HSICTest(stat, thresh, p_value, shape, scale, stat > thresh)


class DirectionResult(NamedTuple):
    """Outcome of ``causal_direction``.

    direction: +1 if x -> y is preferred, -1 if y -> x, 0 if the two ratios tie.
    ratio_xy: HSIC statistic / threshold between theta of the fit x -> y and x (ratio_yx
    likewise for y -> x); the direction whose theta is more independent of its cause wins.
    """

    direction: int
    ratio_xy: float
    ratio_yx: float
    test_xy: HSICTest
    test_yx: HSICTest
    fit_xy: GPPOMFit
    fit_yx: GPPOMFit


def causal_direction(
    x: Any,
    y: Any,
    key: jax.Array,
    config: GPPOMConfig | None = None,
    alpha: float = 0.05,
) -> DirectionResult:
    """ANM-MM's direction rule: fit GPPOM x -> y and y -> x, test each theta against its
    putative cause with the HSIC gamma test, prefer the smaller statistic/threshold ratio.

    x [n] or [n, dx], y [n] or [n, dy]. With dx == dy both fits run as one vmapped batch.
    The same key (used for both fits) gives the same answer.
    """
    check(0.0 < float(alpha) < 1.0, "alpha", alpha, "a level in (0, 1)")
    x = np.asarray(x)
    y = np.asarray(y)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    check(x.ndim == 2 and y.ndim == 2, "x.ndim, y.ndim", (x.ndim, y.ndim), "1 or 2 each")
    check(
        x.shape[0] == y.shape[0],
        "y.shape",
        y.shape,
        f"the same number of samples as x.shape={x.shape}",
    )
    if x.shape[1] == y.shape[1]:
        fits = fit_gppom_batch(np.stack([x, y]), np.stack([y, x]), jnp.stack([key, key]), config)
        fit_xy = jax.tree_util.tree_map(lambda a: a[0], fits)
        fit_yx = jax.tree_util.tree_map(lambda a: a[1], fits)
    else:
        fit_xy = fit_gppom(x, y, key, config)
        fit_yx = fit_gppom(y, x, key, config)
    xj = jnp.asarray(x, jnp.float32)
    yj = jnp.asarray(y, jnp.float32)
    test_xy = hsic_gamma_test(fit_xy.theta, xj, alpha)
    test_yx = hsic_gamma_test(fit_yx.theta, yj, alpha)
    r_xy, r_yx = float(test_xy.ratio), float(test_yx.ratio)
    direction = 1 if r_xy < r_yx else (-1 if r_yx < r_xy else 0)
    return DirectionResult(direction, r_xy, r_yx, test_xy, test_yx, fit_xy, fit_yx)
