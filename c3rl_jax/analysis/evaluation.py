"""Policies run on environments without learning: greedy returns of every policy on every
environment, and the transitions a set of policies produces on one environment.

Both are one jitted program over vmapped episodes. All (policy, environment) pairs see the
same reset keys, so differences between policies are not differences of luck.
"""

import jax
import jax.numpy as jnp

from c3rl_jax.learners import Learner
from c3rl_jax.replay import Transition

# who acts when collecting transitions (`policy_transitions`): the given actors, or uniform
# random actions (random=True)
BEHAVIOURS = ("policies", "random")


def episode(
    env,
    learner: Learner,
    actor,
    params,
    key: jax.Array,
    noise_std: float = 0.0,
    random: bool = False,
):
    """One episode of one actor on one environment: (return [], transitions with leaves
    [T, ...], alive [T] whether each step came before termination). Actions are
    clip(actor(obs) + N(0, noise_std^2), -1, 1), or uniform in [-1, 1] with `random` (stored
    normalised, applied times the bound); rewards after termination do not count."""
    n_steps = env.default_params.max_steps_in_episode
    act_dim = learner.act_dim
    high = jnp.broadcast_to(jnp.asarray(env.action_space(params).high), (act_dim,))
    k_reset, k_steps = jax.random.split(key)
    obs, state = env.reset_env(k_reset, params)

    def step(carry, key):
        obs, state, ret, alive = carry
        k_noise, k_env = jax.random.split(key)
        if random:
            action = jax.random.uniform(k_noise, (act_dim,), minval=-1.0, maxval=1.0)
        else:
            noise = noise_std * jax.random.normal(k_noise, (act_dim,))
            action = jnp.clip(learner.actor.apply(actor, obs) + noise, -1.0, 1.0)
        next_obs, state, reward, done, _ = env.step_env(k_env, state, action * high, params)
        stored = Transition(obs, action, reward, next_obs, done, jnp.array(False))
        carry = (next_obs, state, ret + jnp.where(alive, reward, 0.0), alive & ~done)
        return carry, (stored, alive)

    init = (obs, state, jnp.zeros(()), jnp.array(True))
    (_, _, ret, _), (data, alive) = jax.lax.scan(step, init, jax.random.split(k_steps, n_steps))
    return ret, data, alive


def greedy_returns(env, learner: Learner, actors, env_params, key: jax.Array, episodes: int):
    """Mean greedy return [P, M] of actor parameters with leaves [P, ...] on environments with
    parameter leaves [M], over `episodes` episodes each."""

    def one(actor, params, key):
        return episode(env, learner, actor, params, key)[0]

    over_keys = jax.vmap(one, in_axes=(None, None, 0))
    over_envs = jax.vmap(over_keys, in_axes=(None, 0, None))
    over_policies = jax.vmap(over_envs, in_axes=(0, None, None))
    keys = jax.random.split(key, episodes)
    return jax.jit(over_policies)(actors, env_params, keys).mean(axis=-1)


def own_returns(env, learner: Learner, actors, env_params, key: jax.Array, episodes: int):
    """Mean greedy return [N] of each actor (leaves [N, ...]) on its own environment (params
    leaves [N]) over `episodes` episodes, with the reset keys of `greedy_returns`."""

    def one(actor, params, key):
        return episode(env, learner, actor, params, key)[0]

    over_keys = jax.vmap(one, in_axes=(None, None, 0))
    keys = jax.random.split(key, episodes)
    return jax.jit(jax.vmap(over_keys, in_axes=(0, 0, None)))(actors, env_params, keys).mean(-1)


def policy_transitions(
    env, learner: Learner, actors, params, key: jax.Array, noise_std: float, random: bool = False
):
    """One episode of each actor (leaves [P, ...]) on one environment (params leaves [1]) with
    action noise (or, with `random`, P episodes of uniform random actions): transitions with
    leaves [P, T, ...] and alive [P, T]."""
    one = jax.tree.map(lambda a: a[0], params)

    def run(actor, key):
        return episode(env, learner, actor, one, key, noise_std, random)[1:]

    n_policies = jax.tree.leaves(actors)[0].shape[0]
    return jax.jit(jax.vmap(run))(actors, jax.random.split(key, n_policies))
