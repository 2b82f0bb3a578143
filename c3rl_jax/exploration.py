"""Exploration noise for all agents at once.

Modes (static): "ou" - Ornstein-Uhlenbeck noise around zero (plain DDPG); "coordinated" - OU
noise around a per-agent mean mu_n drawn afresh every episode from N(0, sigma_k^2), sigma_k
annealed (the paper's coordinated exploration); "gaussian" - independent N(0, sigma^2) noise
every step; "none" - greedy actions.

Coordinated means are drawn "independent"ly, or "stratified": the agents of one cluster take
evenly spaced quantiles of N(0, sigma_k^2) in random order, so similar agents never explore
alike by chance.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

MODES = ("ou", "coordinated", "gaussian", "none")
MEAN_DRAWS = ("independent", "stratified")


@dataclass(frozen=True)
class ExplorationConfig:
    mode: str = "ou"
    theta: float = 0.15  # OU mean reversion
    sigma: float = 0.2  # OU scale, or the std of "gaussian" noise
    dt: float = 1e-2  # OU time step
    mean_draws: str = "stratified"
    mean_sigma: float = 0.5  # sigma_0 of the coordinated means
    mean_decay: float = 0.97  # sigma_k = max(floor, sigma_0 * decay^k), k = episode index
    mean_floor: float = 0.05


def mean_scale(episode: jax.Array, cfg: ExplorationConfig) -> jax.Array:
    """The annealed sigma_k of episode k (a scalar)."""
    return jnp.maximum(cfg.mean_floor, cfg.mean_sigma * cfg.mean_decay**episode)


def stratified_quantiles(key: jax.Array, clusters: jax.Array) -> jax.Array:
    """[N] quantile levels in (0, 1): within each cluster of size c, a random permutation of
    (i + 0.5) / c, i = 0..c-1. clusters: int array [N]."""
    u = jax.random.uniform(key, clusters.shape)
    same = clusters[:, None] == clusters[None, :]  # [N, N]
    rank = jnp.sum(same & (u[None, :] < u[:, None]), axis=1)
    size = jnp.sum(same, axis=1)
    return (rank + 0.5) / size


def draw_means(
    key: jax.Array, episode: jax.Array, clusters: jax.Array, act_dim: int, cfg: ExplorationConfig
) -> jax.Array:
    """The OU means of one episode, [N, act_dim] (zeros unless mode is "coordinated")."""
    n_agents = clusters.shape[0]
    if cfg.mode != "coordinated":
        return jnp.zeros((n_agents, act_dim))
    scale = mean_scale(episode, cfg)
    if cfg.mean_draws == "independent":
        return scale * jax.random.normal(key, (n_agents, act_dim))
    keys = jax.random.split(key, act_dim)
    levels = jax.vmap(stratified_quantiles, in_axes=(0, None))(keys, clusters)  # [A, N]
    return scale * ndtri(levels).T


def noise_step(key: jax.Array, noise: jax.Array, mean: jax.Array, cfg: ExplorationConfig):
    """The next noise [N, act_dim] from the current one and the episode's means."""
    eps = jax.random.normal(key, noise.shape)
    if cfg.mode == "gaussian":
        return cfg.sigma * eps
    if cfg.mode == "none":
        return jnp.zeros_like(noise)
    return noise + cfg.theta * (mean - noise) * cfg.dt + cfg.sigma * jnp.sqrt(cfg.dt) * eps
