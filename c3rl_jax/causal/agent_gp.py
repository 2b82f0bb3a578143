"""Agent-level latent-variable sparse GP: which mechanism produced each group's rows.

Data: causes X [n, dx], effects Y [n, dy] and group ids [n] in 0..N-1 (an "agent" here is
just a group of rows known to share one mechanism). Every column is standardised. Each
group a gets one latent theta_a in R^d (prior N(0, I)), shared by all its rows, and

    y_j = s_j f(x, theta_a) + noise,   noise ~ N(0, sigma_j^2 + noise_floor),
    k((x, t), (x', t')) = (1 - r) k0(x, x') + r k1(x, x') kt(t, t'),   r = sigmoid(rho),

with k0, k1 unit-amplitude ARD RBFs over x (own lengthscales) and kt a unit-lengthscale
RBF on theta (the prior fixes theta's scale). Every output column shares the kernel shape
and has its own amplitude s_j^2 and noise sigma_j^2. The fit is Titsias' (2009) collapsed
variational bound with M inducing points Z [M, dx + d] over (x, theta) jointly: per column

    F_j = log N(y_j | 0, s_j^2 Qff + sigma_j^2 I) - s_j^2 / (2 sigma_j^2) tr(Kff - Qff),

Qff = Kfu Kuu^-1 Kuf. The n x M^2 work (A = L^-1 Kuf, A A^T, A y) is done once per step,
as matmuls (the n x M distances by the Gram identity, L^-1 formed explicitly); only M x M
work is per column. The objective minimised is

    -sum_j F_j + 0.5 ||theta||^2 + 0.5 ||log lengthscales, rho, log amplitudes||^2.

Rows whose Y has a gross outlier (robust z = |y - median| / (5%-95% range / 3.29) above
``outlier_z`` in any column whose range is not zero) get weight 0: n stays fixed (no
recompilation) and such rows drop out of the bound exactly (their columns of A and their y
are zeroed, and n_eff = sum of weights counts the rest). A column whose range is zero
(constant but for under 5% of rows, such as a sparse reward) is left out of the bound, of
encoding and of the predictive (which gives its mean); its amplitude and noise restart
from their initial values, so a warm start is not thrown off when the column's rare
values appear or it enters a later fit. Adam runs a fixed number of steps
per restart, restarts one after another from different keys; each restart returns its best
iterate, and the restart with the lowest objective wins. Steps with a non-finite loss or
gradient are skipped and counted. A fit can be warm-started from a previous one's parameters:
restart 0 continues from them for ``warm_steps``, ``warm_restarts - 1`` others start fresh;
the winner is then rotated (an exact symmetry of the model) to align with the previous
latents, so labels do not flip between rebuilds. Cold and warm fits share one program.

``encode_agent_gp`` places a NEW group: only its theta is optimised, against the frozen GP's
predictive q(f) (diagonal variance plus noise), from every fitted latent and a few random
starts. Arrays in, arrays out: nothing here knows about reinforcement learning.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.linalg import solve_triangular

from c3rl_jax.causal.blas import single_thread_blas
from c3rl_jax.causal.gppom import sq_dist
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
    "AgentGPConfig",
    "AgentGPFit",
    "AgentGPParams",
    "AgentGPPredictive",
    "agent_gp_bound",
    "agent_gp_loss",
    "compile_agent_gp",
    "encode_agent_gp",
    "fit_agent_gp",
    "fit_agent_gp_batch",
    "outlier_weights",
    "predict_agent_gp",
]

_RANGE_SCALE = 3.2897  # the 5%-95% range of N(0, 1)


@flax.struct.dataclass(frozen=True)
class AgentGPConfig:
    """Settings of an agent-level GP fit.

    Static fields (shapes, loop lengths, precision) select a compiled program; the float
    fields are traced, so changing them (or the data values) does not recompile.

    Attributes:
      d_theta: size of each group's latent theta.
      n_inducing: inducing points M; None: 32 when X has at most 4 columns, else 64.
      n_steps: Adam steps per restart of a cold fit (no ``init``).
      n_restarts: independent restarts of a cold fit; the lowest objective wins.
      warm_steps: Adam steps per restart of a warm-started fit (``init`` given).
      warm_restarts: restarts of a warm-started fit: restart 0 from ``init``, the others
        fresh.
      encode_steps: Adam steps of the latent-only fit in ``encode_agent_gp``.
      encode_random_inits: random starts in ``encode_agent_gp`` on top of one start at
        every fitted latent.
      precision: "float32" (default) or "float64" (scoped ``jax.enable_x64``).
      learning_rate: Adam's peak step size (cosine-decayed over the steps).
      clip_norm: each step's gradient is scaled down to this global norm before Adam
        (inf: off). A fit's first gradients are thousands of nats steep; unclipped, Adam's
        second moment keeps them and shrinks every later step.
      noise_floor: variance added to every column's noise (standardised units).
      jitter: added to the diagonal of Kuu (standardised units; k(z, z) = 1).
      outlier_z: rows with a robust z above this in any column get weight 0 (inf: off).
      init_theta_scale: standard deviation of the random initial latents.
      init_z_theta_scale: inducing points start at data rows' (x, theta of the row's agent)
        plus N(0, init_z_theta_scale^2) noise on the theta part.
      init_noise: initial noise variance sigma_j^2 (standardised units).
    """

    d_theta: int = flax.struct.field(pytree_node=False, default=1)
    n_inducing: int | None = flax.struct.field(pytree_node=False, default=None)
    n_steps: int = flax.struct.field(pytree_node=False, default=150)
    n_restarts: int = flax.struct.field(pytree_node=False, default=2)
    warm_steps: int = flax.struct.field(pytree_node=False, default=100)
    warm_restarts: int = flax.struct.field(pytree_node=False, default=1)
    encode_steps: int = flax.struct.field(pytree_node=False, default=100)
    encode_random_inits: int = flax.struct.field(pytree_node=False, default=4)
    precision: str = flax.struct.field(pytree_node=False, default="float32")
    learning_rate: float = 0.1
    clip_norm: float = 10.0
    noise_floor: float = 1e-4
    jitter: float = 1e-4
    outlier_z: float = 8.0
    init_theta_scale: float = 0.1
    init_z_theta_scale: float = 1.0
    init_noise: float = 0.1

    def inducing_for(self, dx: int) -> int:
        """The number of inducing points used for X with dx columns."""
        if self.n_inducing is not None:
            return int(self.n_inducing)
        return 32 if dx <= 4 else 64

    def validate(self) -> AgentGPConfig:
        """Return self, or raise ConfigError (a ValueError) naming the bad field."""
        check_int("AgentGPConfig.d_theta", self.d_theta, 1)
        if self.n_inducing is not None:
            check_int("AgentGPConfig.n_inducing", self.n_inducing, 1)
        check_int("AgentGPConfig.n_steps", self.n_steps, 1)
        check_int("AgentGPConfig.n_restarts", self.n_restarts, 1)
        check_int("AgentGPConfig.warm_steps", self.warm_steps, 1)
        check_int("AgentGPConfig.warm_restarts", self.warm_restarts, 1)
        check_int("AgentGPConfig.encode_steps", self.encode_steps, 1)
        check_int("AgentGPConfig.encode_random_inits", self.encode_random_inits, 0)
        check(
            self.precision in PRECISIONS,
            "AgentGPConfig.precision",
            self.precision,
            f"one of {PRECISIONS}",
        )
        for name in ("learning_rate", "noise_floor", "jitter", "init_theta_scale", "init_noise"):
            value = float(getattr(self, name))
            check(
                math.isfinite(value) and value > 0,
                f"AgentGPConfig.{name}",
                value,
                "a finite number > 0",
            )
        value = float(self.init_z_theta_scale)
        check(
            math.isfinite(value) and value >= 0,
            "AgentGPConfig.init_z_theta_scale",
            value,
            "a finite number >= 0",
        )
        for name in ("outlier_z", "clip_norm"):
            value = float(getattr(self, name))
            check(
                value > 0 and not math.isnan(value),
                f"AgentGPConfig.{name}",
                value,
                "a number > 0 (inf turns it off)",
            )
        return self


class AgentGPParams(NamedTuple):
    """Free parameters (standardised units): theta [N, d], Z [M, dx + d] (x part first),
    log_ls0, log_ls1 [dx] (log lengthscales of k0, k1), rho [] (r = sigmoid(rho)),
    log_amp [dy] (log s_j^2), log_noise [dy] (log sigma_j^2, before the noise floor)."""

    theta: jax.Array
    Z: jax.Array
    log_ls0: jax.Array
    log_ls1: jax.Array
    rho: jax.Array
    log_amp: jax.Array
    log_noise: jax.Array


class AgentGPPredictive(NamedTuple):
    """The fitted GP's q(u), whitened (u = L v), per output column: L [M, M] = chol(Kuu +
    jitter I), mean [dy, M] of v, LB [dy, M, M] = chol(I + (s^2 / sigma^2) A A^T)."""

    L: jax.Array
    mean: jax.Array
    LB: jax.Array


@flax.struct.dataclass(frozen=True)
class AgentGPFit:
    """Result of ``fit_agent_gp`` (a pytree).

    Attributes:
      theta: [N, d] group (agent) latents of the chosen restart.
      params: the chosen restart's ``AgentGPParams`` (pass as ``init`` to warm-start).
      final_loss: [R] best objective reached by each restart (inf: not run), R the larger
        of ``n_restarts`` and ``warm_restarts``.
      best_restart: [] index of the chosen restart.
      loss_history: [R, S] objective before each step (NaN where a step was skipped or not
        run), S the larger of ``n_steps`` and ``warm_steps``.
      n_skipped: [R] steps whose loss or gradient was not finite (their update was skipped).
      weights: [n] 1 for the rows used, 0 for masked rows and gross outliers.
      x_mean, x_std: [dx]; y_mean, y_std: [dy]: the standardisation (of the weighted rows).
      y_median, y_scale: [dy] robust location and scale of Y (5%-95% range / 3.29; 0: the
        column is left out of the fit and not screened for outliers).
      predictive: ``AgentGPPredictive`` of the chosen restart (used by encode/predict).
      config: the ``AgentGPConfig`` used (``n_inducing`` resolved).
    """

    theta: jax.Array
    params: AgentGPParams
    final_loss: jax.Array
    best_restart: jax.Array
    loss_history: jax.Array
    n_skipped: jax.Array
    weights: jax.Array
    x_mean: jax.Array
    x_std: jax.Array
    y_mean: jax.Array
    y_std: jax.Array
    y_median: jax.Array
    y_scale: jax.Array
    predictive: AgentGPPredictive
    config: AgentGPConfig

    @property
    def objective(self) -> jax.Array:
        """[] objective of the chosen restart."""
        return self.final_loss[self.best_restart]

    @property
    def kernel_params(self) -> dict[str, jax.Array]:
        """Learned kernel parameters in natural units (standardised data)."""
        p = self.params
        return {
            "lengthscale0": jnp.exp(p.log_ls0),
            "lengthscale1": jnp.exp(p.log_ls1),
            "r": jax.nn.sigmoid(p.rho),
            "amplitude": jnp.exp(p.log_amp),
            "noise": jnp.exp(p.log_noise) + self.config.noise_floor,
        }


# ----------------------------------------------------------------------------- model


def _kernel_cross(params: AgentGPParams, xa, ta, xb, tb):
    """k((xa, ta), (xb, tb)): xa [n, dx], ta [n, d], xb [m, dx], tb [m, d] -> [n, m]."""
    r = jax.nn.sigmoid(params.rho)
    w0 = 0.5 * jnp.exp(-2.0 * params.log_ls0)
    w1 = 0.5 * jnp.exp(-2.0 * params.log_ls1)
    k0 = jnp.exp(-sq_dist(xa, xb, w0))
    k1 = jnp.exp(-sq_dist(xa, xb, w1))
    kt = jnp.exp(-0.5 * sq_dist(ta, tb))
    return (1.0 - r) * k0 + r * k1 * kt


def _kfu(params: AgentGPParams, xs, agent_ids):
    """Kfu [n, M]: the agent factor kt is computed per agent [N, M], then gathered."""
    dx = xs.shape[1]
    zx, zt = params.Z[:, :dx], params.Z[:, dx:]
    r = jax.nn.sigmoid(params.rho)
    w0 = 0.5 * jnp.exp(-2.0 * params.log_ls0)
    w1 = 0.5 * jnp.exp(-2.0 * params.log_ls1)
    k0 = jnp.exp(-sq_dist(xs, zx, w0, gram=True))
    k1 = jnp.exp(-sq_dist(xs, zx, w1, gram=True))
    kt = jnp.exp(-0.5 * sq_dist(params.theta, zt))[agent_ids]
    return (1.0 - r) * k0 + r * k1 * kt


def _kuu_chol(params: AgentGPParams, dx: int, jitter):
    zx, zt = params.Z[:, :dx], params.Z[:, dx:]
    Kuu = _kernel_cross(params, zx, zt, zx, zt)
    Kuu = 0.5 * (Kuu + Kuu.T) + jitter * jnp.eye(Kuu.shape[0], dtype=Kuu.dtype)
    return jnp.linalg.cholesky(Kuu)


def _noise(params: AgentGPParams, noise_floor):
    return jnp.exp(params.log_noise) + noise_floor


def _bound_parts(params, xs, ys, agent_ids, weights, noise_floor, jitter):
    """Per-column collapsed bound F [dy], plus (L, LB [dy, M, M], c [dy, M], s^2 / sigma^2
    [dy]) for the predictive: LB = chol(B), B = I + gamma A A^T, c = LB^-1 A y, gamma =
    s^2 / sigma^2. The quadratic term y^T (I + gamma A^T A)^-1 y / sigma^2 is computed as
    the sum of squares (||y - A^T m||^2 + ||m||^2 / gamma) / sigma^2, m = gamma B^-1 A y,
    not as GPflow's (y^T y - gamma c^T c) / sigma^2: near the noise floor (gamma ~ 1e4) that
    is a difference of two near-equal terms, and 1 / sigma^2 magnified its float32 rounding
    to thousands of nats (and non-finite steps) on rebuild data."""
    dtype = xs.dtype
    dx = xs.shape[1]
    L = _kuu_chol(params, dx, jitter)
    Kfu = _kfu(params, xs, agent_ids) * weights[:, None]
    # A = L^-1 Kuf through the explicit M x M inverse: one matmul, whose gradient is
    # matmuls too; a triangular solve with n right-hand sides (and its reverse) took
    # 0.3 ms of a 1.2 ms Adam step at n = 1000, M = 32 on a 2-core CPU
    L_inv = solve_triangular(L, jnp.eye(L.shape[0], dtype=dtype), lower=True)
    A = L_inv @ Kfu.T  # [M, n]
    AAt = A @ A.T
    yw = ys * weights[:, None]
    Ay = A @ yw  # [M, dy]
    trA = jnp.sum(A * A)
    n_eff = jnp.sum(weights)
    s2 = jnp.exp(params.log_amp)
    sig2 = _noise(params, noise_floor)
    eye = jnp.eye(AAt.shape[0], dtype=dtype)

    def column(s2_j, sig2_j, ay_j, y_j):
        gamma = s2_j / sig2_j
        B = eye + gamma * AAt
        LB = jnp.linalg.cholesky(0.5 * (B + B.T))
        c = solve_triangular(LB, ay_j, lower=True)
        logdet = n_eff * jnp.log(sig2_j) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(LB)))
        m = gamma * solve_triangular(LB.T, c, lower=False)  # B m = gamma A y
        r = y_j - A.T @ m
        quad = (jnp.sum(r * r) + jnp.sum(m * m) / gamma) / sig2_j
        trace = gamma * (n_eff - trA)
        F = -0.5 * (n_eff * math.log(2.0 * math.pi) + logdet + quad + trace)
        return F, LB, c

    F, LB, c = jax.vmap(column, in_axes=(0, 0, 1, 1))(s2, sig2, Ay, yw)
    return F, (L, LB, c, s2 / sig2)


def agent_gp_bound(
    params: AgentGPParams,
    xs: jax.Array,
    ys: jax.Array,
    agent_ids: jax.Array,
    weights: jax.Array,
    noise_floor: float = 1e-4,
    jitter: float = 1e-4,
) -> jax.Array:
    """Titsias' collapsed bound per output column, F [dy], on standardised xs [n, dx],
    ys [n, dy], agent_ids [n] (int), weights [n] (0/1; weight-0 rows are left out)."""
    dtype = xs.dtype
    F, _ = _bound_parts(
        params,
        xs,
        ys,
        agent_ids,
        jnp.asarray(weights, dtype),
        jnp.asarray(noise_floor, dtype),
        jnp.asarray(jitter, dtype),
    )
    return F


def _prior(params: AgentGPParams) -> jax.Array:
    hyper = jnp.concatenate([params.log_ls0, params.log_ls1, params.rho[None], params.log_amp])
    return 0.5 * jnp.sum(params.theta**2) + 0.5 * jnp.sum(hyper**2)


def agent_gp_loss(
    params: AgentGPParams,
    xs: jax.Array,
    ys: jax.Array,
    agent_ids: jax.Array,
    weights: jax.Array,
    noise_floor: float = 1e-4,
    jitter: float = 1e-4,
    columns: jax.Array | None = None,
) -> jax.Array:
    """The objective minimised: -sum_j c_j F_j + 0.5 ||theta||^2 + 0.5 ||log
    hyperparameters||^2, c [dy] = columns (1 for a column used, 0 for one left out; default
    all 1)."""
    F = agent_gp_bound(params, xs, ys, agent_ids, weights, noise_floor, jitter)
    c = jnp.ones_like(F) if columns is None else jnp.asarray(columns, F.dtype)
    return -jnp.sum(c * F) + _prior(params)


def _predictive(params, xs, ys, agent_ids, weights, noise_floor, jitter) -> AgentGPPredictive:
    _, (L, LB, c, gamma) = _bound_parts(params, xs, ys, agent_ids, weights, noise_floor, jitter)

    def whitened_mean(LB_j, c_j, g_j):  # gamma LB^-T c
        return g_j * solve_triangular(LB_j.T, c_j, lower=False)

    mean = jax.vmap(whitened_mean)(LB, c, gamma)
    return AgentGPPredictive(L=L, mean=mean, LB=LB)


def _predict_std(params, pred: AgentGPPredictive, xs, theta, noise_floor):
    """Predictive of standardised y at xs [m, dx] for one latent theta [d]: mean, var [m, dy]
    (var includes the noise)."""
    dx = xs.shape[1]
    zx, zt = params.Z[:, :dx], params.Z[:, dx:]
    ts = jnp.broadcast_to(theta, (xs.shape[0], theta.shape[0]))
    Kus = _kernel_cross(params, zx, zt, xs, ts)  # [M, m]
    a = solve_triangular(pred.L, Kus, lower=True)  # [M, m]
    mean = (pred.mean @ a).T  # [m, dy]
    base = 1.0 - jnp.sum(a * a, axis=0)  # [m]

    def column_var(LB_j):
        b = solve_triangular(LB_j, a, lower=True)
        return base + jnp.sum(b * b, axis=0)

    fvar = jnp.maximum(jax.vmap(column_var)(pred.LB), 0.0).T  # [m, dy]
    var = jnp.exp(params.log_amp) * fvar + _noise(params, noise_floor)
    return mean, var


# ----------------------------------------------------------------------------- data


def _robust_stats(Y, mask):
    """Per-column median and robust scale over the rows with mask 1. The scale is the
    5%-95% quantile range / 3.29 (the standard deviation for Gaussian data): it ignores up
    to 5% contamination, and unlike the MAD it does not flag the legitimate tails of
    peaked columns (cart-pole's cos-theta change and reward, whose MAD-based z reached
    25-35 on random-action data). A column whose range is zero (e.g. a rare binary reward)
    gets scale 0: it is not screened, and the fit leaves it out."""
    Ym = jnp.where(mask[:, None] > 0, Y, jnp.nan)
    med = jnp.nanmedian(Ym, axis=0)
    lo, hi = jnp.nanquantile(Ym, jnp.asarray([0.05, 0.95], Y.dtype), axis=0)
    width = hi - lo
    spread = jnp.nanmax(jnp.abs(Ym - med), axis=0)
    ok = width > 1e-6 * jnp.maximum(spread, jnp.finfo(Y.dtype).tiny)
    return med, jnp.where(ok, width / _RANGE_SCALE, 0.0)


def _outlier_rows(Y, med, scale, outlier_z):
    """[n] True where any screened column's robust z = |y - median| / scale exceeds
    outlier_z."""
    z = jnp.abs(Y - med) / jnp.where(scale > 0, scale, 1.0)
    return jnp.any((z > outlier_z) & (scale > 0), axis=1)


def outlier_weights(Y: jax.Array, outlier_z: float = 8.0, mask: jax.Array | None = None):
    """[n] weights (1.0 / 0.0): 0 where a row of Y [n, dy] has a robust z above outlier_z
    in any column (|y - median| / (5%-95% range / 3.29) per column; columns whose range is
    zero are not screened) or where mask [n] is 0."""
    Y = jnp.asarray(Y)
    Y = Y[:, None] if Y.ndim == 1 else Y
    dtype = Y.dtype if jnp.issubdtype(Y.dtype, jnp.floating) else jnp.float32
    Y = Y.astype(dtype)
    m = jnp.ones(Y.shape[0], dtype) if mask is None else jnp.asarray(mask, dtype)
    med, scale = _robust_stats(Y, m)
    return jnp.where(_outlier_rows(Y, med, scale, outlier_z), 0.0, m).astype(dtype)


def _used_columns(scale):
    """[dy] 1.0 for the columns the fit uses, 0.0 for those whose robust range is zero
    (constant but for rare events, such as a sparse reward seen a few times: one such value
    in 2,000 rows is 44 standard deviations out, and a warm start whose noise for the
    column had fallen to the floor while it was all zero then began 7e6 nats off and lost
    the groups)."""
    return (scale > 0).astype(scale.dtype)


def _initial_columns(dy: int, config: AgentGPConfig, dtype) -> tuple[jax.Array, jax.Array]:
    """A fresh fit's per-column log amplitude and log noise, both [dy]."""
    log_noise = jnp.full((dy,), jnp.log(jnp.asarray(config.init_noise, dtype)))
    return jnp.zeros((dy,), dtype), log_noise


