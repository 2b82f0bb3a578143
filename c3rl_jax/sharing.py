"""Sharing matrices P [N, N]: row n says from whose buffers agent n draws its replay data."""

import numpy as np

from c3rl_jax.errors import check

FIXED_MODES = ("individual", "global", "oracle")


def individual(n_agents: int) -> np.ndarray:
    """P = I: every agent learns from its own data only."""
    return np.eye(n_agents, dtype=np.float32)


def uniform(n_agents: int) -> np.ndarray:
    """P uniform: every agent draws from every buffer alike (naive global sharing)."""
    return np.full((n_agents, n_agents), 1.0 / n_agents, dtype=np.float32)


def oracle(groups: np.ndarray) -> np.ndarray:
    """P uniform within the true groups; groups: int array [N]."""
    groups = np.asarray(groups)
    same = (groups[:, None] == groups[None, :]).astype(np.float32)
    return same / same.sum(axis=1, keepdims=True)


def fixed_sharing(mode: str, groups: np.ndarray) -> np.ndarray:
    """The P of a fixed sharing mode for a population with labels `groups` [N]."""
    check(mode in FIXED_MODES, "sharing", mode, f"one of {FIXED_MODES}")
    n_agents = len(groups)
    if mode == "individual":
        return individual(n_agents)
    if mode == "global":
        return uniform(n_agents)
    return oracle(groups)


def validate_sharing_matrix(sharing, n_agents: int, atol: float = 1e-4) -> np.ndarray:
    """A user-supplied P as float32 [N, N], or `ConfigError`: shape, finiteness, rows sum to 1."""
    p = np.asarray(sharing, dtype=np.float64)
    check(
        p.shape == (n_agents, n_agents),
        "sharing_matrix.shape",
        p.shape,
        f"({n_agents}, {n_agents}) for {n_agents} agents",
    )
    check(bool(np.all(np.isfinite(p))), "sharing_matrix", "non-finite entries", "finite values")
    check(bool(np.all(p >= 0)), "sharing_matrix.min", float(p.min()), "non-negative entries")
    sums = p.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1)))
    check(
        bool(np.allclose(sums, 1.0, atol=atol)),
        f"sharing_matrix row {worst} sum",
        float(sums[worst]),
        f"every row summing to 1 (within {atol})",
    )
    return p.astype(np.float32)
