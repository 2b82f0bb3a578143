"""Cart-pole swing-up with a continuous force, dense or sparse reward (dm_control's shapes).

Physics: the classic cart-pole (Barto, Sutton & Anderson 1983; Florian 2007), a uniform pole of
mass m_p and half-length l on a cart of mass m_c, theta = 0 upright and positive toward +x,
force F = force_mag * u with u in [-1, 1] (clipped). Friction is viscous on both joints, as in
dm_control's cartpole model whose joint damping these defaults copy (cart: -cart_friction * x_dot,
pole: -pole_friction * theta_dot); Barto's Coulomb cart term sgn(x_dot) is replaced by x_dot, which
keeps the dynamics smooth under a fixed-step integrator. With M = m_c + m_p:

    temp      = (F - cart_friction x_dot + m_p l theta_dot^2 sin theta) / M
    theta_acc = (g sin theta - cos theta temp - pole_friction theta_dot / (m_p l))
                / (l (4/3 - m_p cos^2 theta / M))
    x_acc     = temp - m_p l theta_acc cos theta / M

Integrator: semi-implicit (symplectic) Euler with step dt, as gym's cart-pole option: velocities
first, then positions from the new velocities. Derived quantities (M, m_p l) are computed in the
step, never stored.

Rails: when the cart reaches |x| >= x_limit (2.4) moving outward, x is clipped to the rail and the
cart's velocity is zeroed by an impulse on the cart; the pole's generalised momentum
m_p l cos(theta) x_dot + (4/3) m_p l^2 theta_dot is conserved through the impulse, so theta_dot
gains 3 cos(theta) x_dot / (4 l). Hitting a rail never ends the episode; episodes last
`max_steps_in_episode` (500) steps of dt = 0.02 s.

Start (as dm_control's swingup): x, x_dot, theta_dot ~ 0.01 N(0, 1), theta ~ pi + 0.01 N(0, 1).
Observation: (x, x_dot, cos theta, sin theta, theta_dot).

Reward of step t, on the state after the step and the control u_t (dm_control's timing):
    dense:  upright * centered * small_control * small_velocity, where
            upright = (cos theta + 1) / 2
            centered = (1 + tolerance(x, margin=2)) / 2
            small_control = (4 + tolerance(u, margin=1, value_at_margin=0, 'quadratic')) / 5
            small_velocity = (1 + tolerance(theta_dot, margin=5)) / 2
    sparse: 1[|x| <= 0.25] * 1[cos theta >= 0.995]   (dm_control's swingup_sparse)
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from c3rl_jax.errors import check

REWARD_MODES = ("dense", "sparse")
CART_RANGE = (-0.25, 0.25)  # sparse reward: cart within these bounds (inclusive)
ANGLE_COSINE_RANGE = (0.995, 1.0)  # sparse reward: cos(theta) within these bounds (inclusive)
INIT_NOISE = 0.01  # standard deviation of the initial perturbation of every coordinate


@struct.dataclass
class CartPoleState(environment.EnvState):
    x: jax.Array
    x_dot: jax.Array
    theta: jax.Array  # 0 upright, unwrapped
    theta_dot: jax.Array
    time: jax.Array


@struct.dataclass
class CartPoleParams(environment.EnvParams):
    gravity: float = 9.8  # m/s^2
    masscart: float = 1.0  # kg
    masspole: float = 0.1  # kg
    half_length: float = 0.5  # m, half the pole's length (pivot to centre of mass)
    cart_friction: float = 5e-4  # N s/m, viscous
    pole_friction: float = 2e-6  # N m s/rad, viscous
    force_mag: float = 10.0  # N per unit of action
    x_limit: float = 2.4  # m, rails at +-x_limit
    dt: float = 0.02  # s
    max_steps_in_episode: int = struct.field(pytree_node=False, default=500)


def _sigmoid(d: jax.Array, value_at_1: float, sigmoid: str) -> jax.Array:
    """1 at d = 0, `value_at_1` at d = 1, decaying in between and beyond (dm_control's shapes)."""
    if sigmoid == "gaussian":
        return jnp.exp(-0.5 * d**2 * (-2.0 * math.log(value_at_1)))
    if sigmoid == "long_tail":
        return 1.0 / (1.0 + d**2 * (1.0 / value_at_1 - 1.0))
    if sigmoid == "reciprocal":
        return 1.0 / (1.0 + jnp.abs(d) * (1.0 / value_at_1 - 1.0))
    if sigmoid == "hyperbolic":
        return 1.0 / jnp.cosh(d * math.acosh(1.0 / value_at_1))
    if sigmoid == "tanh_squared":
        return 1.0 - jnp.tanh(d * math.atanh(math.sqrt(1.0 - value_at_1))) ** 2
    # compactly supported shapes: 0 once the scaled distance reaches 1
    if sigmoid == "linear":
        z = d * (1.0 - value_at_1)
        return jnp.where(jnp.abs(z) < 1, 1.0 - z, 0.0)
    if sigmoid == "quadratic":
        z = d * math.sqrt(1.0 - value_at_1)
        return jnp.where(jnp.abs(z) < 1, 1.0 - z**2, 0.0)
    if sigmoid == "cosine":
        z = d * math.acos(2.0 * value_at_1 - 1.0) / math.pi
        return jnp.where(jnp.abs(z) < 1, (1.0 + jnp.cos(math.pi * z)) / 2, 0.0)
    raise ValueError(f"unknown sigmoid {sigmoid!r}")


def tolerance(
    x: jax.Array,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = 0.1,
) -> jax.Array:
    """dm_control's soft indicator: 1 inside the inclusive `bounds`; outside, 0 if `margin` is 0,
    else `sigmoid` of (distance to the nearest bound) / margin, equal to `value_at_margin` at a
    distance of `margin`. `bounds`, `margin`, `sigmoid` and `value_at_margin` are Python values.
    """
    lower, upper = bounds
    compact = sigmoid in ("linear", "quadratic", "cosine")
    if margin > 0 and not (0 <= value_at_margin < 1 if compact else 0 < value_at_margin < 1):
        raise ValueError(f"value_at_margin={value_at_margin} is out of range for {sigmoid!r}")
    inside = (lower <= x) & (x <= upper)
    if margin == 0:
        return inside.astype(jnp.float32)
    distance = jnp.maximum(lower - x, x - upper) / margin
    return jnp.where(inside, 1.0, _sigmoid(distance, value_at_margin, sigmoid))


def swingup_reward(x, cos_theta, theta_dot, u, sparse: bool) -> jax.Array:
    """dm_control's cartpole swingup (dense) or swingup_sparse reward at one state."""
    if sparse:
        return tolerance(x, CART_RANGE) * tolerance(cos_theta, ANGLE_COSINE_RANGE)
    upright = (cos_theta + 1.0) / 2.0
    centered = (1.0 + tolerance(x, margin=2.0)) / 2.0
    small_control = (4.0 + tolerance(u, margin=1.0, value_at_margin=0.0, sigmoid="quadratic")) / 5
    small_velocity = (1.0 + tolerance(theta_dot, margin=5.0)) / 2.0
    return upright * centered * small_control * small_velocity


class CartPoleSwingUp(environment.Environment[CartPoleState, CartPoleParams]):
    """Cart-pole swing-up; `reward` is "dense" (dm_control swingup) or "sparse"."""

    def __init__(self, reward: str = "dense"):
        super().__init__()
        check(reward in REWARD_MODES, "reward", reward, f"one of {REWARD_MODES}")
        self.reward_mode = reward
        self.obs_shape = (5,)

    @property
    def default_params(self) -> CartPoleParams:
        return CartPoleParams()

    def step_env(
        self, key: jax.Array, state: CartPoleState, action: jax.Array, params: CartPoleParams
    ) -> tuple[jax.Array, CartPoleState, jax.Array, jax.Array, dict[str, Any]]:
        """One semi-implicit Euler step; `action` (u) has shape [1] or [], clipped to [-1, 1]."""
        u = jnp.clip(jnp.reshape(action, ()), -1.0, 1.0)
        p = params
        total_mass = p.masscart + p.masspole
        pole_ml = p.masspole * p.half_length
        sin, cos = jnp.sin(state.theta), jnp.cos(state.theta)
        temp = (
            p.force_mag * u - p.cart_friction * state.x_dot + pole_ml * state.theta_dot**2 * sin
        ) / total_mass
        theta_acc = (p.gravity * sin - cos * temp - p.pole_friction * state.theta_dot / pole_ml) / (
            p.half_length * (4.0 / 3.0 - p.masspole * cos**2 / total_mass)
        )
        x_acc = temp - pole_ml * theta_acc * cos / total_mass
        x_dot = state.x_dot + p.dt * x_acc
        theta_dot = state.theta_dot + p.dt * theta_acc
        x = state.x + p.dt * x_dot
        theta = state.theta + p.dt * theta_dot
        cos = jnp.cos(theta)
        # rails: an impulse on the cart stops it; the pole keeps its generalised momentum
        stop = (jnp.abs(x) >= p.x_limit) & (x * x_dot > 0)
        theta_dot = jnp.where(stop, theta_dot + 0.75 * cos * x_dot / p.half_length, theta_dot)
        x_dot = jnp.where(stop, 0.0, x_dot)
        x = jnp.clip(x, -p.x_limit, p.x_limit)
        reward = swingup_reward(x, cos, theta_dot, u, sparse=self.reward_mode == "sparse")
        state = CartPoleState(
            x=x, x_dot=x_dot, theta=theta, theta_dot=theta_dot, time=state.time + 1
        )
        obs = jnp.stack([x, x_dot, cos, jnp.sin(theta), theta_dot])
        terminated = jnp.array(False)
        return obs, state, reward, terminated, {"discount": jnp.array(1.0)}

    def reset_env(self, key: jax.Array, params: CartPoleParams) -> tuple[jax.Array, CartPoleState]:
        """Pole hanging down: every coordinate INIT_NOISE * N(0, 1) away from (0, 0, pi, 0)."""
        x, x_dot, dtheta, theta_dot = INIT_NOISE * jax.random.normal(key, (4,))
        state = CartPoleState(
            x=x, x_dot=x_dot, theta=jnp.pi + dtheta, theta_dot=theta_dot, time=jnp.array(0)
        )
        return self.get_obs(state), state

    def get_obs(self, state: CartPoleState, params=None, key=None) -> jax.Array:
        """[x, x_dot, cos(theta), sin(theta), theta_dot], shape [5]."""
        return jnp.stack(
            [state.x, state.x_dot, jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot]
        )

    def is_terminated(self, state: CartPoleState, params: CartPoleParams) -> jax.Array:
        return jnp.array(False)

    @property
    def name(self) -> str:
        return f"CartPoleSwingUp-{self.reward_mode}"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: CartPoleParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def observation_space(self, params: CartPoleParams) -> spaces.Box:
        high = jnp.array([params.x_limit, jnp.inf, 1.0, 1.0, jnp.inf], dtype=jnp.float32)
        return spaces.Box(-high, high, (5,), jnp.float32)


def validate_cartpole_params(params: CartPoleParams) -> None:
    """Raise `ConfigError` on non-finite or non-physical parameters (any agent axis): masses,
    half-length, gravity, force, rail position and dt positive; frictions non-negative."""
    for name in (
        "gravity",
        "masscart",
        "masspole",
        "half_length",
        "cart_friction",
        "pole_friction",
        "force_mag",
        "x_limit",
        "dt",
    ):
        value = np.asarray(getattr(params, name), dtype=np.float64)
        check(bool(np.all(np.isfinite(value))), f"params.{name}", value, "finite values")
        if name.endswith("friction"):
            check(bool(np.all(value >= 0)), f"params.{name}", value, "non-negative values")
        else:
            check(bool(np.all(value > 0)), f"params.{name}", value, "positive values")
    check(
        params.max_steps_in_episode > 0,
        "params.max_steps_in_episode",
        params.max_steps_in_episode,
        "a positive integer",
    )