def _reset_unused(params: AgentGPParams, used, config: AgentGPConfig) -> AgentGPParams:
    """params with the unused columns' amplitude and noise at their initial values, so a
    column that enters a later fit starts as in a fresh one."""
    log_amp, log_noise = _initial_columns(used.shape[0], config, used.dtype)
    return params._replace(
        log_amp=jnp.where(used > 0, params.log_amp, log_amp),
        log_noise=jnp.where(used > 0, params.log_noise, log_noise),
    )


def _weighted_standardise(a, w):
    n_eff = jnp.sum(w)
    mean = jnp.sum(a * w[:, None], axis=0) / n_eff
    var = jnp.sum(w[:, None] * (a - mean) ** 2, axis=0) / n_eff
    std = jnp.sqrt(var)
    scale = jnp.maximum(jnp.max(jnp.abs(a) * w[:, None], axis=0), 1.0)
    std = jnp.where(std > 1e-6 * scale, std, 1.0)
    return (a - mean) / std, mean, std


# ----------------------------------------------------------------------------- fitting


def _init_params(
    key, xs, agent_ids, weights, n_agents, dy, M, config: AgentGPConfig
) -> AgentGPParams:
    dtype = xs.dtype
    n, dx = xs.shape
    d = config.d_theta
    k_theta, k_rows, k_zt = jax.random.split(key, 3)
    theta = config.init_theta_scale * jax.random.normal(k_theta, (n_agents, d), dtype)
    p = weights / jnp.sum(weights)
    rows = jax.random.choice(k_rows, n, (M,), replace=True, p=p)  # any n, even n < M
    zt = theta[agent_ids[rows]] + config.init_z_theta_scale * jax.random.normal(k_zt, (M, d), dtype)
    log_amp, log_noise = _initial_columns(dy, config, dtype)
    return AgentGPParams(
        theta=theta,
        Z=jnp.concatenate([xs[rows], zt], axis=1),
        log_ls0=jnp.zeros((dx,), dtype),
        log_ls1=jnp.zeros((dx,), dtype),
        rho=jnp.zeros((), dtype),
        log_amp=log_amp,
        log_noise=log_noise,
    )


