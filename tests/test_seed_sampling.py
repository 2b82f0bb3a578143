import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax import TrainConfig, train
from c3rl_jax.learners import make_learner
from c3rl_jax.learners.ddpg import DDPG, DDPGConfig, datum_noise
from c3rl_jax.learners.seed_sampling import SeedSampling
from c3rl_jax.learners.td3 import TD3Config
from c3rl_jax.replay import Transition


def seeded_q(seeded, state, obs, action):
    """Each agent's Q [N, B] as its seeded update sees it: critic plus the scaled prior."""

    def one(critic, prior, obs, action):
        return seeded.learner.q_value(critic, obs, action, seeded.q_prior(prior))

    return jax.vmap(one)(state.critic, state.prior, obs, action)


@pytest.mark.parametrize("name", ["ddpg", "td3"])
def test_prior_network_is_added_to_the_critic_and_never_trained(name):
    config = (TD3Config if name == "td3" else DDPGConfig)(hidden=(8,), batch_size=4)
    seeded = make_learner(name, config, 3, 1, seed_sampling=(2.0, 0.5))
    state = seeded.init(jax.random.PRNGKey(0), 2)
    obs, action = jnp.ones((2, 4, 3)), jnp.zeros((2, 4, 1))
    prior = jax.vmap(seeded.learner.critic.apply)(state.prior, obs, action)
    if name == "ddpg":
        plain = jax.vmap(seeded.learner.critic.apply)(state.critic, obs, action)
        np.testing.assert_allclose(seeded_q(seeded, state, obs, action), plain + 2.0 * prior)
    assert not np.allclose(prior[0], prior[1])  # each agent its own prior
    batch = Transition(obs, action, jnp.ones((2, 4)), obs, jnp.zeros((2, 4)), jnp.zeros((2, 4)))
    new, _ = seeded.update(state, batch, jnp.zeros((2, 4), jnp.int32))
    for a, b in zip(jax.tree.leaves(new.prior), jax.tree.leaves(state.prior), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(jax.tree.leaves(new.critic)[0], jax.tree.leaves(state.critic)[0])


def test_the_wrapped_agents_are_the_unwrapped_ones_and_updates_follow_the_hooks():
    """Same key: the wrapper's learner state equals the plain learner's; with prior_scale and
    reward_noise 0 its update equals the plain update; with noise only, it equals the plain
    update on the rewards plus the fixed per-datum noise (a hand construction)."""
    config = DDPGConfig(hidden=(8,), batch_size=4)
    plain = DDPG(config, 3, 1)
    key = jax.random.PRNGKey(3)
    base = plain.init(key, 2)
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(2, 4, 3)), jnp.float32)
    action = jnp.asarray(rng.uniform(-1, 1, size=(2, 4, 1)), jnp.float32)
    reward = jnp.asarray(rng.normal(size=(2, 4)), jnp.float32)
    batch = Transition(obs, action, reward, obs, jnp.zeros((2, 4)), jnp.zeros((2, 4)))
    datum = jnp.array([[1, 2, 3, 4], [1, 2, 3, 9]])
    off = SeedSampling(plain, 0.0, 0.0)
    state = off.init(key, 2)
    assert state.prior is None and state.seed is None
    for a, b in zip(jax.tree.leaves(state.learner), jax.tree.leaves(base), strict=True):
        np.testing.assert_array_equal(a, b)
    new, _ = off.update(state, batch, datum)
    expect, _ = plain.update(base, batch, datum)
    for a, b in zip(jax.tree.leaves(new.learner), jax.tree.leaves(expect), strict=True):
        np.testing.assert_array_equal(a, b)
    noisy = SeedSampling(plain, 0.0, 0.5)
    state = noisy.init(key, 2)
    noise = jax.vmap(datum_noise)(state.seed, datum)
    new, _ = noisy.update(state, batch, datum)
    expect, _ = plain.update(base, batch._replace(reward=reward + 0.5 * noise), datum)
    for a, b in zip(jax.tree.leaves(new.learner), jax.tree.leaves(expect), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_reward_noise_is_fixed_per_agent_and_datum():
    k0, k1 = jax.random.split(jax.random.PRNGKey(0))
    datum = jnp.array([5, 9, 5, 123456])
    a = np.asarray(datum_noise(k0, datum))
    assert a[0] == a[2] and a[0] != a[1]  # the same datum always gets the same noise
    np.testing.assert_array_equal(a, datum_noise(k0, datum))
    assert not np.allclose(a, datum_noise(k1, datum))  # another agent, other noise
    many = np.asarray(datum_noise(k0, jnp.arange(5000)))
    assert abs(many.mean()) < 0.05 and abs(many.std() - 1) < 0.05


def test_only_seed_sampling_wraps_the_learner():
    config = TrainConfig(task="pendulum").resolved()
    assert config.seed_sampling is None
    state = DDPG(config.learner_config, 3, 1).init(jax.random.PRNGKey(0), 2)
    assert not hasattr(state, "prior") and not hasattr(state, "seed")


def test_seed_sampling_run_pools_data_and_acts_greedily(tiny_config):
    config = dataclasses.replace(tiny_config, sharing="seed_sampling").resolved()
    assert config.exploration == "none" and config.seed_sampling[0] > 0
    results = train(config)
    np.testing.assert_allclose(results.sharing, 1 / 3, rtol=1e-6)
    assert np.all(np.isfinite(results.returns))


def test_seed_sampling_scales_follow_the_task_reward_and_value_ranges():
    config = TrainConfig(task="pendulum", sharing="seed_sampling").resolved()
    value_range = 16.27 * sum(0.99**t for t in range(200))  # 200 steps, gamma 0.99
    prior_weight, noise_std = config.seed_sampling
    assert abs(prior_weight - 0.05 * value_range) < 1e-6 * value_range
    assert abs(noise_std - 0.1 * 16.27) < 1e-9
    sparse = dataclasses.replace(config, reward="sparse", gamma=1.0)
    assert sparse.seed_sampling_scales() == (0.05 * 200, 0.1)
    assert dataclasses.replace(config, sharing="global").seed_sampling is None


def test_default_seeded_critics_disagree_on_the_same_data():
    """Two agents trained on identical minibatches still value them differently, by at least
    2% of the value range in RMS (these defaults give 3.9%; the former absolute ones, prior
    weight 1 and noise std 0.1, gave 0.2%)."""
    config = TrainConfig(task="pendulum", sharing="seed_sampling").resolved()
    seeded = make_learner("ddpg", config.learner_config, 3, 1, config.seed_sampling)
    state = seeded.init(jax.random.PRNGKey(0), 2)
    key = jax.random.PRNGKey(1)
    update = jax.jit(seeded.update)
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
    q = seeded_q(seeded, state, jnp.stack([batch.obs] * 2), jnp.stack([batch.action] * 2))
    value_range = config.seed_sampling[0] / config.prior_scale
    assert float(jnp.sqrt(jnp.mean((q[0] - q[1]) ** 2))) > 0.02 * value_range
