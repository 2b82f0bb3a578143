"""One jitted chunk of training: `lax.scan` over episodes, each a `lax.scan` over steps of
`vmap` over agents (act with OU noise, step every environment, store, update every agent).

Episodes have the environment's fixed length; an agent whose environment terminates early is
reset in place (the reset branch runs only on steps where some agent terminated).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from c3rl_jax import replay
from c3rl_jax.exploration import ExplorationConfig, draw_means, noise_step
from c3rl_jax.learners import Learner, LearnerState
from c3rl_jax.replay import ReplayBuffer, Transition
from c3rl_jax.runtime.guards import finite_per_agent


class RunState(NamedTuple):
    """All that carries across chunks. agents and buffer have leading axis [N]."""

    agents: LearnerState
    buffer: ReplayBuffer
    key: jax.Array
    total_steps: jax.Array  # [] environment steps taken by each agent so far


class ChunkInputs(NamedTuple):
    """Arrays a chunk reads but never changes: new values never trigger recompilation."""

    env_params: Any  # EnvParams, leaves [N]
    sharing: jax.Array  # [N, N], rows sum to 1
    clusters: jax.Array  # [N] int, current cluster of each agent (stratified exploration)


class EpisodeStats(NamedTuple):
    returns: jax.Array  # [N] sum of rewards over the episode
    critic_loss: jax.Array  # [N] critic loss averaged over the episode's steps (0 if no update)
    actor_loss: jax.Array  # [N] actor loss averaged likewise


def make_chunk(
    env,
    learner: Learner,
    explore: ExplorationConfig,
    warmup_steps: int,
    n_episodes: int,
    mesh: Mesh | None = None,
):
    """chunk(state, inputs) -> (state, EpisodeStats with leaves [n_episodes, N], [N] bool
    whether each agent's network parameters are all finite at the end).

    With a `mesh` (see `agent_mesh`) the state arrives split by agent and stays so; the
    minibatch gather is the only step that crosses devices.

    Before `warmup_steps` per agent actions are uniform in [-1, 1] and nothing is updated;
    afterwards actions are clip(actor(obs) + noise, -1, 1) (see `exploration`), scaled to the
    action space, and every step does one critic and one actor update per agent.
    """
    n_steps = env.default_params.max_steps_in_episode
    batch_size = learner.config.batch_size
    act_dim = learner.act_dim

    def action_high(params):
        return jnp.broadcast_to(jnp.asarray(env.action_space(params).high), (act_dim,))

    def episode(state: RunState, inputs: ChunkInputs):
        n_agents = inputs.sharing.shape[0]
        high = jax.vmap(action_high)(inputs.env_params)  # [N, act_dim]
        key, k_reset, k_mean = jax.random.split(state.key, 3)
        obs, env_state = jax.vmap(env.reset_env)(
            jax.random.split(k_reset, n_agents), inputs.env_params
        )
        episode_index = state.total_steps // n_steps
        mean = draw_means(k_mean, episode_index, inputs.clusters, act_dim, explore)

        def step(carry, t):
            agents, buffer, env_state, obs, noise, key, total, ret, losses = carry
            key, k_noise, k_rand, k_env, k_sample, k_reset = jax.random.split(key, 6)
            noise = noise_step(k_noise, noise, mean, explore)
            policy = jnp.clip(learner.act(agents, obs) + noise, -1.0, 1.0)
            random = jax.random.uniform(k_rand, (n_agents, act_dim), minval=-1.0, maxval=1.0)
            action = jnp.where(total < warmup_steps, random, policy)
            next_obs, env_state, reward, terminated, _ = jax.vmap(env.step_env)(
                jax.random.split(k_env, n_agents), env_state, action * high, inputs.env_params
            )
            truncated = jnp.full((n_agents,), t == n_steps - 1)
            buffer = replay.add(
                buffer, Transition(obs, action, reward, next_obs, terminated, truncated)
            )
            obs, env_state = jax.lax.cond(
                jnp.any(terminated),
                lambda: reset_terminated(k_reset, terminated, next_obs, env_state, inputs),
                lambda: (next_obs, env_state),
            )

            def learn(agents):
                batch, datum = replay.sample(k_sample, buffer, inputs.sharing, batch_size, mesh)
                agents, metrics = learner.update(agents, batch, datum)
                return agents, jnp.stack([metrics["critic_loss"], metrics["actor_loss"]])

            agents, step_losses = jax.lax.cond(
                total >= warmup_steps, learn, lambda a: (a, jnp.zeros((2, n_agents))), agents
            )
            carry = (
                agents,
                buffer,
                env_state,
                obs,
                noise,
                key,
                total + 1,
                ret + reward,
                losses + step_losses,
            )
            return carry, None

        zeros = jnp.zeros((n_agents,))
        init = (
            state.agents,
            state.buffer,
            env_state,
            obs,
            mean,
            key,
            state.total_steps,
            zeros,
            jnp.zeros((2, n_agents)),
        )
        (agents, buffer, _, _, _, key, total, ret, losses), _ = jax.lax.scan(
            step, init, jnp.arange(n_steps)
        )
        critic_loss, actor_loss = losses / n_steps
        return RunState(agents, buffer, key, total), EpisodeStats(ret, critic_loss, actor_loss)

    def reset_terminated(key, terminated, next_obs, env_state, inputs):
        n_agents = terminated.shape[0]
        obs_re, state_re = jax.vmap(env.reset_env)(
            jax.random.split(key, n_agents), inputs.env_params
        )
        pick = lambda re, st: jnp.where(  # noqa: E731
            terminated.reshape(-1, *([1] * (st.ndim - 1))), re, st
        )
        return pick(obs_re, next_obs), jax.tree.map(pick, state_re, env_state)

    def chunk(state: RunState, inputs: ChunkInputs):
        state, stats = jax.lax.scan(lambda s, _: episode(s, inputs), state, None, length=n_episodes)
        return state, stats, finite_per_agent((state.agents.actor, state.agents.critic))

    return chunk