def _adam_best(loss_fn, params, n_steps, max_steps: int, learning_rate, clip_norm):
    """Adam on gradients clipped to global norm clip_norm, for n_steps <= max_steps (may be
    traced; cosine-decayed step size); steps with a non-finite loss or gradient are skipped.
    Returns (best iterate, its loss, history [max_steps] (NaN where skipped or not run),
    skipped)."""
    opt = optax.chain(optax.clip_by_global_norm(clip_norm), optax.scale_by_adam())
    value_and_grad = jax.value_and_grad(loss_fn)
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    inf = jnp.asarray(jnp.inf, dtype)
    n = jnp.asarray(n_steps, dtype)

    def step(i, carry):
        params, opt_state, best, best_loss, skipped, history = carry
        loss, grads = value_and_grad(params)
        ok = all_finite(loss, grads)
        better = ok & (loss < best_loss)
        best, best_loss = select(better, (params, loss), (best, best_loss))
        updates, new_state = opt.update(grads, opt_state, params)
        cosine = 0.05 + 0.95 * 0.5 * (1.0 + jnp.cos(jnp.pi * i.astype(dtype) / n))
        updates = jax.tree_util.tree_map(lambda u: -learning_rate * cosine * u, updates)
        new_params = optax.apply_updates(params, updates)
        params, opt_state = select(ok, (new_params, new_state), (params, opt_state))
        history = history.at[i].set(jnp.where(ok, loss, jnp.nan))
        return params, opt_state, best, best_loss, skipped + (~ok), history

    history = jnp.full((max_steps,), jnp.nan, dtype)
    carry = (params, opt.init(params), params, inf, jnp.zeros((), jnp.int32), history)
    last, _, best, best_loss, skipped, history = jax.lax.fori_loop(0, n_steps, step, carry)
    last_loss = loss_fn(last)
    better = jnp.isfinite(last_loss) & (last_loss < best_loss)
    best, best_loss = select(better, (last, last_loss), (best, best_loss))
    return best, best_loss, history, skipped


