"""Pendulum-v1 with a constant horizontal wind on the rod, dense or sparse reward.

The physics are gymnax's / gymnasium's Pendulum-v1 plus a wind force `w` (N) acting at the
rod's centre, which adds `w * (l / 2) * cos(theta)` to the torque. With `w = 0` and the default
`m`, `l` a step equals gymnasium's Pendulum-v1. Every parameter but the episode length may carry
a leading agent axis, so a whole population steps with one `jax.vmap`.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from c3rl_jax.errors import check

REWARD_MODES = ("dense", "sparse")
SPARSE_ANGLE = 0.2  # sparse reward: 1[|angle_normalize(theta)| < SPARSE_ANGLE]


@struct.dataclass
class PendulumState(environment.EnvState):
    theta: jax.Array
    theta_dot: jax.Array
    last_u: jax.Array
    time: jax.Array


@struct.dataclass
class PendulumParams(environment.EnvParams):
    max_speed: float = 8.0
    max_torque: float = 2.0
    dt: float = 0.05
    g: float = 10.0
    m: float = 1.0
    l: float = 1.0  # noqa: E741
    w: float = 0.0
    max_steps_in_episode: int = struct.field(pytree_node=False, default=200)


def angle_normalize(x: jax.Array) -> jax.Array:
    """Wrap an angle into [-pi, pi)."""
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


class WindyPendulum(environment.Environment[PendulumState, PendulumParams]):
    """Pendulum-v1 with wind; `reward` is "dense" (Pendulum-v1's cost) or "sparse"."""

    def __init__(self, reward: str = "dense"):
        super().__init__()
        check(reward in REWARD_MODES, "reward", reward, f"one of {REWARD_MODES}")
        self.reward_mode = reward
        self.obs_shape = (3,)

    @property
    def default_params(self) -> PendulumParams:
        return PendulumParams()

    def step_env(
        self, key: jax.Array, state: PendulumState, action: jax.Array, params: PendulumParams
    ) -> tuple[jax.Array, PendulumState, jax.Array, jax.Array, dict[str, Any]]:
        """One Euler step; `action` is the torque, shape [1] or []."""
        u = jnp.clip(jnp.reshape(action, ()), -params.max_torque, params.max_torque)
        th, thdot = state.theta, state.theta_dot
        if self.reward_mode == "dense":
            reward = -(angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2)
        else:
            reward = (jnp.abs(angle_normalize(th)) < SPARSE_ANGLE).astype(jnp.float32)
        wind_torque = params.w * (params.l / 2) * jnp.cos(th)
        new_thdot = (
            thdot
            + (
                3 * params.g / (2 * params.l) * jnp.sin(th)
                + 3.0 / (params.m * params.l**2) * (u + wind_torque)
            )
            * params.dt
        )
        new_thdot = jnp.clip(new_thdot, -params.max_speed, params.max_speed)
        new_th = th + new_thdot * params.dt
        state = PendulumState(theta=new_th, theta_dot=new_thdot, last_u=u, time=state.time + 1)
        terminated = jnp.array(False)
        return self.get_obs(state), state, reward, terminated, {"discount": jnp.array(1.0)}

    def reset_env(self, key: jax.Array, params: PendulumParams) -> tuple[jax.Array, PendulumState]:
        """Angle uniform in [-pi, pi], angular velocity uniform in [-1, 1]."""
        high = jnp.array([jnp.pi, 1.0])
        th, thdot = jax.random.uniform(key, (2,), minval=-high, maxval=high)
        state = PendulumState(theta=th, theta_dot=thdot, last_u=jnp.array(0.0), time=jnp.array(0))
        return self.get_obs(state), state

    def get_obs(self, state: PendulumState, params=None, key=None) -> jax.Array:
        """[cos(theta), sin(theta), theta_dot], shape [3]."""
        return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot])

    def is_terminated(self, state: PendulumState, params: PendulumParams) -> jax.Array:
        return jnp.array(False)

    @property
    def name(self) -> str:
        return f"WindyPendulum-{self.reward_mode}"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: PendulumParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        return spaces.Box(-params.max_torque, params.max_torque, (1,), jnp.float32)

    def observation_space(self, params: PendulumParams) -> spaces.Box:
        high = jnp.array([1.0, 1.0, params.max_speed], dtype=jnp.float32)
        return spaces.Box(-high, high, (3,), jnp.float32)


def validate_pendulum_params(params: PendulumParams) -> None:
    """Raise `ConfigError` on non-finite or non-physical parameters (any agent axis)."""
    for name in ("max_speed", "max_torque", "dt", "g", "m", "l", "w"):
        value = np.asarray(getattr(params, name), dtype=np.float64)
        check(bool(np.all(np.isfinite(value))), f"params.{name}", value, "finite values")
        if name != "w":
            check(bool(np.all(value > 0)), f"params.{name}", value, "positive values")
    check(
        params.max_steps_in_episode > 0,
        "params.max_steps_in_episode",
        params.max_steps_in_episode,
        "a positive integer",
    )
