"""c3rl-jax: causal coordinated concurrent reinforcement learning in JAX.

The public names load on first use, so that a multi-host run can join its cluster
(`c3rl_jax.runtime.agent_mesh.start_distributed()`) before anything starts JAX's backend, and
so that the CPU gets one host device per core first (`runtime.host_devices`).
"""

import importlib
from importlib.metadata import version as _version

from c3rl_jax.runtime import host_devices

__version__ = _version("c3rl-jax")
host_devices.configure()  # one host device per CPU core, before JAX starts

_HOMES = {
    "ConfigError": "c3rl_jax.errors",
    "Population": "c3rl_jax.population",
    "Results": "c3rl_jax.runtime.results",
    "SharingMethod": "c3rl_jax.sharing",
    "Task": "c3rl_jax.tasks",
    "TrainConfig": "c3rl_jax.config",
    "custom_population": "c3rl_jax.population",
    "get_task": "c3rl_jax.tasks",
    "load_policy": "c3rl_jax.analysis.policy",
    "register_sharing": "c3rl_jax.sharing",
    "register_task": "c3rl_jax.tasks",
    "task_names": "c3rl_jax.tasks",
    "train": "c3rl_jax.training",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'c3rl_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # loaded once
    return value
