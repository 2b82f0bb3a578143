"""The ANM-MM synthetic generator: laws, mechanisms, noise, post-nonlinearities, labels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax.causal import (
    CAUSES,
    Mechanism,
    direction_pair,
    sample_cause,
    sample_mixture,
    two_mechanism_data,
)
from c3rl_jax.errors import ConfigError


def test_two_mechanism_data_shapes_labels_and_determinism():
    a = two_mechanism_data(jax.random.key(0), n_per=50)
    b = two_mechanism_data(jax.random.key(0), n_per=50)
    c = two_mechanism_data(jax.random.key(1), n_per=50)
    assert a.x.shape == a.y.shape == a.labels.shape == (100,)
    np.testing.assert_array_equal(a.labels, np.repeat([0, 1], 50))
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.allclose(a.x, c.x)
    assert float(a.x.min()) >= 0.0 and float(a.x.max()) <= 1.0


def test_exp_mechanism_parameters_are_in_their_ranges():
    comps = [Mechanism("exp_slow", "none"), Mechanism("exp_fast", "none")]
    for seed in range(5):
        data = sample_mixture(jax.random.key(seed), comps, 40)
        t = -np.log(np.asarray(data.y)) / np.asarray(data.x)
        slow, fast = t[np.asarray(data.labels) == 0], t[np.asarray(data.labels) == 1]
        # one t per component, drawn from U[1, 1.1] and U[3, 3.1]
        assert np.ptp(slow) < 1e-3 and 1.0 <= slow.mean() <= 1.1
        assert np.ptp(fast) < 1e-3 and 3.0 <= fast.mean() <= 3.1


def test_noise_laws_and_scales():
    x_free = sample_mixture(jax.random.key(0), [Mechanism("neg", "none")], 500)
    np.testing.assert_allclose(x_free.y, -x_free.x)
    normal = sample_mixture(jax.random.key(0), [Mechanism("neg", "normal")], 4000)
    resid = np.asarray(normal.y + normal.x)
    assert resid.std() == pytest.approx(0.05, rel=0.05) and abs(resid.mean()) < 0.005
    uniform = sample_mixture(jax.random.key(0), [Mechanism("neg", "uniform")], 4000)
    resid = np.asarray(uniform.y + uniform.x)
    assert resid.min() >= 0 and resid.max() <= 0.2 and resid.mean() == pytest.approx(0.1, 0.05)
    scaled = sample_mixture(jax.random.key(0), [Mechanism("neg", "laplace", 0.5)], 4000)
    resid = np.asarray(scaled.y + scaled.x)
    assert np.mean(np.abs(resid)) == pytest.approx(0.5, rel=0.1)  # Laplace(0, b): E|e| = b


@pytest.mark.parametrize("law", CAUSES)
def test_cause_laws(law):
    x = np.asarray(sample_cause(jax.random.key(3), law, 5000))
    assert x.shape == (5000,) and np.all(np.isfinite(x))
    expected_mean = {
        "uniform": 0.5,
        "normal": 0.0,
        "exponential": 0.5,
        "laplace": 0.0,
        "lognormal": np.exp(0.5),
    }[law]
    assert x.mean() == pytest.approx(expected_mean, abs=0.1)
    if law in ("uniform", "exponential", "lognormal"):
        assert x.min() >= 0


@pytest.mark.parametrize(
    ("post", "fn"),
    [
        ("inv_square", lambda t: 1 / (t**2 + 1)),
        ("square", lambda t: t**2),
        ("sin", np.sin),
        ("cos", np.cos),
        ("cbrt", np.cbrt),
    ],
)
def test_post_nonlinearities(post, fn):
    data = sample_mixture(jax.random.key(0), [Mechanism("neg", "none", None, post)], 50)
    np.testing.assert_allclose(data.y, fn(-np.asarray(data.x)), rtol=1e-5, atol=1e-6)


def test_direction_pair_and_unequal_counts():
    data, desc = direction_pair(jax.random.key(0), n_per=20)
    assert data.x.shape == (40,) and set(np.unique(data.labels)) == {0, 1}
    assert desc["cause"] in ("uniform", "exponential", "lognormal")
    mixed = sample_mixture(jax.random.key(0), [Mechanism(), Mechanism("exp_fast")], [5, 7])
    assert np.sum(np.asarray(mixed.labels) == 1) == 7
    assert jnp.issubdtype(mixed.labels.dtype, jnp.integer)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Mechanism(mechanism="sqrt").validate(), "Mechanism.mechanism='sqrt'"),
        (lambda: Mechanism(noise="cauchy").validate(), "Mechanism.noise='cauchy'"),
        (lambda: Mechanism(noise_scale=-1.0).validate(), "Mechanism.noise_scale=-1.0"),
        (lambda: sample_mixture(jax.random.key(0), [Mechanism(post="tan")], 5), "post='tan'"),
        (lambda: sample_mixture(jax.random.key(0), [], 5), "components"),
        (lambda: sample_mixture(jax.random.key(0), [Mechanism()], [5, 5]), "n_per"),
        (lambda: sample_cause(jax.random.key(0), "beta", 5), "cause='beta'"),
    ],
)
def test_bad_specs_are_clear_errors(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
