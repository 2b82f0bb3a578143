"""Task registry: a task is an environment factory, a default population and default settings.

Users add their own with `register_task(Task(...))`; nothing in the package needs editing.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax

from c3rl_jax.envs.ar import AutoregressiveControl, validate_ar_params
from c3rl_jax.envs.cartpole_swingup import CartPoleSwingUp, validate_cartpole_params
from c3rl_jax.envs.pendulum import REWARD_MODES, WindyPendulum, validate_pendulum_params
from c3rl_jax.population import Population, grouped_population
from c3rl_jax.registry import Registry


@dataclass(frozen=True)
class Task:
    """name: registry key.
    make_env: reward mode -> gymnax Environment (params may carry an agent axis).
    make_population: (key, n_agents) -> Population, the default grouped population.
    validate_params: raises `ConfigError` on non-physical parameters.
    defaults: TrainConfig field -> value that makes DDPG learn this task (overridable).
    reward_range: reward mode -> the span of one step's reward (max - min, or the spread of
        random-action rewards where unbounded); it scales seed sampling's prior and noise.
    """

    name: str
    make_env: Callable[[str], Any]
    make_population: Callable[[jax.Array, int], Population]
    validate_params: Callable[[Any], None]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    reward_modes: tuple[str, ...] = REWARD_MODES
    reward_range: Mapping[str, float] = field(default_factory=lambda: {"dense": 1.0, "sparse": 1.0})


def env_dims(env) -> tuple[int, int]:
    """(obs_dim, act_dim) of a gymnax environment with flat Box spaces."""
    params = env.default_params
    return env.observation_space(params).shape[0], env.action_space(params).shape[0]


_TASKS: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    """Add (or replace) a task under `task.name`; returns it."""
    return _TASKS.register(task)


def get_task(name: str) -> Task:
    return _TASKS.get(name)


def task_names() -> list[str]:
    return sorted(_TASKS.names())


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
        # dense: cost in [0, pi^2 + 0.1 * 8^2 + 0.001 * 2^2]; sparse: 0 or 1
        reward_range={"dense": 16.27, "sparse": 1.0},
    )
)


# Three AR(2) systems, all stable, that differ in dynamics (one smooth, one oscillatory with a
# reversed action gain) and in target. Holding s = omega takes a = omega (1 - phi1 - phi2) / beta:
# 0.6, -0.3 and -0.25, well inside [-1, 1].
AR_GROUPS = {
    "phi1": [0.9, 0.3, 1.2],
    "phi2": [-0.2, 0.4, -0.5],
    "beta": [0.5, 1.0, -0.6],
    "omega": [1.0, -1.0, 0.5],
}


def ar_population(key: jax.Array, n_agents: int = 20) -> Population:
    """Three groups (7/7/6 for 20 agents) from `AR_GROUPS`, 5% jitter on phi1, phi2, beta and
    omega."""
    return grouped_population(
        key,
        AutoregressiveControl().default_params,
        group_values=AR_GROUPS,
        n_agents=n_agents,
        jitter={"phi1": 0.05, "phi2": 0.05, "beta": 0.05, "omega": 0.05},
    )


# Short light poles, the default pole, long heavy poles.
CARTPOLE_GROUPS = {"half_length": [0.3, 0.5, 0.8], "masspole": [0.05, 0.1, 0.3]}


def cartpole_population(key: jax.Array, n_agents: int = 20) -> Population:
    """Three groups (7/7/6 for 20 agents) from `CARTPOLE_GROUPS`, 5% jitter on the pole's
    half-length and mass and on the cart's mass."""
    return grouped_population(
        key,
        CartPoleSwingUp().default_params,
        group_values=CARTPOLE_GROUPS,
        n_agents=n_agents,
        jitter={"half_length": 0.05, "masspole": 0.05, "masscart": 0.05},
    )


register_task(
    Task(
        name="ar",
        make_env=lambda reward: AutoregressiveControl(reward=reward),
        make_population=ar_population,
        validate_params=validate_ar_params,
        # 100 episodes of 100 steps: dense DDPG settles within ~50, sparse keeps improving
        defaults={"episodes": 100, "hidden": (64, 64), "actor_lr": 1e-3, "critic_lr": 1e-3},
        # dense is unbounded below: 5 is the 1st-99th percentile spread of random-action rewards
        reward_range={"dense": 5.0, "sparse": 1.0},
    )
)

register_task(
    Task(
        name="cartpole_swingup",
        make_env=lambda reward: CartPoleSwingUp(reward=reward),
        make_population=cartpole_population,
        validate_params=validate_cartpole_params,
        # 100 episodes of 500 steps (about 3 minutes for 20 agents on 2 CPU cores)
        defaults={"episodes": 100, "hidden": (64, 64), "actor_lr": 1e-3, "critic_lr": 1e-3},
        reward_range={"dense": 1.0, "sparse": 1.0},  # both in [0, 1]
    )
)
