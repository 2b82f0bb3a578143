"""Sharing matrices P [N, N] (row n says from whose buffers agent n draws its replay data),
and the sharing methods behind `--sharing`, found by name in a registry.

A `SharingMethod` says what P a run starts with, whether P is then rebuilt from data (by which
mechanism-inference method by default), the exploration it gets by default, and whether its
learners are seeded (seed sampling's prior critic and reward noise). Add your own with
`register_sharing(SharingMethod(...))`.

The rebuilds of P from mechanism fits (c3rl, sysid) live in `c3rl_jax.sharing.adaptive`.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from c3rl_jax.errors import check
from c3rl_jax.registry import Registry

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


@dataclasses.dataclass(frozen=True)
class SharingMethod:
    """name: the registry key (`TrainConfig.sharing`); initial(n_agents, groups [N],
    matrix) -> the first P [N, N] (matrix: the user's `sharing_matrix`, given only when
    `takes_matrix`); mechanism: if set, P is rebuilt from data every `rebuild_every`
    episodes by this mechanism-inference method unless the config names another one among
    `mechanisms` (None: any registered); exploration: the default action noise; seeded: the
    learners get seed sampling's prior critic and reward noise."""

    name: str
    initial: Callable[[int, np.ndarray, Any], np.ndarray]
    mechanism: str | None = None
    mechanisms: tuple[str, ...] | None = None
    exploration: str = "ou"
    takes_matrix: bool = False
    seeded: bool = False
    description: str = ""

    @property
    def rebuilt(self) -> bool:
        return self.mechanism is not None


_SHARING: Registry[SharingMethod] = Registry("sharing")


def register_sharing(method: SharingMethod) -> SharingMethod:
    """Add (or replace) a method under `method.name`; returns it."""
    return _SHARING.register(method)


def get_sharing(name: str) -> SharingMethod:
    return _SHARING.get(name)


def sharing_names() -> list[str]:
    return _SHARING.names()  # in the order registered


def _custom(n_agents: int, groups, matrix) -> np.ndarray:
    check(matrix is not None, "sharing_matrix", None, 'an [N, N] array when sharing="custom"')
    return validate_sharing_matrix(matrix, n_agents)


for _mode in FIXED_MODES:
    register_sharing(
        SharingMethod(_mode, lambda n, groups, _, mode=_mode: fixed_sharing(mode, groups))
    )
register_sharing(SharingMethod("custom", _custom, takes_matrix=True))
register_sharing(
    SharingMethod(
        "c3rl",
        lambda n, groups, _: individual(n),  # P = I until the first rebuild
        mechanism="agent_gp",
        exploration="coordinated",
        description="P rebuilt from inferred mechanisms (the paper's method)",
    )
)
register_sharing(
    SharingMethod(
        "sysid",
        lambda n, groups, _: individual(n),
        mechanism="sysid",
        mechanisms=("sysid",),
        exploration="coordinated",
        description="c3rl with per-agent least squares (ablation)",
    )
)
register_sharing(
    SharingMethod(
        "seed_sampling",
        lambda n, groups, _: uniform(n),  # pools all agents' data
        exploration="none",
        seeded=True,
        description="pooled data, per-agent prior critics and reward noise",
    )
)
