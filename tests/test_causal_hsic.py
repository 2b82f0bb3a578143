"""HSIC gamma test against a direct NumPy/SciPy computation, its size on independent data,
its power on dependent data, and the causal-direction rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from c3rl_jax.causal import (
    GPPOMConfig,
    causal_direction,
    direction_pair,
    gamma_ppf,
    hsic_gamma_test,
    hsic_statistic,
)
from c3rl_jax.errors import ConfigError

# the same static config and shapes as MIXTURE in test_causal_gppom.py (shared compile)
MIXTURE = GPPOMConfig(n_steps=150, precision="float32")


def _numpy_hsic_test(x, y, alpha):
    """Gretton et al. (2007) gamma test written out directly (explicit H, loops kept simple)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    n = len(x)

    def gram(a):
        d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        upper = d2[np.triu_indices(n, 1)]
        med = np.median(upper[upper > 0])
        return np.exp(-d2 / med)

    K, L = gram(x), gram(y)
    H = np.eye(n) - np.ones((n, n)) / n
    Kc, Lc = H @ K @ H, H @ L @ H
    stat = np.trace(Kc @ Lc) / n
    v = (Kc * Lc / 6) ** 2
    var = (v.sum() - np.trace(v)) / n / (n - 1)
    var *= 72 * (n - 4) * (n - 5) / n / (n - 1) / (n - 2) / (n - 3)
    mu_x = (K.sum() - np.trace(K)) / n / (n - 1)
    mu_y = (L.sum() - np.trace(L)) / n / (n - 1)
    mean = (1 + mu_x * mu_y - mu_x - mu_y) / n
    shape, scale = mean**2 / var, var * n / mean
    return (
        stat,
        stats.gamma.ppf(1 - alpha, shape, scale=scale),
        stats.gamma.sf(stat, shape, scale=scale),
    )


@pytest.mark.parametrize(
    ("q", "shape", "scale"),
    [(0.95, 0.5, 2.0), (0.95, 3.0, 0.1), (0.99, 40.0, 1e-3), (0.5, 0.05, 7.0)],
)
def test_gamma_ppf_matches_scipy(q, shape, scale):
    got = float(gamma_ppf(q, shape, scale))
    assert got == pytest.approx(stats.gamma.ppf(q, shape, scale=scale), rel=1e-4)


@pytest.mark.parametrize("dependent", [False, True])
def test_hsic_test_matches_numpy_reference(dependent):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    noise = rng.normal(size=(60, 1))
    y = x[:, :1] ** 2 + 0.3 * noise if dependent else noise
    stat, thresh, p_value = _numpy_hsic_test(x, y, 0.05)
    with jax.enable_x64(True):
        test = hsic_gamma_test(jnp.asarray(x), jnp.asarray(y), 0.05)
        got = [float(v) for v in (test.statistic, test.threshold, test.p_value)]
    np.testing.assert_allclose(got, [stat, thresh, p_value], rtol=1e-6, atol=1e-12)
    test32 = hsic_gamma_test(x.astype(np.float32), np.asarray(y, np.float32), 0.05)
    assert float(test32.statistic) == pytest.approx(stat, rel=1e-4)
    assert float(test32.threshold) == pytest.approx(thresh, rel=1e-4)
    assert float(hsic_statistic(x, y)) == pytest.approx(stat, rel=1e-4)
    assert bool(test32.reject) == dependent


def test_hsic_small_for_independent_large_for_dependent():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k1, (200,))
    noise = jax.random.normal(k2, (200,))
    independent = hsic_gamma_test(x, jax.random.normal(k3, (200,)))
    dependent = hsic_gamma_test(x, jnp.cos(2 * x) + 0.2 * noise)
    assert float(independent.ratio) < 1.0 and float(independent.p_value) > 0.05
    assert float(dependent.ratio) > 5.0 and float(dependent.p_value) < 1e-6
    # n * HSIC_b of independent samples is of the order of its null mean, ~1 + O(1/n)
    assert float(independent.statistic) < 3 * float(independent.shape * independent.scale)


def test_false_positive_rate_near_alpha():
    keys = jax.random.split(jax.random.key(42), 2)
    x = jax.random.normal(keys[0], (600, 50))
    y = jax.random.laplace(keys[1], (600, 50))
    tests = jax.jit(jax.vmap(hsic_gamma_test, in_axes=(0, 0, None)))(x, y, 0.05)
    rate = float(jnp.mean(tests.reject))
    # 600 draws: the binomial standard error at 5% is 0.9%
    assert 0.025 <= rate <= 0.08, rate
    # the p-values of the gamma approximation are roughly uniform under independence
    assert 0.35 < float(jnp.mean(tests.p_value)) < 0.65


def test_hsic_validation_and_duplicates():
    with pytest.raises(ConfigError, match="y.shape"):
        hsic_gamma_test(np.zeros(10), np.zeros(9))
    with pytest.raises(ConfigError, match="n \\(samples\\)=5"):
        hsic_gamma_test(np.arange(5.0), np.arange(5.0))
    # a constant variable is independent of everything: finite and no rejection
    x = np.random.default_rng(1).normal(size=30)
    test = hsic_gamma_test(x, np.ones(30))
    assert np.isfinite(float(test.statistic)) and not bool(test.reject)


def test_causal_direction_on_a_mixture_pair():
    data, _ = direction_pair(jax.random.key(3), n_per=30, cause="uniform", noise="uniform")
    forward = causal_direction(data.x, data.y, jax.random.key(0), MIXTURE)
    assert forward.direction == 1
    assert forward.ratio_xy < forward.ratio_yx
    assert forward.fit_xy.theta.shape == (60, 1)
    backward = causal_direction(data.y, data.x, jax.random.key(0), MIXTURE)
    assert backward.direction == -1
    assert backward.ratio_xy == pytest.approx(forward.ratio_yx, rel=1e-5)
    with pytest.raises(ConfigError, match="alpha"):
        causal_direction(data.x, data.y, jax.random.key(0), MIXTURE, alpha=1.5)
