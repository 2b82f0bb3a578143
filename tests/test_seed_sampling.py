import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax import train
from c3rl_jax.agents.ddpg import DDPG, DDPGConfig, datum_noise
from c3rl_jax.replay import Transition


def test_prior_network_is_added_to_the_critic_and_never_trained():
    ddpg = DDPG(DDPGConfig(hidden=(8,), batch_size=4, prior_scale=2.0, reward_noise=0.5), 3, 1)
    state = ddpg.init(jax.random.PRNGKey(0), 2)
    obs, action = jnp.ones((2, 4, 3)), jnp.zeros((2, 4, 1))
    q = jax.vmap(ddpg.q_value)(state.critic, state.prior, obs, action)
    plain = jax.vmap(ddpg.critic.apply)(state.critic, obs, action)
    prior = jax.vmap(ddpg.critic.apply)(state.prior, obs, action)
    np.testing.assert_allclose(q, plain + 2.0 * prior, rtol=1e-5)
    assert not np.allclose(prior[0], prior[1])  # each agent its own prior
    batch = Transition(obs, action, jnp.ones((2, 4)), obs, jnp.zeros((2, 4)), jnp.zeros((2, 4)))
    new, _ = ddpg.update(state, batch, jnp.zeros((2, 4), jnp.int32))
    for a, b in zip(jax.tree.leaves(new.prior), jax.tree.leaves(state.prior), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(jax.tree.leaves(new.critic)[0], jax.tree.leaves(state.critic)[0])


def test_reward_noise_is_fixed_per_agent_and_datum():
    k0, k1 = jax.random.split(jax.random.PRNGKey(0))
    datum = jnp.array([5, 9, 5, 123456])
    a = np.asarray(datum_noise(k0, datum))
    assert a[0] == a[2] and a[0] != a[1]  # the same datum always gets the same noise
    np.testing.assert_array_equal(a, datum_noise(k0, datum))
    assert not np.allclose(a, datum_noise(k1, datum))  # another agent, other noise
    many = np.asarray(datum_noise(k0, jnp.arange(5000)))
    assert abs(many.mean()) < 0.05 and abs(many.std() - 1) < 0.05


def test_plain_ddpg_carries_no_prior_or_noise_key():
    state = DDPG(DDPGConfig(hidden=(8,)), 3, 1).init(jax.random.PRNGKey(0), 2)
    assert state.prior is None and state.seed is None


def test_seed_sampling_run_pools_data_and_acts_greedily(tiny_config):
    config = dataclasses.replace(tiny_config, sharing="seed_sampling").resolved()
    assert config.exploration == "none" and config.ddpg.prior_scale == 1.0
    results = train(config)
    np.testing.assert_allclose(results.sharing, 1 / 3, rtol=1e-6)
    assert np.all(np.isfinite(results.returns))
