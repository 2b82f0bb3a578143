"""Seeds in one program: S independent replicas of a run stepped by one jitted chunk.

A replica is the run with seed `seed + r`. Their device arrays are stacked by one rule: a
leaf with any axis gets a leading replica axis [S, ...] (networks, buffers, keys, P, cluster
labels, environment parameters); a scalar leaf (the buffer's ring position, the step count)
is the same in every replica, because all replicas step together, and is kept once. The
chunk of one run is `vmap`ped over the replica axis, so each replica's P indexes only its
own agents: no replay data crosses replicas (the sharing matrix of the whole program is
block-diagonal). On a mesh the replica axis is split over the devices (`shard_map`: whole
replicas per device, no communication at all); when the devices do not divide S, the last
replica is repeated to fill them (`layout`) and the repeats' results are dropped.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from c3rl_jax.runtime.agent_mesh import AXIS


def axes(tree: Any) -> Any:
    """The replica axis of each leaf of one replica's `tree`: 0 (stacked) or None (shared)."""
    return jax.tree.map(lambda x: 0 if np.ndim(x) >= 1 else None, tree)


def specs(tree: Any) -> Any:
    """Where each leaf of one replica's `tree` lives once stacked: split by replica, or
    replicated (a shared scalar)."""
    return jax.tree.map(lambda x: P(AXIS) if np.ndim(x) >= 1 else P(), tree)


def layout(n_replicas: int, devices: int | None, available: int) -> tuple[int, int]:
    """(devices to use, replicas to stack) for `n_replicas` on `devices` (None: as few of the
    `available` as give the shortest run, each device running ceil(S / D) replicas)."""
    if devices is None:
        per_device = math.ceil(n_replicas / min(available, n_replicas))
        devices = math.ceil(n_replicas / per_device)
    return devices, math.ceil(n_replicas / devices) * devices


def stack(trees: list) -> Any:
    """One tree from S replicas' trees of equal structure, by the rule above."""

    def one(*leaves):
        if np.ndim(leaves[0]) >= 1:
            return jnp.stack(leaves)
        values = {np.asarray(x).item() for x in leaves}
        assert len(values) == 1, f"a scalar leaf differs between replicas: {values}"
        return leaves[0]

    return jax.tree.map(one, *trees)


def replica(tree: Any, r: int) -> Any:
    """Replica r's tree out of a stacked `tree` (stacked leaves have two or more axes)."""
    return jax.tree.map(lambda x: x if np.ndim(x) == 0 else x[r], tree)


def batched(chunk, state: Any, mesh: Mesh | None):
    """chunk(state, inputs) of one run -> the same over stacked replicas (`state`: one
    replica's state, or its shapes); outputs (state, stats [S, E, N], finite [S, N])."""
    state_axes = axes(state)
    program = jax.vmap(chunk, in_axes=(state_axes, 0), out_axes=(state_axes, 0, 0))
    if mesh is None:
        return program
    return jax.shard_map(
        program,
        mesh=mesh,
        in_specs=(specs(state), P(AXIS)),
        out_specs=(specs(state), P(AXIS), P(AXIS)),
        check_vma=False,  # no collectives inside: each device runs its replicas alone
    )
