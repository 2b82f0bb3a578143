"""Autoregressive control: steer a noisy AR(2) process to a target, dense or sparse reward.

    s_{t+1} = clip(phi1 * s_t + phi2 * s_{t-1} + beta * a_t + sigma * eps_t, -s_max, s_max)

with a_t in [-1, 1] (clipped), eps_t ~ N(0, 1), and `s_max = params.state_bound` (default 5).
The observation is (s_t, s_{t-1}); each episode starts from s_0 and s_{-1} drawn independently
and uniformly from [-INIT_RANGE, INIT_RANGE] and lasts `max_steps_in_episode` (100) steps.

The reward of step t scores the state the action led to:
    dense:  r_t = -(s_{t+1} - omega)^2 - 0.01 * a_t^2
    sparse: r_t = 1[|s_{t+1} - omega| < SPARSE_BAND]
The transition parameters xi = (phi1, phi2, beta) and the target omega are hidden from the agent;
every parameter but the episode length may carry a leading agent axis.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from c3rl_jax.errors import check

REWARD_MODES = ("dense", "sparse")
SPARSE_BAND = 0.1  # sparse reward: 1[|s_{t+1} - omega| < SPARSE_BAND]
ACTION_COST = 0.01  # dense reward: -(s_{t+1} - omega)^2 - ACTION_COST * a_t^2
INIT_RANGE = 1.0  # s_0, s_{-1} ~ U[-INIT_RANGE, INIT_RANGE]


@struct.dataclass
class ARState(environment.EnvState):
    s: jax.Array  # s_t
    s_prev: jax.Array  # s_{t-1}
    time: jax.Array


@struct.dataclass
class ARParams(environment.EnvParams):
    phi1: float = 0.5
    phi2: float = 0.2
    beta: float = 0.5
    sigma: float = 0.05  # standard deviation of the transition noise
    omega: float = 0.0  # target state
    state_bound: float = 5.0  # states are clipped to [-state_bound, state_bound]
    max_steps_in_episode: int = struct.field(pytree_node=False, default=100)


class AutoregressiveControl(environment.Environment[ARState, ARParams]):
    """AR(2) control; `reward` is "dense" (negative squared error) or "sparse" (in band)."""

    def __init__(self, reward: str = "dense"):
        super().__init__()
        check(reward in REWARD_MODES, "reward", reward, f"one of {REWARD_MODES}")
        self.reward_mode = reward
        self.obs_shape = (2,)

    @property
    def default_params(self) -> ARParams:
        return ARParams()

    def step_env(
        self, key: jax.Array, state: ARState, action: jax.Array, params: ARParams
    ) -> tuple[jax.Array, ARState, jax.Array, jax.Array, dict[str, Any]]:
        """One AR step; `action` has shape [1] or [] and is clipped to [-1, 1]."""
        a = jnp.clip(jnp.reshape(action, ()), -1.0, 1.0)
        eps = jax.random.normal(key, ())
        s_next = params.phi1 * state.s + params.phi2 * state.s_prev + params.beta * a
        s_next = jnp.clip(s_next + params.sigma * eps, -params.state_bound, params.state_bound)
        error = s_next - params.omega
        if self.reward_mode == "dense":
            reward = -(error**2) - ACTION_COST * a**2
        else:
            reward = (jnp.abs(error) < SPARSE_BAND).astype(jnp.float32)
        state = ARState(s=s_next, s_prev=state.s, time=state.time + 1)
        terminated = jnp.array(False)
        return self.get_obs(state), state, reward, terminated, {"discount": jnp.array(1.0)}

    def reset_env(self, key: jax.Array, params: ARParams) -> tuple[jax.Array, ARState]:
        """s_0 and s_{-1} independently uniform in [-INIT_RANGE, INIT_RANGE]."""
        s, s_prev = jax.random.uniform(key, (2,), minval=-INIT_RANGE, maxval=INIT_RANGE)
        state = ARState(s=s, s_prev=s_prev, time=jnp.array(0))
        return self.get_obs(state), state

    def get_obs(self, state: ARState, params=None, key=None) -> jax.Array:
        """[s_t, s_{t-1}], shape [2]."""
        return jnp.stack([state.s, state.s_prev])

    def is_terminated(self, state: ARState, params: ARParams) -> jax.Array:
        return jnp.array(False)

    @property
    def name(self) -> str:
        return f"AutoregressiveControl-{self.reward_mode}"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: ARParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def observation_space(self, params: ARParams) -> spaces.Box:
        high = jnp.full((2,), params.state_bound, dtype=jnp.float32)
        return spaces.Box(-high, high, (2,), jnp.float32)


def validate_ar_params(params: ARParams) -> None:
    """Raise `ConfigError` on non-finite or meaningless parameters (any agent axis).

    All finite; beta non-zero (else the action cannot move the state); sigma >= 0;
    state_bound > 0; |omega| < state_bound (else the target cannot be reached).
    """
    values = {}
    for name in ("phi1", "phi2", "beta", "sigma", "omega", "state_bound"):
        value = np.asarray(getattr(params, name), dtype=np.float64)
        check(bool(np.all(np.isfinite(value))), f"params.{name}", value, "finite values")
        values[name] = value
    check(bool(np.all(values["beta"] != 0)), "params.beta", values["beta"], "non-zero values")
    check(
        bool(np.all(values["sigma"] >= 0)), "params.sigma", values["sigma"], "non-negative values"
    )
    check(
        bool(np.all(values["state_bound"] > 0)),
        "params.state_bound",
        values["state_bound"],
        "positive values",
    )
    check(
        bool(np.all(np.abs(values["omega"]) < values["state_bound"])),
        "params.omega",
        values["omega"],
        "targets strictly inside [-state_bound, state_bound]",
    )
    check(
        params.max_steps_in_episode > 0,
        "params.max_steps_in_episode",
        params.max_steps_in_episode,
        "a positive integer",
    )
