"""GPPOM: the latent-variable GP behind ANM-MM, fitted as one jitted optax loop.

Model (Hu et al. 2018, as used by C3RL). Inputs X [n, dx] (the putative cause), outputs
Y [n, dy] (the effect), both standardised per column. Every sample gets a latent
theta_i = g_w([x_i, y_i]) in R^{d_theta} from a one-hidden-layer MLP (the back-constraint,
so new data maps to theta without refitting). With ARD RBF kernels
k(a, b) = alpha * exp(-sum_d gamma_d (a_d - b_d)^2),

    K = K_x(X, X) * K_theta(Theta, Theta) + (1/beta + jitter) I        (elementwise product)

and the fit minimises

    -log N(Y | 0, K)  (all dy columns share K)
    + 0.5 ||psi||^2          (psi: log alpha_x, log gamma_x, log alpha_t, log gamma_t, log beta)
    + 0.5 ||Theta||_F^2 + (mlp_alpha / 2) ||w||^2
    + lam * log tr(K_x H K_theta H),   H = I - 11^T / n.

Cost per step: one Cholesky of K, one explicit K^{-1} from it (the exact gradient of the
log-determinant needs every entry of K^{-1}), and O(n^2 (dx + d_theta)) elementwise work.
The data-fit terms (likelihood and HSIC) have one hand-written VJP that uses K's symmetry
(autodiff through them added transposes and layout copies: about 25-30% slower at n = 400
to 1000, and autodiff through the Cholesky itself about 1.5-1.7x), the HSIC trace is
sum((H K_x H) * K_theta) (no n^3 product), and pairwise distances are built from 2-D [n, n]
terms (see ``sq_dist``).

Choices, measured on a 2-core CPU (benchmarks/anm_mm.py): Adam with a fixed 300-step
budget (cosine-decayed step size) reaches a lower objective and a better clustering than
optax L-BFGS, whose line search also costs extra evaluations per step. The default
precision is float32: the variance floor ``jitter`` = 0.03 (standardised units, as the
original implementation's 1e-2) bounds K's condition number by about n * alpha / jitter, so
float32 gives the same ARI as float64 at half the cost; float64 is available, scoped with
``jax.enable_x64`` around the fit so the rest of the package stays float32.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.linalg import cho_solve

from c3rl_jax.causal.blas import single_thread_blas
from c3rl_jax.causal.numerics import (
    PRECISIONS,
    all_finite,
    precision_dtype,
    precision_scope,
    select,
    to_float32,
    warn_skipped,
)
from c3rl_jax.errors import check, check_int

__all__ = [
    "GPPOMConfig",
    "GPPOMFit",
    "GPPOMParams",
    "compile_gppom",
    "fit_gppom",
    "fit_gppom_arrays",
    "fit_gppom_batch",
    "gppom_loss",
]

MIN_POINTS = 8


@flax.struct.dataclass(frozen=True)
class GPPOMConfig:
    """Settings of a GPPOM fit.

    Static fields (shapes, loop length, precision) select a compiled program;
    the float fields are traced, so changing them does not recompile and they can be
    vmapped over.

    Attributes:
      d_theta: size of the latent theta per sample.
      n_hidden: hidden units of the back-constraint MLP (sigmoid).
      n_steps: optimiser steps (a fixed budget: the loop is a ``lax.scan``).
      precision: "float32" (default) or "float64" (the fit then runs inside a scoped
        ``jax.enable_x64``; results come back as float32 either way).
      lam: weight of the log-HSIC term.
      mlp_alpha: precision of the Gaussian prior on the MLP weights.
      jitter: variance added to the diagonal of K on top of 1/beta (standardised units).
      learning_rate: Adam's peak step size (cosine-decayed over ``n_steps``).
      init_log_beta: initial log noise precision.
    """

    d_theta: int = flax.struct.field(pytree_node=False, default=1)
    n_hidden: int = flax.struct.field(pytree_node=False, default=20)
    n_steps: int = flax.struct.field(pytree_node=False, default=300)
    precision: str = flax.struct.field(pytree_node=False, default="float32")
    lam: float = 1.0
    mlp_alpha: float = 0.1
    jitter: float = 0.03
    learning_rate: float = 0.05
    init_log_beta: float = 2.0

    def validate(self) -> GPPOMConfig:
        """Return self, or raise ConfigError (a ValueError) naming the bad field."""
        check_int("GPPOMConfig.d_theta", self.d_theta, 1)
        check_int("GPPOMConfig.n_hidden", self.n_hidden, 1)
        check_int("GPPOMConfig.n_steps", self.n_steps, 1)
        check(
            self.precision in PRECISIONS,
            "GPPOMConfig.precision",
            self.precision,
            f"one of {PRECISIONS}",
        )
        for name, strict in (
            ("lam", False),
            ("mlp_alpha", True),
            ("jitter", True),
            ("learning_rate", True),
            ("init_log_beta", None),
        ):
            value = getattr(self, name)
            if isinstance(value, jax.Array | np.ndarray) and np.ndim(value) > 0:
                continue  # a batched (vmapped) config: the caller checks it
            value = float(value)
            if strict is None:
                check(math.isfinite(value), f"GPPOMConfig.{name}", value, "a finite number")
            elif strict:
                check(
                    math.isfinite(value) and value > 0,
                    f"GPPOMConfig.{name}",
                    value,
                    "a finite number > 0",
                )
            else:
                check(
                    math.isfinite(value) and value >= 0,
                    f"GPPOMConfig.{name}",
                    value,
                    "a finite number >= 0",
                )
        return self


class GPPOMParams(NamedTuple):
    """Free parameters. MLP: w1 [dx+dy, h], b1 [h], w2 [h, d_theta], b2 [d_theta]."""

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array
    log_alpha_x: jax.Array  # []
    log_gamma_x: jax.Array  # [dx]
    log_alpha_t: jax.Array  # []
    log_gamma_t: jax.Array  # [d_theta]
    log_beta: jax.Array  # []

    def log_psi(self) -> jax.Array:
        """All log kernel parameters and log beta as one vector."""
        return jnp.concatenate(
            [
                self.log_alpha_x[None],
                self.log_gamma_x,
                self.log_alpha_t[None],
                self.log_gamma_t,
                self.log_beta[None],
            ]
        )


@flax.struct.dataclass(frozen=True)
class GPPOMFit:
    """Result of a GPPOM fit (a pytree: a vmapped fit has a leading batch axis everywhere).

    Attributes:
      theta: [n, d_theta] latents of the training samples.
      params: the fitted ``GPPOMParams`` (kernel parameters in log space).
      loss_history: [n_steps] objective before each step (NaN where a step was skipped).
      final_loss: [] objective at the returned parameters.
      n_skipped: [] steps whose loss or gradient was not finite (their update was skipped).
      x_mean, x_std: [dx]; y_mean, y_std: [dy]: the standardisation used by ``encode``.
    """

    theta: jax.Array
    params: GPPOMParams
    loss_history: jax.Array
    final_loss: jax.Array
    n_skipped: jax.Array
    x_mean: jax.Array
    x_std: jax.Array
    y_mean: jax.Array
    y_std: jax.Array

    @property
    def kernel_params(self) -> dict[str, jax.Array]:
        """Learned kernel parameters in natural (not log) space."""
        p = self.params
        return {
            "alpha_x": jnp.exp(p.log_alpha_x),
            "gamma_x": jnp.exp(p.log_gamma_x),
            "alpha_theta": jnp.exp(p.log_alpha_t),
            "gamma_theta": jnp.exp(p.log_gamma_t),
            "beta": jnp.exp(p.log_beta),
        }

    def encode(self, X: jax.Array, Y: jax.Array) -> jax.Array:
        """Map new data X [m, dx], Y [m, dy] to theta [m, d_theta] without refitting."""
        X = jnp.asarray(X)
        Y = jnp.asarray(Y)
        dtype = self.x_mean.dtype
        X = X[:, None] if X.ndim == 1 else X
        Y = Y[:, None] if Y.ndim == 1 else Y
        dx, dy = self.x_mean.shape[-1], self.y_mean.shape[-1]
        check(X.ndim == 2 and X.shape[1] == dx, "X.shape", X.shape, f"[m, {dx}] as fitted")
        ok = Y.ndim == 2 and Y.shape == (X.shape[0], dy)
        check(ok, "Y.shape", Y.shape, f"[m, {dy}] as fitted, m = X.shape[0]")
        xs = (X.astype(dtype) - self.x_mean) / self.x_std
        ys = (Y.astype(dtype) - self.y_mean) / self.y_std
        return _mlp(self.params, jnp.concatenate([xs, ys], axis=1))


# ----------------------------------------------------------------------------- model


def _mlp(params: GPPOMParams, xy: jax.Array) -> jax.Array:
    """Back-constraint g_w: [n, dx+dy] -> [n, d_theta]."""
    return jax.nn.sigmoid(xy @ params.w1 + params.b1) @ params.w2 + params.b2


def sq_dist(
    a: jax.Array, b: jax.Array, weights: jax.Array | None = None, gram: bool = False
) -> jax.Array:
    """sum_d w_d (a_id - b_jd)^2: [n, d], [m, d] -> [n, m].

    Built from 2-D [n, m] terms, one per input dimension (d is small here): a [n, m, d]
    broadcast has a size-d minor axis, which XLA:CPU reduces without vectorising (about 50x
    slower at n = 1000, d = 1). Many dimensions, or ``gram``, use the Gram-matrix identity
    |a|^2 + |b|^2 - 2 a b^T (clipped at 0) instead: one matmul, whose reverse-mode gradient
    is matmuls too (1.7x faster than the 2-D terms' in the agent GP's n x M kernels at
    n = 1000, M = 32, dx = 3); it rounds a self-distance to about eps |a|^2, not exactly 0.
    """
    d = a.shape[1]
    w = jnp.ones((d,), a.dtype) if weights is None else weights
    if d <= 16 and not gram:
        out = jnp.zeros((a.shape[0], b.shape[0]), a.dtype)
        for k in range(d):
            diff = a[:, k, None] - b[None, :, k]
            out = out + w[k] * diff * diff
        return out
    aw, bw = a * w, b * w
    cross = aw @ b.T
    out = jnp.sum(aw * a, axis=1)[:, None] + jnp.sum(bw * b, axis=1)[None, :] - 2.0 * cross
    return jnp.maximum(out, 0.0)


def _ard_rbf(a: jax.Array, log_alpha: jax.Array, log_gamma: jax.Array) -> jax.Array:
    """alpha * exp(-sum_d gamma_d (a_id - a_jd)^2): [n, d] -> [n, n]."""
    return jnp.exp(log_alpha - sq_dist(a, a, jnp.exp(log_gamma)))


def _centre(K: jax.Array) -> jax.Array:
    """H K H for symmetric K, in O(n^2)."""
    row = jnp.mean(K, axis=1)
    return K - row[:, None] - row[None, :] + jnp.mean(row)


def _rbf_grads(M: jax.Array, a: jax.Array, log_gamma: jax.Array):
    """Gradients of sum(Gbar * K) for K = ard_rbf(a) [n, n], given M = Gbar * K with Gbar
    symmetric: w.r.t. log_alpha [], log_gamma [d] and the inputs a [n, d]."""
    gamma = jnp.exp(log_gamma)
    rows = jnp.sum(M, axis=1)
    d_log_gamma = jnp.stack(
        [-gamma[k] * jnp.sum(M * (a[:, k, None] - a[None, :, k]) ** 2) for k in range(a.shape[1])]
    )
    d_a = -4.0 * gamma * (a * rows[:, None] - M @ a)
    return jnp.sum(rows), d_log_gamma, d_a


@jax.custom_vjp
def _data_fit(xs, theta, kernel, ys, lam, jitter):
    """-log N(Y | 0, K) (summed over the dy columns of ys [n, dy]) + lam * log tr(K_x H K_t H),
    K = K_x(xs [n, dx]) * K_t(theta [n, d_theta]) + (1/beta + jitter) I; kernel = (log_alpha_x,
    log_gamma_x, log_alpha_t, log_gamma_t, log_beta)."""
    return _data_fit_fwd(xs, theta, kernel, ys, lam, jitter)[0]


def _data_fit_fwd(xs, theta, kernel, ys, lam, jitter):
    log_alpha_x, log_gamma_x, log_alpha_t, log_gamma_t, log_beta = kernel
    n, dy = ys.shape
    K_x = _ard_rbf(xs, log_alpha_x, log_gamma_x)
    K_t = _ard_rbf(theta, log_alpha_t, log_gamma_t)
    K = K_x * K_t + (jnp.exp(-log_beta) + jitter) * jnp.eye(n, dtype=xs.dtype)
    L = jax.lax.linalg.cholesky(K, symmetrize_input=False)  # K is symmetric by construction
    A = cho_solve((L, True), ys)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(L)))
    nll = 0.5 * jnp.sum(ys * A) + 0.5 * dy * logdet + 0.5 * n * dy * math.log(2.0 * math.pi)
    C_x = _centre(K_x)
    log_trace = jnp.log(jnp.sum(C_x * K_t))
    return nll + lam * log_trace, (xs, theta, kernel, lam, K_x, K_t, C_x, L, A, log_trace)


def _data_fit_bwd(res, g):
    """Symmetric, hand-written gradient: one explicit K^{-1} (the log-determinant needs every
    entry), then a few fused [n, n] products; autodiff would add transposes and copies."""
    xs, theta, kernel, lam, K_x, K_t, C_x, L, A, log_trace = res
    _, log_gamma_x, _, log_gamma_t, log_beta = kernel
    K_inv = cho_solve((L, True), jnp.eye(L.shape[0], dtype=L.dtype))
    G = 0.5 * (A.shape[1] * K_inv - A @ A.T)  # d nll / d K
    c = lam * jnp.exp(-log_trace)  # d (lam log tr) / d tr
    d_alpha_x, d_gamma_x, d_xs = _rbf_grads((G * K_t + c * _centre(K_t)) * K_x, xs, log_gamma_x)
    d_alpha_t, d_gamma_t, d_theta = _rbf_grads((G * K_x + c * C_x) * K_t, theta, log_gamma_t)
    d_noise = jnp.trace(G)
    d_kernel = (d_alpha_x, d_gamma_x, d_alpha_t, d_gamma_t, -d_noise * jnp.exp(-log_beta))
    grads = (d_xs, d_theta, d_kernel, A, log_trace, d_noise)
    return jax.tree_util.tree_map(lambda x: g * x, grads)


_data_fit.defvjp(_data_fit_fwd, _data_fit_bwd)


def gppom_loss(
    params: GPPOMParams,
    xs: jax.Array,
    ys: jax.Array,
    lam: jax.Array,
    mlp_alpha: jax.Array,
    jitter: jax.Array,
) -> jax.Array:
    """GPPOM objective on standardised data xs [n, dx], ys [n, dy] (see module doc)."""
    theta = _mlp(params, jnp.concatenate([xs, ys], axis=1))
    p = params
    kernel = (p.log_alpha_x, p.log_gamma_x, p.log_alpha_t, p.log_gamma_t, p.log_beta)
    data_fit = _data_fit(xs, theta, kernel, ys, lam, jitter)
    weights = (params.w1, params.b1, params.w2, params.b2)
    prior = (
        0.5 * jnp.sum(params.log_psi() ** 2)
        + 0.5 * jnp.sum(theta**2)
        + 0.5 * mlp_alpha * sum(jnp.sum(w**2) for w in weights)
    )
    return data_fit + prior


# ----------------------------------------------------------------------------- fitting


def _standardise(a: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Column-standardise a [n, d]; a constant column gets std 1 (it becomes all zeros)."""
    mean = jnp.mean(a, axis=0)
    std = jnp.std(a, axis=0)
    scale = jnp.maximum(jnp.max(jnp.abs(a), axis=0), 1.0)
    std = jnp.where(std > 1e-6 * scale, std, 1.0)
    return (a - mean) / std, mean, std