def _procrustes(theta, ref):
    """Orthogonal R [d, d] minimising ||theta R - ref||_F."""
    U, _, Vt = jnp.linalg.svd(theta.T @ ref)
    return U @ Vt


def _fit_core(X, Y, agent_ids, mask, key, init: AgentGPParams, use_init, config: AgentGPConfig):
    """Pure fit (no input checks); jittable. init gives the shapes (N, M, ...); it is used
    as restart 0's start only where use_init is True."""
    dtype = X.dtype
    dx = X.shape[1]
    dy = Y.shape[1]
    n_agents = init.theta.shape[0]
    M = init.Z.shape[0]
    noise_floor = jnp.asarray(config.noise_floor, dtype)
    jitter = jnp.asarray(config.jitter, dtype)
    lr = jnp.asarray(config.learning_rate, dtype)
    clip = jnp.asarray(config.clip_norm, dtype)

    mask = mask.astype(dtype)
    med, scale = _robust_stats(Y, mask)
    out = _outlier_rows(Y, med, scale, jnp.asarray(config.outlier_z, dtype))
    weights = jnp.where(out, 0.0, mask).astype(dtype)
    xs, x_mean, x_std = _weighted_standardise(X, weights)
    ys, y_mean, y_std = _weighted_standardise(Y, weights)
    used = _used_columns(scale)
    ys = ys * used
    init = _reset_unused(init, used, config)

    def loss_fn(p):
        return agent_gp_loss(p, xs, ys, agent_ids, weights, noise_floor, jitter, used)

    # a warm-started fit (a later rebuild) runs fewer restarts and steps: restart 0 is
    # already near the optimum. Restarts run one after another (on CPU a vmap over them
    # costs as much), so the counts can be traced and both cases share one program.
    R = max(config.n_restarts, config.warm_restarts)
    S = max(config.n_steps, config.warm_steps)
    n_run = jnp.where(use_init, config.warm_restarts, config.n_restarts)
    n_steps = jnp.where(use_init, config.warm_steps, config.n_steps)
    keys = jax.random.split(key, R)

    def restart(r, carry):
        best, best_loss, chosen, losses, history, skipped = carry
        fresh = _init_params(keys[r], xs, agent_ids, weights, n_agents, dy, M, config)
        start = select((r == 0) & use_init, init, fresh)
        p, loss, hist, skip = _adam_best(loss_fn, start, n_steps, S, lr, clip)
        better = jnp.isfinite(loss) & (loss < best_loss)
        best, best_loss, chosen = select(better, (p, loss, r), (best, best_loss, chosen))
        return (
            best,
            best_loss,
            chosen,
            losses.at[r].set(loss),
            history.at[r].set(hist),
            skipped.at[r].set(skip),
        )

    carry = (
        init,
        jnp.asarray(jnp.inf, dtype),
        jnp.zeros((), jnp.int32),
        jnp.full((R,), jnp.inf, dtype),
        jnp.full((R, S), jnp.nan, dtype),
        jnp.zeros((R,), jnp.int32),
    )
    params, best_loss, chosen, losses, history, skipped = jax.lax.fori_loop(
        0, n_run, restart, carry
    )

    # align with the warm start's latents (theta -> theta R, Z_theta -> Z_theta R leaves the
    # objective unchanged), so labels do not flip between rebuilds
    rot = _procrustes(params.theta, init.theta)
    rot = jnp.where(use_init, rot, jnp.eye(rot.shape[0], dtype=dtype))
    params = params._replace(
        theta=params.theta @ rot,
        Z=jnp.concatenate([params.Z[:, :dx], params.Z[:, dx:] @ rot], axis=1),
    )
    pred = _predictive(params, xs, ys, agent_ids, weights, noise_floor, jitter)
    return AgentGPFit(
        theta=params.theta,
        params=params,
        final_loss=losses,
        best_restart=chosen,
        loss_history=history,
        n_skipped=skipped,
        weights=weights,
        x_mean=x_mean,
        x_std=x_std,
        y_mean=y_mean,
        y_std=y_std,
        y_median=med,
        y_scale=scale,
        predictive=pred,
        config=config,
    )


