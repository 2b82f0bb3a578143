"""Ornstein-Uhlenbeck exploration noise for all agents at once."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class OUConfig:
    theta: float = 0.15
    sigma: float = 0.2
    dt: float = 1e-2


def ou_step(key: jax.Array, noise: jax.Array, mean: jax.Array, cfg: OUConfig) -> jax.Array:
    """x' = x + theta (mu - x) dt + sigma sqrt(dt) eps; noise, mean and result [N, act_dim]."""
    eps = jax.random.normal(key, noise.shape)
    return noise + cfg.theta * (mean - noise) * cfg.dt + cfg.sigma * jnp.sqrt(cfg.dt) * eps
