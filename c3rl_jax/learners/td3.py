"""TD3 (Fujimoto, van Hoof, Meger 2018) for many agents at once: every array has a leading
agent axis, as in `ddpg`.

Three changes to DDPG: twin critics, the target taking the smaller of their target values;
target policy smoothing, clipped Gaussian noise on the target action; and delayed updates,
the actor and all targets moving once every `policy_delay` critic steps. Seed sampling's
wrapper adds its prior to both critics, as `q_prior` (see `ddpg`).
"""

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from c3rl_jax.learners.ddpg import DDPG, DDPGConfig, polyak
from c3rl_jax.replay import Transition


@dataclass(frozen=True)
class TD3Config(DDPGConfig):
    """DDPG's settings plus: policy_noise, noise_clip (std and clip of the target-action
    noise, in normalised action units [-1, 1]) and policy_delay (critic steps per actor step)."""

    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2


class TD3State(NamedTuple):
    """Leaves [N, ...]; the twin critics' parameters have a further leading axis [2]."""

    actor: dict
    critic: dict  # [2, ...]: the twins
    target_actor: dict
    target_critic: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    step: jax.Array  # critic steps taken
    key: jax.Array  # per-agent key of the target smoothing noise (folded with `step`)


class TD3(DDPG):
    """Batched TD3: DDPG's networks, `init`, `act` and `update` (mapped over the agent
    axis), with its own per-agent state and update."""

    KEYS = ("actor", "critic", "prior", "seed", "noise")

    def init_critic(self, key: jax.Array, obs: jax.Array, action: jax.Array) -> dict:
        """The twin critics' parameters, leaves [2, ...]."""
        return jax.vmap(lambda k: self.critic.init(k, obs, action))(jax.random.split(key))

    def _init_one(self, key: jax.Array) -> TD3State:
        base = super()._init_one(key)
        return TD3State(*base, step=jnp.zeros((), jnp.int32), key=self.agent_keys(key)["noise"])

    def q_values(self, critic: dict, obs: jax.Array, action: jax.Array, q_prior=None):
        """Both critics' Q [2, ...], each plus q_prior(obs, action) when given."""
        q = jax.vmap(lambda p: self.critic.apply(p, obs, action))(critic)
        return self.with_prior(q, q_prior, obs, action)

    def target_action(self, state: TD3State, next_obs: jax.Array) -> jax.Array:
        """The smoothed target action [B, act_dim]: target actor plus clipped noise, clipped."""
        cfg = self.config
        key = jax.random.fold_in(state.key, state.step)
        action = self.actor.apply(state.target_actor, next_obs)
        noise = cfg.policy_noise * jax.random.normal(key, action.shape)
        noise = jnp.clip(noise, -cfg.noise_clip, cfg.noise_clip)
        return jnp.clip(action + noise, -1.0, 1.0)

    def update_one(self, state: TD3State, batch: Transition, q_prior=None) -> tuple[TD3State, dict]:
        """One critic step; every `policy_delay`-th step also the actor and the targets."""
        cfg = self.config
        next_action = self.target_action(state, batch.next_obs)
        next_q = self.q_values(state.target_critic, batch.next_obs, next_action, q_prior)
        target = batch.reward + cfg.gamma * (1.0 - batch.terminated) * jnp.min(next_q, axis=0)
        target = jax.lax.stop_gradient(target)

        def critic_loss(params):
            q = self.q_values(params, batch.obs, batch.action, q_prior)  # [2, B]
            return jnp.sum(jnp.mean((q - target) ** 2, axis=1))

        c_loss, c_grad = jax.value_and_grad(critic_loss)(state.critic)
        c_updates, critic_opt = self.critic_tx.update(c_grad, state.critic_opt, state.critic)
        critic = optax.apply_updates(state.critic, c_updates)

        actor, actor_opt, a_loss = self.actor_step(  # it climbs the first critic
            state, lambda obs, a: self.q_values(critic, obs, a, q_prior)[0], batch.obs
        )
        delayed = (state.actor, state.actor_opt, state.target_actor, state.target_critic)
        moved = (
            actor,
            actor_opt,
            polyak(cfg.tau, state.target_actor, actor),
            polyak(cfg.tau, state.target_critic, critic),
        )
        due = state.step % cfg.policy_delay == 0
        actor, actor_opt, target_actor, target_critic = jax.tree.map(
            lambda new, old: jnp.where(due, new, old), moved, delayed
        )
        new_state = state._replace(
            actor=actor,
            critic=critic,
            target_actor=target_actor,
            target_critic=target_critic,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            step=state.step + 1,
        )
        return new_state, {"critic_loss": c_loss, "actor_loss": a_loss}