def _init_params(key: jax.Array, xs: jax.Array, ys: jax.Array, config: GPPOMConfig):
    """Random hidden layer from the weight prior; output layer regresses the leading
    principal components of [xs, ys] (unit variance) by ridge regression, in closed form."""
    dtype = xs.dtype
    xy = jnp.concatenate([xs, ys], axis=1)
    n, d_in = xy.shape
    h, dt = config.n_hidden, config.d_theta
    k1, k2 = jax.random.split(key)
    s = 1.0 / jnp.sqrt(jnp.asarray(config.mlp_alpha, dtype))
    w1 = jax.random.normal(k1, (d_in, h), dtype) * s
    b1 = jax.random.normal(k2, (h,), dtype) * s
    # leading principal directions of the centred [xs, ys] (columns already centred)
    cov = xy.T @ xy / n
    evals, evecs = jnp.linalg.eigh(cov)
    order = jnp.argsort(-evals)
    top = evecs[:, order[:dt]]  # [d_in, dt] (if dt > d_in, repeat directions)
    if dt > d_in:
        top = jnp.tile(top, (1, -(-dt // d_in)))[:, :dt]
    scores = xy @ top
    scores = scores / jnp.maximum(jnp.std(scores, axis=0), 1e-6)
    # deterministic sign: positive correlation with the first input column
    sign = jnp.where(jnp.sum(scores * xy[:, :1], axis=0) >= 0, 1.0, -1.0)
    scores = scores * sign
    feats = jax.nn.sigmoid(xy @ w1 + b1)
    feats1 = jnp.concatenate([feats, jnp.ones((n, 1), dtype)], axis=1)
    gram = feats1.T @ feats1 + config.mlp_alpha * jnp.eye(h + 1, dtype=dtype)
    sol = jnp.linalg.solve(gram, feats1.T @ scores)  # [h+1, dt]
    dx = xs.shape[1]
    zeros = functools.partial(jnp.zeros, dtype=dtype)
    return GPPOMParams(
        w1=w1,
        b1=b1,
        w2=sol[:h],
        b2=sol[h],
        log_alpha_x=zeros(()),
        log_gamma_x=jnp.full((dx,), -math.log(max(dx, 1)), dtype),
        log_alpha_t=zeros(()),
        log_gamma_t=zeros((dt,)),
        log_beta=jnp.asarray(config.init_log_beta, dtype),
    )


def fit_gppom_arrays(X: jax.Array, Y: jax.Array, key: jax.Array, config: GPPOMConfig) -> GPPOMFit:
    """Pure GPPOM fit: X [n, dx], Y [n, dy], key -> GPPOMFit. No input checks.

    Jittable and vmappable over (X, Y, key) and the float fields of ``config``; runs in the
    dtype of X (use ``fit_gppom`` for validated input and scoped float64).
    """
    xs, x_mean, x_std = _standardise(X)
    ys, y_mean, y_std = _standardise(Y.astype(X.dtype))
    dtype = xs.dtype
    lam = jnp.asarray(config.lam, dtype)
    mlp_alpha = jnp.asarray(config.mlp_alpha, dtype)
    jitter = jnp.asarray(config.jitter, dtype)
    params = _init_params(key, xs, ys, config)
    loss_fn = functools.partial(
        gppom_loss, xs=xs, ys=ys, lam=lam, mlp_alpha=mlp_alpha, jitter=jitter
    )
    schedule = optax.cosine_decay_schedule(config.learning_rate, config.n_steps, alpha=0.05)
    opt = optax.adam(schedule)
    opt_state = opt.init(params)
    value_and_grad = jax.value_and_grad(loss_fn)

    def step(carry, _):
        params, opt_state, skipped = carry
        loss, grads = value_and_grad(params)
        updates, new_state = opt.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        ok = all_finite(loss, grads)
        params, opt_state = select(ok, (new_params, new_state), (params, opt_state))
        return (params, opt_state, skipped + (~ok)), jnp.where(ok, loss, jnp.nan)

    carry = (params, opt_state, jnp.zeros((), jnp.int32))
    (params, _, skipped), history = jax.lax.scan(step, carry, None, length=config.n_steps)
    final_loss = loss_fn(params)
    theta = _mlp(params, jnp.concatenate([xs, ys], axis=1))
    return GPPOMFit(
        theta=theta,
        params=params,
        loss_history=history,
        final_loss=final_loss,
        n_skipped=skipped,
        x_mean=x_mean,
        x_std=x_std,
        y_mean=y_mean,
        y_std=y_std,
    )


_fit_jit = jax.jit(fit_gppom_arrays, static_argnames=())
_fit_batch_jit = jax.jit(jax.vmap(fit_gppom_arrays, in_axes=(0, 0, 0, None)))


# ----------------------------------------------------------------------------- public


def _check_data(X: Any, Y: Any, batched: bool) -> tuple[np.ndarray, np.ndarray]:
    lead = 1 if batched else 0
    want = "[B, n, d] (or [B, n])" if batched else "[n, d] (or [n])"
    out = []
    for name, a in (("X", X), ("Y", Y)):
        a = np.asarray(a)
        check(
            np.issubdtype(a.dtype, np.number) and not np.issubdtype(a.dtype, np.complexfloating),
            f"{name}.dtype",
            str(a.dtype),
            "real numbers",
        )
        if a.ndim == 1 + lead:
            a = a[..., None]
        check(a.ndim == 2 + lead, f"{name}.shape", a.shape, f"shape {want}")
        bad = int(np.sum(~np.isfinite(a)))
        check(bad == 0, f"{name} non-finite entries", bad, "0 (no NaN or inf; clean the data)")
        out.append(a)
    X, Y = out
    check(
        X.shape[:-1] == Y.shape[:-1],
        "Y.shape",
        Y.shape,
        f"the same leading (sample) axes as X.shape={X.shape}",
    )
    n = X.shape[-2]
    check(n >= MIN_POINTS, "n (samples)", n, f"at least {MIN_POINTS} to fit GPPOM")
    return X, Y


def fit_gppom(X: Any, Y: Any, key: jax.Array, config: GPPOMConfig | None = None) -> GPPOMFit:
    """Fit GPPOM to X [n, dx] (cause), Y [n, dy] (effect); 1-D inputs are taken as d=1.

    Validates the input (same n, finite, n >= 8, valid config), runs the jitted fit in the
    configured precision and returns a ``GPPOMFit`` whose arrays are float32 (``theta``
    [n, d_theta], ``loss_history`` [n_steps], ...). The same key gives the same fit.
    Constant columns are allowed (they standardise to zeros and carry no information).
    Warns (RuntimeWarning) if some steps had a non-finite loss or gradient and were skipped.
    """
    config = (config or GPPOMConfig()).validate()
    X, Y = _check_data(X, Y, batched=False)
    with precision_scope(config.precision), single_thread_blas():
        dtype = precision_dtype(config.precision)
        fit = _fit_jit(jnp.asarray(X, dtype), jnp.asarray(Y, dtype), key, config)
        fit = to_float32(jax.block_until_ready(fit))
    _warn_skipped(fit, config)
    return jax.tree_util.tree_map(jnp.asarray, fit)


def compile_gppom(n: int, dx: int, dy: int, config: GPPOMConfig | None = None) -> None:
    """Compile ``fit_gppom``'s program for X [n, dx], Y [n, dy] without running it (runs
    nothing on a device, so it may run in a thread beside a run's own programs)."""
    config = (config or GPPOMConfig()).validate()
    with precision_scope(config.precision):
        dtype = precision_dtype(config.precision)
        shaped = jax.ShapeDtypeStruct
        key = shaped((2,), jnp.uint32)
        _fit_jit.lower(shaped((n, dx), dtype), shaped((n, dy), dtype), key, config).compile()


def fit_gppom_batch(X: Any, Y: Any, keys: jax.Array, config: GPPOMConfig | None = None) -> GPPOMFit:
    """Many independent fits at once (vmapped): X [B, n, dx], Y [B, n, dy], keys [B].

    Returns a ``GPPOMFit`` with a leading axis B on every array (theta [B, n, d_theta]).
    """
    config = (config or GPPOMConfig()).validate()
    X, Y = _check_data(X, Y, batched=True)
    check(
        keys.shape[:1] == X.shape[:1],
        "keys.shape",
        keys.shape,
        f"one key per batch entry ({X.shape[0]})",
    )
    with precision_scope(config.precision), single_thread_blas():
        dtype = precision_dtype(config.precision)
        Xj, Yj = jnp.asarray(X, dtype), jnp.asarray(Y, dtype)
        fit = _fit_batch_jit(Xj, Yj, keys, config)
        fit = to_float32(jax.block_until_ready(fit))
    _warn_skipped(fit, config)
    return jax.tree_util.tree_map(jnp.asarray, fit)


def _warn_skipped(fit: GPPOMFit, config: GPPOMConfig) -> None:
    settings = f"precision={config.precision}, jitter={float(np.max(config.jitter))}"
    hint = "; a larger jitter or precision='float64' usually avoids this"
    warn_skipped(fit.n_skipped, "GPPOM", settings, hint)
