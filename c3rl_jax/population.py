"""Populations: environment parameters with a leading agent axis, plus true group labels.

Group labels are for evaluation only (oracle sharing, cluster ARI); the c3rl method never sees
them.
"""

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax.errors import check


class Population(NamedTuple):
    """`params`: an EnvParams pytree whose leaves have shape [N]; `groups`: int array [N]."""

    params: Any
    groups: jax.Array

    @property
    def n_agents(self) -> int:
        return int(self.groups.shape[0])


def split_sizes(n_agents: int, n_groups: int) -> list[int]:
    """Near-equal group sizes, larger groups first: split_sizes(20, 3) == [7, 7, 6]."""
    check(n_agents >= n_groups, "n_agents", n_agents, f"at least the {n_groups} groups")
    base, extra = divmod(n_agents, n_groups)
    return [base + (g < extra) for g in range(n_groups)]


def grouped_population(
    key: jax.Array,
    base_params: Any,
    group_values: Mapping[str, Sequence[float]],
    n_agents: int,
    jitter: Mapping[str, float],
) -> Population:
    """Agents split into groups of near-equal size, each field set per group then jittered.

    group_values: field -> one value per group (all the same length G).
    jitter: field -> relative standard deviation of a per-agent multiplicative jitter,
        1 + jitter * N(0, 1), clipped to [0.5, 1.5] so no parameter changes sign.
    """
    n_groups = len(next(iter(group_values.values())))
    groups = np.repeat(np.arange(n_groups), split_sizes(n_agents, n_groups))
    keys = jax.random.split(key, len(jitter))
    fields = {}
    for name, values in group_values.items():
        fields[name] = jnp.asarray(values, dtype=jnp.float32)[groups]
    for k, (name, scale) in zip(keys, jitter.items(), strict=True):
        base = fields.get(name, jnp.full((n_agents,), getattr(base_params, name), jnp.float32))
        noise = jnp.clip(1.0 + scale * jax.random.normal(k, (n_agents,)), 0.5, 1.5)
        fields[name] = base * noise
    return Population(
        params=broadcast_params(base_params, n_agents, fields), groups=jnp.asarray(groups)
    )


def broadcast_params(base_params: Any, n_agents: int, overrides: Mapping[str, Any]) -> Any:
    """`base_params` with every leaf broadcast to [N] and the given fields replaced."""
    stacked = jax.tree.map(
        lambda x: jnp.full((n_agents,), x, dtype=jnp.asarray(x).dtype), base_params
    )
    return stacked.replace(**{k: jnp.asarray(v, jnp.float32) for k, v in overrides.items()})


def custom_population(base_params: Any, arrays: Mapping[str, Any], groups=None) -> Population:
    """A population from a user's own parameter arrays.

    arrays: field -> array [N] (fields not given keep `base_params`' value for every agent).
    groups: optional int array [N] of known labels (defaults to one group per agent).
    """
    check(len(arrays) > 0, "arrays", dict(arrays), "at least one parameter array")
    sizes = {}
    for name, value in arrays.items():
        check(
            hasattr(base_params, name),
            "population field",
            name,
            f"a field of {type(base_params).__name__}",
        )
        value = np.asarray(value)
        check(value.ndim == 1, f"population.{name}", value.shape, "a 1-D array [N]")
        sizes[name] = value.shape[0]
    n_agents = next(iter(sizes.values()))
    check(len(set(sizes.values())) == 1, "population sizes", sizes, "one common length N")
    check(n_agents > 0, "population size", n_agents, "at least one agent")
    groups = np.arange(n_agents) if groups is None else np.asarray(groups)
    check(
        groups.shape == (n_agents,), "groups", groups.shape, f"an int array of shape ({n_agents},)"
    )
    params = broadcast_params(base_params, n_agents, arrays)
    return Population(params=params, groups=jnp.asarray(groups, jnp.int32))
