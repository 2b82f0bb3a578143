"""Exploration noise for all agents at once.

Modes (static): "ou" - Ornstein-Uhlenbeck noise around zero (plain DDPG); "coordinated" - OU
noise around a per-agent mean mu_n drawn afresh every episode from N(0, sigma_k^2), sigma_k
annealed (the paper's coordinated exploration); "gaussian" - independent N(0, sigma^2) noise
every step; "none" - greedy actions.

Coordinated means are drawn "independent"ly, or "stratified": a cluster of c agents splits
(0, 1) into c equal strata, gives each agent one of them in random order and a uniform level
within it, and maps the level through N(0, sigma_k^2)'s inverse CDF. Every agent's mean is
then N(0, sigma_k^2) marginally, as the method specifies (a cluster of one is an ordinary
draw), while the agents of one cluster are spread evenly and never explore alike by chance.
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


def noise_scale(cfg: ExplorationConfig, episode: int) -> float:
    """The size of episode k's exploration, as logged: sigma_k of the coordinated means, the
    OU or Gaussian sigma, 0 for greedy actions."""
    if cfg.mode == "coordinated":
        return float(mean_scale(episode, cfg))
    return 0.0 if cfg.mode == "none" else cfg.sigma


LEVEL_EPS = 1e-7  # levels are kept in [eps, 1 - eps] so the inverse CDF stays finite


def stratified_quantiles(key: jax.Array, clusters: jax.Array) -> jax.Array:
    """[N] quantile levels, each uniform on (0, 1) marginally: within each cluster of size c,
    (rank + u) / c with rank a random permutation of 0..c-1 and u ~ U(0, 1) per agent, so the
    cluster holds exactly one level in each stratum [i / c, (i + 1) / c). clusters: int [N]."""
    k_order, k_jitter = jax.random.split(key)
    order = jax.random.uniform(k_order, clusters.shape)
    same = clusters[:, None] == clusters[None, :]  # [N, N]
    rank = jnp.sum(same & (order[None, :] < order[:, None]), axis=1)
    size = jnp.sum(same, axis=1)
    levels = (rank + jax.random.uniform(k_jitter, clusters.shape)) / size
    return jnp.clip(levels, LEVEL_EPS, 1.0 - LEVEL_EPS)


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