_fit_jit = jax.jit(_fit_core)
_fit_batch_jit = jax.jit(jax.vmap(_fit_core, in_axes=(0, 0, 0, 0, 0, 0, 0, None)))


def _encode_core(fit: AgentGPFit, X, Y, key):
    config = fit.config
    params = fit.params
    dtype = fit.x_mean.dtype
    noise_floor = jnp.asarray(config.noise_floor, dtype)
    lr = jnp.asarray(config.learning_rate, dtype)
    clip = jnp.asarray(config.clip_norm, dtype)
    out = _outlier_rows(Y, fit.y_median, fit.y_scale, jnp.asarray(config.outlier_z, dtype))
    w = jnp.where(out, 0.0, 1.0).astype(dtype)
    used = _used_columns(fit.y_scale)
    xs = (X - fit.x_mean) / fit.x_std
    ys = (Y - fit.y_mean) / fit.y_std * w[:, None]

    def loss_fn(theta):
        mean, var = _predict_std(params, fit.predictive, xs, theta, noise_floor)
        nll = 0.5 * (jnp.log(2.0 * math.pi * var) + (ys - mean) ** 2 / var)
        return jnp.sum(nll * w[:, None] * used) + 0.5 * jnp.sum(theta**2)

    d = fit.theta.shape[1]
    rand = jax.random.normal(key, (config.encode_random_inits, d), dtype)
    starts = jnp.concatenate([fit.theta.astype(dtype), rand], axis=0)
    steps = config.encode_steps
    run = jax.vmap(lambda t: _adam_best(loss_fn, t, steps, steps, lr, clip))
    best, best_loss, _, _ = run(starts)
    safe = jnp.where(jnp.isfinite(best_loss), best_loss, jnp.inf)
    return best[jnp.argmin(safe)]


