"""Replay: one ring buffer for all agents, and minibatches drawn across agents by a sharing matrix.

All agents step together, so they share one write position; `fill` still counts per agent.
Row i of agent n's minibatch comes from agent m's buffer with probability P[n, m], uniformly
within what m has filled. P is an input array: changing it never recompiles.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from c3rl_jax.runtime.agent_mesh import gather_rows


class Transition(NamedTuple):
    """One batch of transitions; leading axes [N] (one step) or [N, B] (a minibatch)."""

    obs: jax.Array  # [..., obs_dim]
    action: jax.Array  # [..., act_dim], normalised to [-1, 1]
    reward: jax.Array  # [...]
    next_obs: jax.Array  # [..., obs_dim], the true next observation, also at the time limit
    terminated: jax.Array  # [...] bool, a true terminal state (no bootstrap)
    truncated: jax.Array  # [...] bool, the episode's time limit (bootstrap anyway)


class ReplayBuffer(NamedTuple):
    """data: Transition with leaves [N, capacity, ...]; ptr: [] next write slot; fill: [N]."""

    data: Transition
    ptr: jax.Array
    fill: jax.Array

    @property
    def capacity(self) -> int:
        return int(self.data.reward.shape[1])


def init_buffer(n_agents: int, capacity: int, obs_dim: int, act_dim: int) -> ReplayBuffer:
    """An empty buffer of `capacity` transitions per agent."""
    z = lambda *shape, dtype=jnp.float32: jnp.zeros((n_agents, capacity, *shape), dtype)  # noqa: E731
    data = Transition(
        obs=z(obs_dim),
        action=z(act_dim),
        reward=z(),
        next_obs=z(obs_dim),
        terminated=z(dtype=jnp.bool_),
        truncated=z(dtype=jnp.bool_),
    )
    return ReplayBuffer(data, jnp.array(0, jnp.int32), jnp.zeros((n_agents,), jnp.int32))


def add(buffer: ReplayBuffer, step: Transition) -> ReplayBuffer:
    """Write one transition per agent (leaves [N, ...]) at the shared ring position."""
    data = jax.tree.map(lambda buf, x: buf.at[:, buffer.ptr].set(x), buffer.data, step)
    capacity = buffer.capacity
    return ReplayBuffer(
        data=data,
        ptr=(buffer.ptr + 1) % capacity,
        fill=jnp.minimum(buffer.fill + 1, capacity),
    )


def sample_sources(key: jax.Array, sharing: jax.Array, batch_size: int) -> jax.Array:
    """Source agent of every minibatch row: [N, B] ints, row n's entries drawn from P[n].

    Inverse CDF of each row of P on N*B uniforms: far cheaper on the CPU than
    `jax.random.categorical`, which draws Gumbel noise of shape [N, B, N].
    """
    n_agents = sharing.shape[0]
    cdf = jnp.cumsum(sharing, axis=1)  # [N, N]
    u = jax.random.uniform(key, (n_agents, batch_size)) * cdf[:, -1:]
    src = jax.vmap(lambda c, v: jnp.searchsorted(c, v, side="right"))(cdf, u)
    return jnp.minimum(src, n_agents - 1)


def sample(
    key: jax.Array,
    buffer: ReplayBuffer,
    sharing: jax.Array,
    batch_size: int,
    mesh: Mesh | None = None,
) -> tuple[Transition, jax.Array]:
    """A minibatch per agent, leaves [N, B, ...], rows drawn across agents by `sharing` [N, N],
    and each row's slot id [N, B] (source agent * capacity + index: fixed per stored datum).
    With a `mesh` the buffer is split by agent and the rows travel as in `agent_mesh`."""
    k_src, k_idx = jax.random.split(key)
    src = sample_sources(k_src, sharing, batch_size)  # [N, B]
    u = jax.random.uniform(k_idx, src.shape)
    idx = jnp.floor(u * buffer.fill[src]).astype(jnp.int32)  # [N, B]
    batch = gather_rows(buffer.data, src, idx, mesh)
    return batch, src * buffer.capacity + idx
