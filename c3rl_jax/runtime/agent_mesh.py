"""The agent axis split over devices: a 1-D mesh, where each array lives, and the one
cross-device step of training (the minibatch gather driven by P).

One rule places every array (`place_agents`): a leaf with a leading agent axis [N] (networks,
optimiser state, environment state and parameters, replay buffers, the rows of P, cluster
labels) is split in equal blocks of N / D agents over the D devices of the mesh; any other
leaf (the scalar ring position and step counter, the run's key) is replicated. A new field of
the run's state is placed by the same rule without being listed anywhere. XLA partitions the
per-agent work (vmapped) without communication. The only
cross-agent step is the minibatch gather: row i of agent n's batch comes from agent src[n, i],
which may live on another device. `gather_rows` does it with two explicit collectives:

1. all-gather of the row addresses (src, idx) [N, B] (ints, small), so every device knows
   every request;
2. every device serves the requests that address its own agents (zeros elsewhere) and a
   reduce-scatter (`psum_scatter`) over the agent axis hands each device the [N / D, B] rows
   of its own agents. Exactly one device contributes a non-zero to each row, so the result
   equals the single-device gather bit for bit.

Mechanism inference and the GMM step run on the host; the new P is placed by the rule.
Multi-host runs call `jax.distributed.initialize()` first (``distributed=True``); the mesh then
spans every process's devices.
"""

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import xla_bridge
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from c3rl_jax.errors import ConfigError

AXIS = "agents"


def start_distributed() -> None:
    """Join a multi-host run; a no-op when already joined. The coordinator comes from
    JAX_COORDINATOR_ADDRESS (read by JAX), the process count and this process's id from
    JAX_NUM_PROCESSES / JAX_PROCESS_ID when set (else JAX's cluster auto-detection: SLURM,
    Open MPI, Kubernetes, TPU pods)."""
    if jax.distributed.is_initialized():
        return
    if xla_bridge.backends_are_initialized():
        raise ConfigError(
            "distributed=True is invalid at this point: JAX's backend has already started; "
            "call c3rl_jax.runtime.agent_mesh.start_distributed() "
            "(or jax.distributed.initialize()) "
            "first thing, before importing c3rl_jax's training modules or running any JAX code"
        )
    given = {}
    for name in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        value = os.environ.get(name)
        if value is not None and not value.isdigit():
            raise ConfigError(f"{name}={value!r} is invalid: a non-negative integer")
        given[name] = None if value is None else int(value)
    jax.distributed.initialize(
        num_processes=given["JAX_NUM_PROCESSES"], process_id=given["JAX_PROCESS_ID"]
    )


def to_host(tree: Any) -> Any:
    """Every leaf as a NumPy array holding the whole (global) array, also when its shards
    live on other hosts (then gathered from every process)."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def default_devices(n_agents: int, available: int) -> int:
    """devices=None: the most of the `available` devices that split n_agents evenly."""
    return max(d for d in range(1, available + 1) if n_agents % d == 0)


def make_mesh(devices: int | None, n_agents: int, name: str = "n_agents") -> Mesh | None:
    """A 1-D mesh over the first `devices` devices (None: `default_devices`) for a leading
    axis of n_agents (`name`: what it counts, for errors; "seeds" when it holds replicas);
    None for one device.

    Raises ConfigError when the count is not available or does not divide n_agents.
    """
    available = jax.devices()
    count = default_devices(n_agents, len(available)) if devices is None else devices
    if not 1 <= count <= len(available):
        raise ConfigError(
            f"devices={devices} is invalid: must be between 1 and the {len(available)} "
            f"device(s) JAX sees ({available[0].platform})"
        )
    if n_agents % count:
        raise ConfigError(
            f"{name}={n_agents} is invalid with devices={count}: the axis is split in "
            f"equal blocks, so {name} must be a multiple of {count} (or set devices to a "
            f"divisor of {n_agents}, e.g. devices=1)"
        )
    if count == 1:
        return None
    return Mesh(np.array(available[:count]), (AXIS,))


def agent_spec(leaf: Any, n_agents: int) -> P:
    """The placement rule: split a leaf whose leading axis is the agent axis [N, ...] over the
    mesh, replicate any other."""
    shape = np.shape(leaf)
    return P(AXIS) if len(shape) >= 1 and shape[0] == n_agents else P()


def place_agents(tree: Any, mesh: Mesh | None, n_agents: int) -> Any:
    """Every leaf of `tree` put on the mesh by `agent_spec` (`tree` itself without a mesh)."""
    if mesh is None:
        return tree
    return jax.tree.map(
        lambda x: jax.device_put(x, NamedSharding(mesh, agent_spec(x, n_agents))), tree
    )


def gather_rows(data: Any, src: jax.Array, idx: jax.Array, mesh: Mesh | None) -> Any:
    """data leaves [N, C, ...] -> leaves [N, B, ...] with row (n, i) = data[src[n, i], idx[n, i]].

    Without a mesh a plain gather; with one, the two collectives described in the module
    docstring (call inside jit; data sharded by agent).
    """
    if mesh is None:
        return jax.tree.map(lambda x: x[src, idx], data)

    def serve(local, src, idx):  # local leaves [N/D, C, ...]; src, idx [N, B] (all requests)
        n_local = jax.tree.leaves(local)[0].shape[0]
        offset = src - jax.lax.axis_index(AXIS) * n_local
        mine = (offset >= 0) & (offset < n_local)
        row = jnp.clip(offset, 0, n_local - 1)

        def one(x):
            rows = x[row, idx]
            rows = jnp.where(mine.reshape(*mine.shape, *([1] * (rows.ndim - 2))), rows, 0)
            summed = jax.lax.psum_scatter(
                rows.astype(jnp.float32 if x.dtype == jnp.bool_ else x.dtype),
                AXIS,
                scatter_dimension=0,
                tiled=True,
            )
            return summed.astype(x.dtype)

        return jax.tree.map(one, local)

    return jax.shard_map(serve, mesh=mesh, in_specs=(P(AXIS), P(), P()), out_specs=P(AXIS))(
        data, src, idx
    )
