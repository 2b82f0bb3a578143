"""Property-based tests: replay ring buffer, sharing matrices, config validation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from c3rl_jax import ConfigError, TrainConfig, replay
from c3rl_jax.replay import Transition
from c3rl_jax.sharing import fixed_sharing, validate_sharing_matrix

add = jax.jit(replay.add)


@settings(max_examples=25, deadline=None)
@given(n_agents=st.integers(1, 4), capacity=st.integers(1, 7), n_steps=st.integers(0, 20))
def test_ring_buffer_keeps_the_last_capacity_steps(n_agents, capacity, n_steps):
    buffer = replay.init_buffer(n_agents, capacity, obs_dim=1, act_dim=1)
    for t in range(n_steps):
        value = jnp.full((n_agents,), float(t))
        step = Transition(
            value[:, None],
            value[:, None],
            value,
            value[:, None],
            jnp.zeros(n_agents, bool),
            jnp.zeros(n_agents, bool),
        )
        buffer = add(buffer, step)
    assert int(buffer.ptr) == n_steps % capacity
    np.testing.assert_array_equal(buffer.fill, min(n_steps, capacity))
    kept = sorted(np.asarray(buffer.data.reward[0, : min(n_steps, capacity)]).tolist())
    assert kept == [float(t) for t in range(max(0, n_steps - capacity), n_steps)]


@settings(max_examples=50, deadline=None)
@given(
    groups=st.lists(st.integers(0, 5), min_size=1, max_size=40),
    mode=st.sampled_from(["individual", "global", "oracle"]),
)
def test_fixed_sharing_matrices_are_row_stochastic_for_any_population(groups, mode):
    p = fixed_sharing(mode, np.array(groups))
    n = len(groups)
    assert p.shape == (n, n) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(p > 0, (p > 0).T)  # who shares with whom is symmetric
    validate_sharing_matrix(p, n)  # and the validator accepts what the package builds


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_normalised_similarities_pass_validation(n, seed):
    """Any non-negative similarity with a positive diagonal, row-normalised, is a valid P."""
    v = np.random.default_rng(seed).dirichlet(np.ones(3), size=n)  # soft assignments [N, K]
    s = v @ v.T
    assert np.allclose(s, s.T)
    validate_sharing_matrix(s / s.sum(axis=1, keepdims=True), n)


BAD_VALUES = {
    "n_agents": st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), st.text()),
    "episodes": st.one_of(st.integers(max_value=0), st.floats(allow_nan=True)),
    "episodes_per_chunk": st.integers(max_value=0),
    "batch_size": st.one_of(st.integers(max_value=0), st.just(True)),
    "buffer_size": st.integers(max_value=0),
    "warmup_steps": st.integers(max_value=-1),
    "checkpoint_every": st.integers(max_value=-1),
    "actor_lr": st.one_of(st.floats(max_value=0), st.just(float("nan")), st.just(float("inf"))),
    "critic_lr": st.floats(max_value=0),
    "tau": st.one_of(st.floats(max_value=0), st.floats(min_value=1.0001, allow_infinity=False)),
    "gamma": st.one_of(st.floats(max_value=-1e-6), st.floats(min_value=1.0001)),
    "ou_theta": st.floats(max_value=0),
    "ou_sigma": st.one_of(st.floats(max_value=-1e-9), st.just(float("nan"))),
    "hidden": st.one_of(st.just(()), st.lists(st.integers(max_value=0), min_size=1).map(tuple)),
    "task": st.text().filter(lambda t: t not in ("pendulum", "ar", "cartpole_swingup")),
    "reward": st.text().filter(lambda t: t not in ("dense", "sparse")),
    "sharing": st.text().filter(lambda t: t not in ("individual", "global", "oracle", "custom")),
    "seed": st.one_of(st.floats(), st.text()),
}


@settings(max_examples=200, deadline=None)
@given(data=st.data(), field=st.sampled_from(sorted(BAD_VALUES)))
def test_any_bad_setting_raises_config_error_naming_the_field(data, field):
    value = data.draw(BAD_VALUES[field])
    try:
        dataclasses.replace(TrainConfig(), **{field: value}).resolved()
    except ConfigError as err:
        assert str(err).startswith(f"{field}=")
    else:
        raise AssertionError(f"{field}={value!r} was accepted")