_encode_jit = jax.jit(_encode_core)


def _predict_core(fit: AgentGPFit, X, theta):
    dtype = fit.x_mean.dtype
    xs = (X - fit.x_mean) / fit.x_std
    mean, var = _predict_std(
        fit.params, fit.predictive, xs, theta, jnp.asarray(fit.config.noise_floor, dtype)
    )
    return mean * fit.y_std + fit.y_mean, var * fit.y_std**2


_predict_jit = jax.jit(_predict_core)


# ----------------------------------------------------------------------------- public


def _as_matrix(name: str, a: Any) -> np.ndarray:
    a = np.asarray(a)
    check(
        np.issubdtype(a.dtype, np.number) and not np.issubdtype(a.dtype, np.complexfloating),
        f"{name}.dtype",
        str(a.dtype),
        "real numbers",
    )
    if a.ndim == 1:
        a = a[:, None]
    check(a.ndim == 2, f"{name}.shape", a.shape, "shape [n, d] (or [n])")
    bad = int(np.sum(~np.isfinite(a)))
    check(bad == 0, f"{name} non-finite entries", bad, "0 (no NaN or inf; clean the data)")
    return a


def _check_data(X, Y, agent_ids, mask, n_agents):
    X = _as_matrix("X", X)
    Y = _as_matrix("Y", Y)
    n = X.shape[0]
    check(Y.shape[0] == n, "Y.shape", Y.shape, f"[n, dy] with n = X.shape[0] = {n}")
    ids = np.asarray(agent_ids)
    check(ids.shape == (n,), "agent_ids.shape", ids.shape, f"({n},): one id per row of X")
    check(
        np.issubdtype(ids.dtype, np.integer),
        "agent_ids.dtype",
        str(ids.dtype),
        "integers 0..N-1",
    )
    check(n > 0, "n (rows)", n, "at least 1")
    low = int(ids.min())
    check(low >= 0, "agent_ids", f"min {low}", "integers 0..N-1 (no negative ids)")
    N = int(ids.max()) + 1 if n_agents is None else n_agents
    ok = not isinstance(N, bool) and isinstance(N, int | np.integer) and N >= 1
    check(ok, "n_agents", N, "an integer >= 1")
    check(int(ids.max()) < N, "agent_ids", f"max {int(ids.max())}", f"ids below n_agents={N}")
    if mask is None:
        mask = np.ones(n, bool)
    mask = np.asarray(mask)
    check(mask.shape == (n,), "mask.shape", mask.shape, f"({n},): one entry per row")
    check(
        mask.dtype == bool or bool(np.all((mask == 0) | (mask == 1))),
        "mask",
        "non-binary values",
        "booleans or 0/1",
    )
    mask = mask.astype(bool)
    counts = np.bincount(ids[mask], minlength=N)
    empty = np.flatnonzero(counts == 0)
    check(
        empty.size == 0,
        "agent_ids",
        f"no (unmasked) rows for agents {empty[:10].tolist()}",
        f"every agent 0..{N - 1} needs at least one row",
    )
    return X, Y, ids.astype(np.int32), mask, N


