"""Task registry: a task is an environment factory, a default population and default settings.

Users add their own with `register_task(Task(...))`; nothing in the package needs editing.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax

from c3rl_jax.envs.pendulum import REWARD_MODES, WindyPendulum, validate_pendulum_params
from c3rl_jax.errors import check
from c3rl_jax.population import Population, grouped_population


@dataclass(frozen=True)
class Task:
    """name: registry key.
    make_env: reward mode -> gymnax Environment (params may carry an agent axis).
    make_population: (key, n_agents) -> Population, the default grouped population.
    validate_params: raises `ConfigError` on non-physical parameters.
    defaults: TrainConfig field -> value that makes DDPG learn this task (overridable).
    """

    name: str
    make_env: Callable[[str], Any]
    make_population: Callable[[jax.Array, int], Population]
    validate_params: Callable[[Any], None]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    reward_modes: tuple[str, ...] = REWARD_MODES


_REGISTRY: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add (or replace) a task under `task.name`; returns it."""
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    check(name in _REGISTRY, "task", name, f"one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def task_names() -> list[str]:
    return sorted(_REGISTRY)


def pendulum_population(key: jax.Array, n_agents: int = 20) -> Population:
    """Three wind groups w = -1, 0, +1 N (sizes 7/7/6 for 20 agents), 5% jitter on m and l."""
    return grouped_population(
        key,
        WindyPendulum().default_params,
        group_values={"w": [-1.0, 0.0, 1.0]},
        n_agents=n_agents,
        jitter={"m": 0.05, "l": 0.05},
    )


register_task(
    Task(
        name="pendulum",
        make_env=lambda reward: WindyPendulum(reward=reward),
        make_population=pendulum_population,
        validate_params=validate_pendulum_params,
        defaults={"episodes": 100},
    )
)
