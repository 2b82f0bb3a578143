"""DDPG (Lillicrap et al. 2016) for many agents at once: every array has a leading agent axis.

Actor and critic are flax modules; targets follow by Polyak averaging; both use optax Adam.
Each agent's update is written for one agent and `jax.vmap`-ed over the population.

Seed sampling (Dimakopoulou, Osband, Van Roy 2018) is two options: `prior_scale > 0` gives each
agent a fixed random prior network (critic-shaped, never trained) added to its critic, and
`reward_noise > 0` perturbs every stored datum's reward by noise fixed per (agent, datum).
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
    prior_scale: float = 0.0
    reward_noise: float = 0.0


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
    prior: dict | None = None  # frozen prior critic (seed sampling), else None
    seed: jax.Array | None = None  # per-agent key of the fixed reward noise, else None


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

    def _init_one(self, key: jax.Array) -> DDPGState:
        k_actor, k_critic, k_prior, k_seed = jax.random.split(key, 4)
        obs, action = jnp.zeros((self.obs_dim,)), jnp.zeros((self.act_dim,))
        actor = self.actor.init(k_actor, obs)
        critic = self.critic.init(k_critic, obs, action)
        cfg = self.config
        return DDPGState(
            actor=actor,
            critic=critic,
            target_actor=actor,
            target_critic=critic,
            actor_opt=self.actor_tx.init(actor),
            critic_opt=self.critic_tx.init(critic),
            prior=self.critic.init(k_prior, obs, action) if cfg.prior_scale > 0 else None,
            seed=k_seed if cfg.reward_noise > 0 else None,
        )

    def with_prior(self, q: jax.Array, prior: dict | None, obs: jax.Array, action: jax.Array):
        """q [...] plus the scaled prior network's output under seed sampling (else q)."""
        if prior is None:
            return q
        return q + self.config.prior_scale * self.critic.apply(prior, obs, action)

    def q_value(self, critic: dict, prior: dict | None, obs: jax.Array, action: jax.Array):
        """The critic's Q [...], plus the scaled prior network's output under seed sampling."""
        return self.with_prior(self.critic.apply(critic, obs, action), prior, obs, action)

    def reward(self, state, batch: Transition, datum: jax.Array) -> jax.Array:
        """The batch's rewards [B], plus seed sampling's fixed per-datum noise."""
        if state.seed is None:
            return batch.reward
        return batch.reward + self.config.reward_noise * datum_noise(state.seed, datum)

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
        rows' slot ids (they fix each datum's reward noise under seed sampling)."""
        return jax.vmap(self._update_one)(state, batch, datum)

    def _update_one(
        self, state: DDPGState, batch: Transition, datum: jax.Array
    ) -> tuple[DDPGState, dict]:
        cfg = self.config
        next_action = self.actor.apply(state.target_actor, batch.next_obs)
        next_q = self.q_value(state.target_critic, state.prior, batch.next_obs, next_action)
        target = self.reward(state, batch, datum) + cfg.gamma * (1.0 - batch.terminated) * next_q
        target = jax.lax.stop_gradient(target)

        def critic_loss(params):
            q = self.q_value(params, state.prior, batch.obs, batch.action)
            return jnp.mean((q - target) ** 2)

        c_loss, c_grad = jax.value_and_grad(critic_loss)(state.critic)
        c_updates, critic_opt = self.critic_tx.update(c_grad, state.critic_opt, state.critic)
        critic = optax.apply_updates(state.critic, c_updates)

        actor, actor_opt, a_loss = self.actor_step(
            state, lambda obs, a: self.q_value(critic, state.prior, obs, a), batch.obs
        )
        new_state = DDPGState(
            actor=actor,
            critic=critic,
            target_actor=polyak(cfg.tau, state.target_actor, actor),
            target_critic=polyak(cfg.tau, state.target_critic, critic),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            prior=state.prior,
            seed=state.seed,
        )
        return new_state, {"critic_loss": c_loss, "actor_loss": a_loss}