def _zero_params(N, M, dx, dy, d, dtype) -> AgentGPParams:
    z = lambda *s: np.zeros(s, dtype)  # noqa: E731  (host zeros: no program to compile)
    return AgentGPParams(
        theta=z(N, d),
        Z=z(M, dx + d),
        log_ls0=z(dx),
        log_ls1=z(dx),
        rho=z(),
        log_amp=z(dy),
        log_noise=z(dy),
    )


def _check_init(init, template: AgentGPParams) -> AgentGPParams:
    if isinstance(init, AgentGPFit):
        init = init.params
    check(
        isinstance(init, AgentGPParams),
        "init",
        type(init).__name__,
        "an AgentGPParams or AgentGPFit",
    )
    for name in AgentGPParams._fields:
        got = tuple(np.shape(getattr(init, name)))
        want = tuple(getattr(template, name).shape)
        check(
            got == want,
            f"init.{name}.shape",
            got,
            f"{want} (same agents, inducing points, columns and d_theta as this fit)",
        )
        bad = int(np.sum(~np.isfinite(np.asarray(getattr(init, name)))))
        check(bad == 0, f"init.{name} non-finite entries", bad, "0")
    return jax.tree_util.tree_map(lambda a, t: np.asarray(a, t.dtype), init, template)


def _inputs(X, Y, agent_ids, mask, n_agents, init, config: AgentGPConfig):
    """One fit's checked inputs as host arrays in the fit's dtype, (X [n, dx], Y [n, dy],
    ids [n], mask [n], start params, use_init []), and the config with its inducing points."""
    X, Y, ids, mask, N = _check_data(X, Y, agent_ids, mask, n_agents)
    n_used = int(mask.sum())
    check(n_used >= 2, "n (unmasked rows)", n_used, "at least 2")
    dx, dy = X.shape[1], Y.shape[1]
    config = config.replace(n_inducing=config.inducing_for(dx))
    dtype = precision_dtype(config.precision)
    template = _zero_params(N, config.n_inducing, dx, dy, config.d_theta, dtype)
    start = template if init is None else _check_init(init, template)
    # NumPy in: a jnp.asarray of host data compiles a program per shape
    arrays = (np.asarray(X, dtype), np.asarray(Y, dtype), ids, mask, start)
    return (*arrays, np.asarray(init is not None)), config


def _warn_skipped(fit: AgentGPFit, config: AgentGPConfig) -> None:
    settings = f"precision={config.precision}, noise_floor={config.noise_floor}"
    warn_skipped(fit.n_skipped, "agent GP", f"{settings}, jitter={config.jitter}")


def fit_agent_gp(
    X: Any,
    Y: Any,
    agent_ids: Any,
    key: jax.Array,
    config: AgentGPConfig | None = None,
    *,
    init: AgentGPParams | AgentGPFit | None = None,
    mask: Any = None,
    n_agents: int | None = None,
) -> AgentGPFit:
    """Fit the agent-level sparse GP: X [n, dx] (cause), Y [n, dy] (effect), agent_ids [n]
    (ints 0..N-1; N = n_agents or max id + 1; every agent needs a row; row counts may
    differ). 1-D X or Y are taken as one column.

    init: a previous fit (or its params) with the same shapes: restart 0 continues from it
    (``warm_steps`` steps, ``warm_restarts - 1`` fresh restarts beside it), and the result is
    aligned with its latents. mask [n]:
    rows to use (others get weight 0, like outliers). The same key gives the same fit;
    changing only data values, mask, init or float config fields does not recompile.
    Returns an ``AgentGPFit`` with float32 arrays (theta [N, d_theta]). Warns
    (RuntimeWarning) if steps were skipped for a non-finite loss or gradient.
    """
    config = (config or AgentGPConfig()).validate()
    (X, Y, ids, mask, start, use_init), config = _inputs(
        X, Y, agent_ids, mask, n_agents, init, config
    )
    with precision_scope(config.precision), single_thread_blas():
        fit = _fit_jit(X, Y, ids, mask, key, start, use_init, config)
        fit = to_float32(jax.block_until_ready(fit))
    _warn_skipped(fit, config)
    return fit


