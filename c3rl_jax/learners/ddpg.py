"""DDPG (Lillicrap et al. 2016) for many agents at once: every array has a leading agent axis.

Actor and critic are flax modules; targets follow by Polyak averaging; both use optax Adam.
Each agent's update is written for one agent and `jax.vmap`-ed over the population.

An update takes an optional `q_prior(obs, action) -> [B]` added to every Q value: the hook of
seed sampling's wrapper (`learners.seed_sampling`), which also perturbs the rewards it passes.
"""

from dataclasses import dataclass
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from c3rl_jax.replay import Transition


@dataclass(frozen=True)
class DDPGConfig:
    hidden: tuple[int, ...] = (64, 64)
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 64


class Actor(nn.Module):
    """obs [..., obs_dim] -> action [..., act_dim] in [-1, 1]."""

    hidden: tuple[int, ...]
    act_dim: int

    @nn.compact
    def __call__(self, obs):
        x = obs
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return jnp.tanh(nn.Dense(self.act_dim)(x))


class Critic(nn.Module):
    """(obs [..., obs_dim], action [..., act_dim]) -> Q [...]."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs, action], axis=-1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]


class DDPGState(NamedTuple):
    """Network parameters, targets and optimiser states; every leaf has a leading axis [N]."""

    actor: dict
    critic: dict
    target_actor: dict
    target_critic: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def datum_noise(seed: jax.Array, datum: jax.Array) -> jax.Array:
    """Standard normal noise [B] fixed by one agent's key and each datum's slot id [B]."""
    return jax.vmap(lambda d: jax.random.normal(jax.random.fold_in(seed, d)))(datum)


def polyak(tau: float, target, online):
    """Targets moved a fraction tau toward the online parameters: (1 - tau) target + tau online."""
    return jax.tree.map(lambda t, s: (1.0 - tau) * t + tau * s, target, online)


class DDPG:
    """Batched DDPG: `init` builds N agents, `act` and `update` map over the agent axis."""

    def __init__(self, config: DDPGConfig, obs_dim: int, act_dim: int):
        self.config = config
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.actor = Actor(config.hidden, act_dim)
        self.critic = Critic(config.hidden)
        self.actor_tx = optax.adam(config.actor_lr)
        self.critic_tx = optax.adam(config.critic_lr)

    def init(self, key: jax.Array, n_agents: int) -> DDPGState:
        """Independently initialised agents, leaves [N, ...], each leaf its own buffer."""
        return jax.jit(jax.vmap(self._init_one))(jax.random.split(key, n_agents))

    KEYS = ("actor", "critic", "prior", "seed")  # what one agent's key splits into

    def agent_keys(self, key: jax.Array) -> dict:
        """One agent's key split into the named keys of KEYS; "prior" and "seed" are seed
        sampling's (its wrapper draws them from the same split, so a seed gives the same
        agents with and without it)."""
        return dict(zip(self.KEYS, jax.random.split(key, len(self.KEYS)), strict=True))

    def init_critic(self, key: jax.Array, obs: jax.Array, action: jax.Array) -> dict:
        """One agent's critic parameters (TD3: its twins)."""
        return self.critic.init(key, obs, action)

    def _init_one(self, key: jax.Array) -> DDPGState:
        keys = self.agent_keys(key)
        obs, action = jnp.zeros((self.obs_dim,)), jnp.zeros((self.act_dim,))
        actor = self.actor.init(keys["actor"], obs)
        critic = self.init_critic(keys["critic"], obs, action)
        return DDPGState(
            actor=actor,
            critic=critic,
            target_actor=actor,
            target_critic=critic,
            actor_opt=self.actor_tx.init(actor),
            critic_opt=self.critic_tx.init(critic),
        )

    @staticmethod
    def with_prior(q: jax.Array, q_prior, obs: jax.Array, action: jax.Array):
        """q [...] plus q_prior(obs, action) when given (seed sampling's prior), else q."""
        return q if q_prior is None else q + q_prior(obs, action)

    def q_value(self, critic: dict, obs: jax.Array, action: jax.Array, q_prior=None):
        """The critic's Q [...], plus q_prior(obs, action) when given."""
        return self.with_prior(self.critic.apply(critic, obs, action), q_prior, obs, action)

    def actor_step(self, state, q_fn, obs: jax.Array):
        """One Adam step of the actor up q_fn(obs, action) [B]: (actor, actor_opt, loss)."""

        def actor_loss(params):
            return -jnp.mean(q_fn(obs, self.actor.apply(params, obs)))

        loss, grad = jax.value_and_grad(actor_loss)(state.actor)
        updates, actor_opt = self.actor_tx.update(grad, state.actor_opt, state.actor)
        return optax.apply_updates(state.actor, updates), actor_opt, loss

    def act(self, state: DDPGState, obs: jax.Array) -> jax.Array:
        """Deterministic actions [N, act_dim] for observations [N, obs_dim]."""
        return jax.vmap(self.actor.apply)(state.actor, obs)

    def update(
        self, state: DDPGState, batch: Transition, datum: jax.Array
    ) -> tuple[DDPGState, dict]:
        """One critic and one actor step per agent; batch leaves [N, B, ...]; datum [N, B] the
        rows' slot ids (unused here: seed sampling's wrapper fixes reward noise by them)."""
        return jax.vmap(self.update_one)(state, batch)

    def update_one(
        self, state: DDPGState, batch: Transition, q_prior=None
    ) -> tuple[DDPGState, dict]:
        """One agent's update on batch leaves [B, ...], every Q plus q_prior when given."""
        cfg = self.config
        next_action = self.actor.apply(state.target_actor, batch.next_obs)
        next_q = self.q_value(state.target_critic, batch.next_obs, next_action, q_prior)
        target = batch.reward + cfg.gamma * (1.0 - batch.terminated) * next_q
        target = jax.lax.stop_gradient(target)

        def critic_loss(params):
            q = self.q_value(params, batch.obs, batch.action, q_prior)
            return jnp.mean((q - target) ** 2)

        c_loss, c_grad = jax.value_and_grad(critic_loss)(state.critic)
        c_updates, critic_opt = self.critic_tx.update(c_grad, state.critic_opt, state.critic)
        critic = optax.apply_updates(state.critic, c_updates)

        actor, actor_opt, a_loss = self.actor_step(
            state, lambda obs, a: self.q_value(critic, obs, a, q_prior), batch.obs
        )
        new_state = DDPGState(
            actor=actor,
            critic=critic,
            target_actor=polyak(cfg.tau, state.target_actor, actor),
            target_critic=polyak(cfg.tau, state.target_critic, critic),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
        )
        return new_state, {"critic_loss": c_loss, "actor_loss": a_loss}
