"""Seed sampling (Dimakopoulou, Osband, Van Roy 2018) as a wrapper around any learner.

Each agent gets a fixed random prior network, critic-shaped and never trained, whose output
times `prior_scale` is added to every Q value of its critic(s); and every stored datum's
reward is perturbed by `reward_noise` times standard normal noise fixed per (agent, datum),
so that agents sharing the same data still follow their own randomised value functions. The
wrapped learner keeps its own state and update; it only receives the prior as its update's
`q_prior` hook and the perturbed rewards in the batch.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from c3rl_jax.learners.ddpg import datum_noise
from c3rl_jax.replay import Transition


class SeededState(NamedTuple):
    """The wrapped learner's state and, per agent (leading axis [N]), the prior critic's
    parameters and the reward noise's key (None when their scale is 0)."""

    learner: Any
    prior: dict | None
    seed: jax.Array | None

    @property
    def actor(self):
        return self.learner.actor

    @property
    def critic(self):
        return self.learner.critic


class SeedSampling:
    """A learner (DDPG, TD3, anything with `agent_keys`, `critic` and `update_one(state,
    batch, q_prior)`) with seed sampling's prior and reward noise."""

    def __init__(self, learner, prior_scale: float, reward_noise: float):
        self.learner = learner
        self.prior_scale, self.reward_noise = prior_scale, reward_noise
        self.config, self.actor = learner.config, learner.actor
        self.obs_dim, self.act_dim = learner.obs_dim, learner.act_dim

    def init(self, key: jax.Array, n_agents: int) -> SeededState:
        """The learner's agents and, from the same per-agent keys, the priors and noise keys."""

        def extras(agent_key):
            keys = self.learner.agent_keys(agent_key)
            obs, action = jnp.zeros((self.obs_dim,)), jnp.zeros((self.act_dim,))
            prior = None
            if self.prior_scale > 0:
                prior = self.learner.critic.init(keys["prior"], obs, action)
            return prior, keys["seed"] if self.reward_noise > 0 else None

        prior, seed = jax.jit(jax.vmap(extras))(jax.random.split(key, n_agents))
        return SeededState(self.learner.init(key, n_agents), prior, seed)

    def q_prior(self, prior: dict | None):
        """One agent's hook: (obs, action) -> prior_scale * prior(obs, action) [B], or None."""
        if prior is None:
            return None
        return lambda obs, action: self.prior_scale * self.learner.critic.apply(prior, obs, action)

    def act(self, state: SeededState, obs: jax.Array) -> jax.Array:
        return self.learner.act(state.learner, obs)

    def update(
        self, state: SeededState, batch: Transition, datum: jax.Array
    ) -> tuple[SeededState, dict]:
        """The learner's update of every agent, with its prior added to Q and its fixed noise
        added to the rewards; datum [N, B] the rows' slot ids, which fix the noise."""

        def one(inner, prior, seed, batch, datum):
            if seed is not None:
                noise = self.reward_noise * datum_noise(seed, datum)
                batch = batch._replace(reward=batch.reward + noise)
            return self.learner.update_one(inner, batch, self.q_prior(prior))

        inner, metrics = jax.vmap(one)(state.learner, state.prior, state.seed, batch, datum)
        return state._replace(learner=inner), metrics
