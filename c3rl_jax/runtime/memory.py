"""Memory a run needs, estimated before anything is allocated, and checked against what the
device has free."""

import math
import os

import jax

from c3rl_jax.errors import ConfigError

FLOAT = 4  # bytes of float32 / int32


def replay_bytes_per_agent(capacity: int, obs_dim: int, act_dim: int) -> int:
    """obs, next_obs, action, reward (float32) and two flags (bool) per stored transition."""
    return capacity * ((2 * obs_dim + act_dim + 1) * FLOAT + 2)


def learner_bytes_per_agent(learner) -> int:
    """Bytes of one agent's learner state (networks, targets, optimiser states, priors), from
    its shapes (`jax.eval_shape`: nothing is allocated)."""
    shapes = jax.eval_shape(lambda key: learner.init(key, 1), jax.random.PRNGKey(0))
    return sum(math.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(shapes))


def available_bytes(device: jax.Device) -> int | None:
    """Free memory of `device` (accelerators report it; on the CPU, the host's free RAM)."""
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def check_fits(n_agents: int, per_agent: int, device: jax.Device, margin: float = 0.8) -> None:
    """Refuse a run whose state cannot fit in `margin` of the free memory."""
    need = n_agents * per_agent
    free = available_bytes(device)
    if free is not None and need > margin * free:
        raise ConfigError(
            f"n_agents={n_agents} is invalid: the run needs about {need / 2**30:.2f} GiB "
            f"({per_agent / 2**20:.2f} MiB per agent) but {device.platform} has "
            f"{free / 2**30:.2f} GiB free; lower n_agents or buffer_size"
        )
