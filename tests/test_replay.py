import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax import replay
from c3rl_jax.replay import Transition
from c3rl_jax.sharing import oracle


def step_of(n_agents, value):
    """A transition whose every field encodes `value` (and the agent index in obs[1])."""
    agents = jnp.arange(n_agents, dtype=jnp.float32)
    return Transition(
        obs=jnp.stack([jnp.full(n_agents, value, jnp.float32), agents], axis=1),
        action=jnp.full((n_agents, 1), value, jnp.float32),
        reward=jnp.full((n_agents,), value, jnp.float32),
        next_obs=jnp.zeros((n_agents, 2)),
        terminated=jnp.zeros((n_agents,), bool),
        truncated=jnp.full((n_agents,), value % 2 == 1),
    )


def test_ring_buffer_wraps_around_and_counts_fill():
    buffer = replay.init_buffer(n_agents=3, capacity=4, obs_dim=2, act_dim=1)
    for t in range(6):
        buffer = replay.add(buffer, step_of(3, t))
        assert np.asarray(buffer.fill).tolist() == [min(t + 1, 4)] * 3
    assert int(buffer.ptr) == 2
    # slots 0 and 1 were overwritten by steps 4 and 5
    assert np.asarray(buffer.data.reward[0]).tolist() == [4, 5, 2, 3]
    assert np.asarray(buffer.data.truncated[1]).tolist() == [False, True, False, True]
    np.testing.assert_array_equal(buffer.data.obs[:, 0, 1], [0, 1, 2])


def filled_buffer(n_agents, n_steps, capacity=64):
    buffer = replay.init_buffer(n_agents, capacity, obs_dim=2, act_dim=1)
    for t in range(n_steps):
        buffer = replay.add(buffer, step_of(n_agents, t))
    return buffer


def test_sampling_frequencies_follow_the_sharing_matrix():
    n_agents, batch = 4, 4000
    sharing = np.array(
        [[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]],
        np.float32,
    )
    batch_rows, _ = replay.sample(
        jax.random.PRNGKey(0), filled_buffer(n_agents, 10), jnp.asarray(sharing), batch
    )
    src = np.asarray(batch_rows.obs[..., 1]).astype(int)  # [N, B] source agent of each row
    freq = np.stack([np.bincount(row, minlength=n_agents) / batch for row in src])
    # binomial standard error <= sqrt(0.25 / 4000) ~ 0.008: 4.5 sigma tolerance
    np.testing.assert_allclose(freq, sharing, atol=0.036)
    assert np.all(freq[sharing == 0] == 0)


def test_sampling_stays_within_what_each_agent_has_filled():
    batch_rows, _ = replay.sample(
        jax.random.PRNGKey(1), filled_buffer(3, 5), jnp.asarray(oracle(np.array([0, 0, 1]))), 500
    )
    written = np.asarray(batch_rows.reward)
    assert written.min() >= 0 and written.max() <= 4
    assert set(np.unique(written).tolist()) == {0, 1, 2, 3, 4}
    src = np.asarray(batch_rows.obs[..., 1])
    assert set(np.unique(src[2]).tolist()) == {2.0}  # alone in its group
    assert set(np.unique(src[0]).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("n_agents", [1, 7])
def test_sources_have_shape_n_by_b(n_agents):
    src = replay.sample_sources(jax.random.PRNGKey(0), jnp.eye(n_agents), 9)
    assert src.shape == (n_agents, 9)
    np.testing.assert_array_equal(src, np.repeat(np.arange(n_agents)[:, None], 9, axis=1))


def test_datum_ids_name_the_source_agent_and_slot():
    """Each row's id is source agent * capacity + slot: unique across all agents' buffers."""
    capacity = 8
    buffer = filled_buffer(3, capacity, capacity)  # step t sits in slot t of every agent
    rows, datum = replay.sample(jax.random.PRNGKey(2), buffer, jnp.full((3, 3), 1 / 3), 300)
    slot, src = np.asarray(rows.obs[..., 0]), np.asarray(rows.obs[..., 1])
    np.testing.assert_array_equal(datum, src * capacity + slot)
    same_slot = slot[:, :, None] == slot[:, None, :]
    other_agent = src[:, :, None] != src[:, None, :]
    assert np.any(same_slot & other_agent)  # the case the id must tell apart
    ids = np.asarray(datum)
    assert not np.any((ids[:, :, None] == ids[:, None, :]) & other_agent)