def _raw_key(key) -> np.ndarray:
    """A key's raw uint32 data [2] on the host (a typed key's `key_data`), to stack keys."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


def fit_agent_gp_batch(
    Xs: Any,
    Ys: Any,
    agent_ids: Any,
    keys: Any,
    config: AgentGPConfig | None = None,
    *,
    inits: Any = None,
    masks: Any = None,
    n_agents: int | None = None,
) -> list[AgentGPFit]:
    """R independent fits in one vmapped program: run r is ``fit_agent_gp(Xs[r], Ys[r],
    agent_ids[r], keys[r], config, init=inits[r], mask=masks[r], n_agents=n_agents)`` up to
    float rounding (XLA may order a batched sum differently). Every run needs the same shapes
    (n, dx, dy, agents); inits and masks: R entries, each None or as for one fit (None: all
    None). Returns the R fits."""
    config = (config or AgentGPConfig()).validate()
    R = len(Xs)
    inits = [None] * R if inits is None else list(inits)
    masks = [None] * R if masks is None else list(masks)
    counts = {len(Ys), len(agent_ids), len(keys), len(inits), len(masks)}
    check(
        R >= 1 and counts == {R},
        "runs",
        f"{R} X, counts {sorted(counts)}",
        "one X, Y, agent_ids, key (and init and mask, when given) per run, at least one run",
    )
    runs = [
        _inputs(Xs[r], Ys[r], agent_ids[r], masks[r], n_agents, inits[r], config) for r in range(R)
    ]
    shapes = {tuple(np.shape(a) for a in jax.tree.leaves(args)) for args, _ in runs}
    check(
        len(shapes) == 1,
        "runs' shapes",
        f"{len(shapes)} different",
        "the same n, dx, dy and number of agents in every run",
    )
    config = runs[0][1]
    X, Y, ids, mask, start, use_init = jax.tree.map(lambda *a: np.stack(a), *[a for a, _ in runs])
    keys = np.stack([_raw_key(k) for k in keys])
    with precision_scope(config.precision), single_thread_blas():
        batch = jax.block_until_ready(
            _fit_batch_jit(X, Y, ids, mask, keys, start, use_init, config)
        )
    batch = jax.tree.map(np.asarray, batch)  # on the host: slicing there compiles nothing
    fits = [to_float32(jax.tree.map(lambda a, r=r: a[r], batch)) for r in range(R)]
    for fit in fits:
        _warn_skipped(fit, config)
    return fits


def compile_agent_gp(
    n: int, dx: int, dy: int, n_agents: int, config: AgentGPConfig | None = None, runs: int = 1
):
    """Compile ``fit_agent_gp``'s program for X [n, dx], Y [n, dy] and n_agents agents (runs
    > 1: ``fit_agent_gp_batch``'s for that many runs) without running it (cold and
    warm-started fits share the program): the first fit of these shapes then finds it
    compiled. Runs nothing on a device, so it may run in a thread beside a run's own
    programs."""
    config = (config or AgentGPConfig()).validate()
    config = config.replace(n_inducing=config.inducing_for(dx))
    with precision_scope(config.precision):
        dtype = precision_dtype(config.precision)
        lead = () if runs == 1 else (runs,)

        def shaped(shape, dt):
            return jax.ShapeDtypeStruct((*lead, *shape), dt)

        template = (n_agents, config.n_inducing, dx, dy, config.d_theta, dtype)
        start = jax.tree.map(
            lambda a: shaped(a.shape, a.dtype), jax.eval_shape(lambda: _zero_params(*template))
        )
        program = _fit_jit if runs == 1 else _fit_batch_jit
        program.lower(
            shaped((n, dx), dtype),
            shaped((n, dy), dtype),
            shaped((n,), jnp.int32),
            shaped((n,), jnp.bool_),
            shaped((2,), jnp.uint32),  # a key
            start,
            shaped((), jnp.bool_),
            config,
        ).compile()


def _check_new(fit: AgentGPFit, X, Y):
    X = _as_matrix("X_new", X)
    Y = _as_matrix("Y_new", Y)
    dx, dy = fit.x_mean.shape[-1], fit.y_mean.shape[-1]
    check(X.shape[1] == dx, "X_new.shape", X.shape, f"[m, {dx}] as fitted")
    ok = Y.shape == (X.shape[0], dy)
    check(ok, "Y_new.shape", Y.shape, f"[m, {dy}] as fitted, m = X_new.shape[0]")
    check(X.shape[0] >= 1, "X_new rows", X.shape[0], "at least 1")
    return X, Y


def encode_agent_gp(fit: AgentGPFit, X_new: Any, Y_new: Any, key: jax.Array | None = None):
    """Latent theta [d_theta] of one NEW agent from its transitions X_new [m, dx],
    Y_new [m, dy]: only theta is optimised (Adam, ``encode_steps``), against the frozen
    GP's predictive log N(y | mu(x, theta), var(x, theta) + sigma^2) plus the N(0, I)
    prior, from every fitted latent and ``encode_random_inits`` random starts; the best
    is returned. Rows with a gross outlier (the fit's robust statistics) are ignored."""
    X, Y = _check_new(fit, X_new, Y_new)
    key = jax.random.key(0) if key is None else key
    with precision_scope(fit.config.precision), single_thread_blas():
        dtype = precision_dtype(fit.config.precision)
        f = jax.tree_util.tree_map(
            lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, fit
        )
        theta = _encode_jit(f, jnp.asarray(X, dtype), jnp.asarray(Y, dtype), key)
        theta = np.asarray(jax.block_until_ready(theta), np.float32)
    return jnp.asarray(theta)


def predict_agent_gp(fit: AgentGPFit, X_new: Any, theta: Any):
    """Predictive mean and variance (noise included) of Y, both [m, dy] in data units, at
    X_new [m, dx] for an agent with latent theta [d_theta]."""
    X = _as_matrix("X_new", X_new)
    dx = fit.x_mean.shape[-1]
    check(X.shape[1] == dx, "X_new.shape", X.shape, f"[m, {dx}] as fitted")
    theta = np.asarray(theta, np.float64).reshape(-1)
    d = fit.theta.shape[1]
    check(theta.shape == (d,), "theta.shape", theta.shape, f"({d},)")
    with precision_scope(fit.config.precision), single_thread_blas():
        dtype = precision_dtype(fit.config.precision)
        f = jax.tree_util.tree_map(
            lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, fit
        )
        mean, var = _predict_jit(f, jnp.asarray(X, dtype), jnp.asarray(theta, dtype))
        mean, var = jax.block_until_ready((mean, var))
    return jnp.asarray(np.asarray(mean, np.float32)), jnp.asarray(np.asarray(var, np.float32))
