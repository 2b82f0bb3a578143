import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax import TrainConfig, train
from c3rl_jax.learners.ddpg import DDPG, DDPGConfig, datum_noise
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
    assert config.exploration == "none" and config.learner_config.prior_scale > 0
    results = train(config)
    np.testing.assert_allclose(results.sharing, 1 / 3, rtol=1e-6)
    assert np.all(np.isfinite(results.returns))


def test_seed_sampling_scales_follow_the_task_reward_and_value_ranges():
    config = TrainConfig(task="pendulum", sharing="seed_sampling").resolved()
    value_range = 16.27 * sum(0.99**t for t in range(200))  # 200 steps, gamma 0.99
    assert abs(config.learner_config.prior_scale - 0.05 * value_range) < 1e-6 * value_range
    assert abs(config.learner_config.reward_noise - 0.1 * 16.27) < 1e-9
    sparse = dataclasses.replace(config, reward="sparse", gamma=1.0)
    assert sparse.seed_sampling_scales() == (0.05 * 200, 0.1)
    plain = dataclasses.replace(config, sharing="global").learner_config
    assert plain.prior_scale == 0.0 and plain.reward_noise == 0.0


def test_default_seeded_critics_disagree_on_the_same_data():
    """Two agents trained on identical minibatches still value them differently, by at least
    2% of the value range in RMS (these defaults give 3.9%; the former absolute ones, prior
    weight 1 and noise std 0.1, gave 0.2%)."""
    config = TrainConfig(task="pendulum", sharing="seed_sampling").resolved()
    ddpg = DDPG(config.learner_config, 3, 1)
    state = ddpg.init(jax.random.PRNGKey(0), 2)
    key = jax.random.PRNGKey(1)
    update = jax.jit(ddpg.update)
    for k in jax.random.split(key, 100):
        k_angle, k_speed, k_act, k_rew = jax.random.split(k, 4)
        angle = jax.random.uniform(k_angle, (64,), minval=-jnp.pi, maxval=jnp.pi)
        speed = jax.random.uniform(k_speed, (64,), minval=-8, maxval=8)
        obs = jnp.stack([jnp.cos(angle), jnp.sin(angle), speed], axis=1)  # pendulum's obs
        batch = Transition(
            obs=obs,
            action=jax.random.uniform(k_act, (64, 1), minval=-1, maxval=1),
            reward=-16.27 * jax.random.uniform(k_rew, (64,)),
            next_obs=obs,
            terminated=jnp.zeros(64, bool),
            truncated=jnp.zeros(64, bool),
        )
        both = jax.tree.map(lambda x: jnp.stack([x, x]), batch)
        state, _ = update(state, both, jnp.tile(jnp.arange(64), (2, 1)))
    q = jax.vmap(ddpg.q_value, in_axes=(0, 0, None, None))(
        state.critic, state.prior, batch.obs, batch.action
    )
    value_range = config.learner_config.prior_scale / config.prior_scale
    assert float(jnp.sqrt(jnp.mean((q[0] - q[1]) ** 2))) > 0.02 * value_range
