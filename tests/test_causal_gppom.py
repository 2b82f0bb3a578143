"""GPPOM fit: objective against an independent NumPy reference, gradients, determinism,
degenerate data, input validation, vmapped batches, and a small clustering check."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from c3rl_jax.causal import (
    GPPOMConfig,
    adjusted_rand_index,
    fit_gppom,
    fit_gppom_batch,
    gppom_loss,
    two_mechanism_data,
)
from c3rl_jax.causal import gppom as G
from c3rl_jax.errors import ConfigError

# Few shapes and static configs, so the fit compiles only a handful of times per session:
# FAST for [N, 2] -> [N, 2] data; MIXTURE for 60 one-dimensional pairs (shared with the
# direction test in test_causal_hsic.py, which runs it as a vmapped batch of two).
N = 40
FAST = GPPOMConfig(n_steps=25, precision="float32", d_theta=2)
MIXTURE = GPPOMConfig(n_steps=150, precision="float32")


def _data(seed: int = 0, n: int = N, dx: int = 2, dy: int = 2):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, dx))
    y = np.sin(2 * x[:, :1]) * np.arange(1, dy + 1) + 0.1 * rng.normal(size=(n, dy))
    return x, y


_value_and_grad = jax.jit(jax.value_and_grad(gppom_loss))


def _params(seed, dx, dy, dtype, config=FAST):
    x, y = _data(seed, dx=dx, dy=dy)
    xs, _, _ = G._standardise(jnp.asarray(x, dtype))
    ys, _, _ = G._standardise(jnp.asarray(y, dtype))
    p = G._init_params(jax.random.key(seed), xs, ys, config)
    # move kernel parameters away from their initial values
    p = p._replace(
        log_alpha_x=p.log_alpha_x + 0.3,
        log_gamma_x=p.log_gamma_x - 0.2,
        log_gamma_t=p.log_gamma_t + 0.5,
        log_beta=p.log_beta - 0.7,
    )
    return p, xs, ys


def _reference_objective(xp, p, xs, ys, lam, mlp_alpha, jitter):
    """The GPPOM objective written out directly (explicit H and inverse, slogdet) with the
    array module xp: NumPy in float64 for values, jax.numpy for autodiff gradients."""
    n, dy = ys.shape
    xy = xp.concatenate([xs, ys], axis=1)
    theta = (1.0 / (1.0 + xp.exp(-(xy @ p.w1 + p.b1)))) @ p.w2 + p.b2

    def ard(a, log_alpha, log_gamma):
        d2 = ((a[:, None, :] - a[None, :, :]) ** 2 * xp.exp(log_gamma)).sum(-1)
        return xp.exp(log_alpha) * xp.exp(-d2)

    kx = ard(xs, p.log_alpha_x, p.log_gamma_x)
    kt = ard(theta, p.log_alpha_t, p.log_gamma_t)
    K = kx * kt + (xp.exp(-p.log_beta) + jitter) * xp.eye(n)
    _, logdet = xp.linalg.slogdet(K)
    nll = 0.5 * xp.trace(ys.T @ xp.linalg.inv(K) @ ys) + 0.5 * dy * logdet
    nll += 0.5 * n * dy * np.log(2 * np.pi)
    H = xp.eye(n) - xp.ones((n, n)) / n
    one = (1,)
    psi = xp.concatenate(
        [
            xp.reshape(p.log_alpha_x, one),
            p.log_gamma_x,
            xp.reshape(p.log_alpha_t, one),
            p.log_gamma_t,
            xp.reshape(p.log_beta, one),
        ]
    )
    w2 = sum(xp.sum(w**2) for w in (p.w1, p.b1, p.w2, p.b2))
    prior = 0.5 * xp.sum(psi**2) + 0.5 * xp.sum(theta**2) + 0.5 * mlp_alpha * w2
    return nll + prior + lam * xp.log(xp.trace(kx @ H @ kt @ H))


def _numpy_objective(p, xs, ys, lam, mlp_alpha, jitter):
    """The reference objective in float64 NumPy."""
    p, xs, ys = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), (p, xs, ys))
    return _reference_objective(np, p, xs, ys, lam, mlp_alpha, jitter)


@pytest.mark.parametrize("dy", [1, 3])
def test_objective_matches_numpy_reference(dy):
    with jax.enable_x64(True):
        p, xs, ys = _params(1, dx=2, dy=dy, dtype=jnp.float64)
        got = float(jax.jit(gppom_loss)(p, xs, ys, lam=1.3, mlp_alpha=0.1, jitter=0.03))
    want = _numpy_objective(p, xs, ys, lam=1.3, mlp_alpha=0.1, jitter=0.03)
    assert got == pytest.approx(want, rel=1e-10, abs=1e-8)


def test_hand_written_gradient_matches_autodiff_of_reference_objective():
    """The hand-written VJP (symmetric [n, n] products, one explicit K^-1) against autodiff,
    for every input it gives a gradient for: parameters, data, lam and jitter."""
    argnums = (0, 1, 2, 3, 5)
    with jax.enable_x64(True):
        p, xs, ys = _params(2, dx=2, dy=2, dtype=jnp.float64)
        args = (p, xs, ys, 1.3, 0.1, 0.03)
        got = jax.jit(jax.grad(gppom_loss, argnums))(*args)
        reference = functools.partial(_reference_objective, jnp)
        want = jax.jit(jax.grad(reference, argnums))(*args)
    pairs = zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True)
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_float32_objective_and_gradient_close_to_float64():
    with jax.enable_x64(True):
        p64, xs64, ys64 = _params(3, dx=2, dy=1, dtype=jnp.float64)
        l64, g64 = _value_and_grad(p64, xs64, ys64, 1.0, 0.1, 0.03)
        l64, g64 = float(l64), [np.asarray(a) for a in jax.tree_util.tree_leaves(g64)]
        p32 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), p64)
        xs32, ys32 = np.asarray(xs64, np.float32), np.asarray(ys64, np.float32)
    l32, g32 = _value_and_grad(p32, xs32, ys32, 1.0, 0.1, 0.03)
    assert float(l32) == pytest.approx(l64, rel=1e-4, abs=1e-3)
    scale = max(np.max(np.abs(b)) for b in g64)
    for a, b in zip(jax.tree_util.tree_leaves(g32), g64, strict=True):
        assert np.max(np.abs(np.asarray(a) - b)) < 1e-3 * scale


def test_fit_shapes_history_and_encode():
    x, y = _data(4)
    fit = fit_gppom(x, y, jax.random.key(0), FAST)
    assert fit.theta.shape == (N, 2)
    assert fit.loss_history.shape == (25,)
    assert np.all(np.isfinite(fit.loss_history)) and int(fit.n_skipped) == 0
    assert float(fit.final_loss) < float(fit.loss_history[0])  # it optimised something
    kp = fit.kernel_params
    assert kp["gamma_x"].shape == (2,) and kp["gamma_theta"].shape == (2,)
    assert all(np.all(np.asarray(v) > 0) for v in kp.values())
    # encode reproduces the training latents and maps new data without refitting
    np.testing.assert_allclose(fit.encode(x, y), fit.theta, rtol=1e-5, atol=1e-5)
    x_new, y_new = _data(5, n=7)
    assert fit.encode(x_new, y_new).shape == (7, 2)
    with pytest.raises(ConfigError, match="X.shape"):
        fit.encode(x_new[:, :1], y_new)


def test_same_key_same_fit_different_key_different_init():
    x, y = _data(6)
    a = fit_gppom(x, y, jax.random.key(7), FAST)
    b = fit_gppom(x, y, jax.random.key(7), FAST)
    c = fit_gppom(x, y, jax.random.key(8), FAST)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.loss_history, b.loss_history)
    assert not np.allclose(a.loss_history, c.loss_history)


def test_degenerate_data_duplicates_and_constant_columns():
    x, y = _data(9)
    x[N // 2 :] = x[: N // 2]  # every point duplicated
    y[N // 2 :] = y[: N // 2]
    x[:, 1] = 3.0  # a constant input column
    # loss and gradient are finite at the initial parameters
    xs, _, _ = G._standardise(jnp.asarray(x, jnp.float32))
    ys, _, _ = G._standardise(jnp.asarray(y, jnp.float32))
    assert np.all(np.asarray(xs[:, 1]) == 0.0)
    p = G._init_params(jax.random.key(0), xs, ys, FAST)
    loss, grads = _value_and_grad(p, xs, ys, 1.0, 0.1, 0.03)
    assert np.isfinite(float(loss))
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
    fit = fit_gppom(x, y, jax.random.key(0), FAST)
    assert int(fit.n_skipped) == 0 and np.all(np.isfinite(fit.theta))
    # duplicated inputs get identical latents
    np.testing.assert_allclose(fit.theta[: N // 2], fit.theta[N // 2 :], atol=1e-6)
    # a constant output column is handled the same way
    y[:, 1] = -2.0
    fit2 = fit_gppom(x, y, jax.random.key(0), FAST)
    assert int(fit2.n_skipped) == 0 and np.all(np.isfinite(fit2.theta))


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((10, 1)), np.zeros((9, 1)), r"Y.shape=\(9, 1\)"),
        (np.full((10, 1), np.nan), np.zeros((10, 1)), "X non-finite entries=10"),
        (np.zeros((10, 1)), np.array([[np.inf]] * 10), "Y non-finite entries=10"),
        (np.zeros((5, 1)), np.zeros((5, 1)), "n \\(samples\\)=5"),
        (np.zeros((10, 2, 2)), np.zeros((10, 1)), r"X.shape=\(10, 2, 2\)"),
        (np.array([["a"]] * 10), np.zeros((10, 1)), "X.dtype"),
    ],
)
def test_bad_data_is_a_clear_error(x, y, message):
    with pytest.raises(ConfigError, match=message):
        fit_gppom(x, y, jax.random.key(0), FAST)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("d_theta", 0),
        ("n_hidden", 2.5),
        ("n_steps", -1),
        ("precision", "float16"),
        ("lam", -1.0),
        ("mlp_alpha", 0.0),
        ("jitter", float("nan")),
        ("learning_rate", float("inf")),
    ],
)
def test_bad_config_is_a_clear_error(field, value):
    with pytest.raises(ConfigError, match=f"GPPOMConfig.{field}="):
        GPPOMConfig(**{field: value}).validate()
    assert issubclass(ConfigError, ValueError)


def test_batch_matches_single_fits():
    data = [two_mechanism_data(jax.random.key(s), n_per=30) for s in (10, 11)]
    xs = np.stack([d.x for d in data])[..., None]
    ys = np.stack([d.y for d in data])[..., None]
    keys = jax.random.split(jax.random.key(3), 2)
    batch = fit_gppom_batch(xs, ys, keys, MIXTURE)
    assert batch.theta.shape == (2, 60, 1) and batch.loss_history.shape == (2, 150)
    for i in range(2):
        single = fit_gppom(xs[i], ys[i], keys[i], MIXTURE)
        # float32 rounding differs between the batched and single programs, and Adam's first
        # steps turn rounding in near-zero gradients (the output bias) into full steps, so
        # compare the initial loss tightly, the first steps and the end loosely
        np.testing.assert_allclose(batch.loss_history[i, 0], single.loss_history[0], rtol=1e-5)
        np.testing.assert_allclose(batch.loss_history[i, :10], single.loss_history[:10], rtol=0.02)
        scale = abs(float(single.loss_history[0]))
        assert abs(float(batch.final_loss[i]) - float(single.final_loss)) < 0.02 * scale


def test_the_float64_path_runs_scoped():
    x, y = _data(12, n=12, dx=1, dy=1)
    fit64 = fit_gppom(x, y, jax.random.key(0), GPPOMConfig(n_steps=10, precision="float64"))
    assert fit64.theta.dtype == jnp.float32  # results come back in float32
    assert not jax.config.jax_enable_x64  # and the x64 switch was only scoped
    assert float(fit64.final_loss) < float(fit64.loss_history[0])


def test_two_mechanism_mixture_is_clustered():
    aris = []
    for seed in range(2):
        data = two_mechanism_data(jax.random.key(seed), n_per=30)
        fit = fit_gppom(data.x, data.y, jax.random.key(seed), MIXTURE)
        labels = GaussianMixture(2, n_init=3, random_state=0).fit_predict(np.asarray(fit.theta))
        aris.append(adjusted_rand_index(data.labels, labels))
        # clustering the raw (x, y) pairs is near chance on the same data
    raw = np.stack([data.x, data.y], axis=1)
    raw_ari = adjusted_rand_index(
        data.labels, GaussianMixture(2, n_init=3, random_state=0).fit_predict(raw)
    )
    assert min(aris) > 0.5, aris
    assert min(aris) > raw_ari + 0.3


@pytest.mark.parametrize("gram", [False, True])
@pytest.mark.parametrize("d", [1, 3, 20])
def test_sq_dist_matches_a_dense_numpy_reference(d, gram):
    rng = np.random.default_rng(d)
    a, b, w = rng.normal(size=(7, d)), rng.normal(size=(5, d)), rng.uniform(0.1, 2.0, size=d)
    expected = np.sum(w * (a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    got = G.sq_dist(jnp.asarray(a), jnp.asarray(b), jnp.asarray(w), gram=gram)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(G.sq_dist(jnp.asarray(a), jnp.asarray(a), gram=gram)) >= 0.0)
