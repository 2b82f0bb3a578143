import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax import ConfigError
from c3rl_jax.envs.pendulum import PendulumState, WindyPendulum, angle_normalize

step = jax.jit(WindyPendulum("dense").step_env)


def state_of(th, thdot):
    return PendulumState(
        theta=jnp.float32(th),
        theta_dot=jnp.float32(thdot),
        last_u=jnp.float32(0.0),
        time=jnp.array(0),
    )


def test_matches_gymnasium_pendulum_step_for_step():
    ref = gymnasium.make("Pendulum-v1").unwrapped
    ref.reset(seed=0)
    env = WindyPendulum("dense")
    params = env.default_params
    rng = np.random.default_rng(0)
    obs, state = env.reset_env(jax.random.PRNGKey(0), params)
    ref.state = np.array([float(state.theta), float(state.theta_dot)])
    for t in range(300):
        u = rng.uniform(-2.5, 2.5, size=(1,)).astype(np.float32)  # beyond max_torque: clipped
        ref_obs, ref_reward, *_ = ref.step(u)
        obs, state, reward, terminated, _ = step(jax.random.PRNGKey(t), state, u, params)
        np.testing.assert_allclose(np.asarray(obs), ref_obs, atol=1e-5, err_msg=f"step {t}")
        np.testing.assert_allclose(float(reward), ref_reward, atol=1e-5, err_msg=f"step {t}")
        assert not bool(terminated)
        # continue from gymnasium's float64 state so float32 rounding cannot accumulate
        state = state.replace(theta=jnp.float32(ref.state[0]), theta_dot=jnp.float32(ref.state[1]))


@pytest.mark.parametrize("w", [-1.0, 0.7])
def test_wind_adds_its_torque_as_derived_by_hand(w):
    env = WindyPendulum("dense")
    params = env.default_params.replace(w=w, m=1.3, l=0.8)
    th, thdot, u = 0.4, -0.3, 0.5
    _, new, *_ = step(jax.random.PRNGKey(0), state_of(th, thdot), jnp.array([u]), params)
    # angular acceleration = torque / inertia, inertia of a rod about its end = m l^2 / 3;
    # torques: gravity m g (l/2) sin(th), motor u, wind w (l/2) cos(th)
    inertia = 1.3 * 0.8**2 / 3
    torque = 1.3 * 10.0 * 0.4 * np.sin(th) + u + w * 0.4 * np.cos(th)
    expected_thdot = thdot + torque / inertia * 0.05
    np.testing.assert_allclose(float(new.theta_dot), expected_thdot, rtol=1e-5)
    np.testing.assert_allclose(float(new.theta), th + expected_thdot * 0.05, rtol=1e-5)


def test_sparse_reward_is_one_only_near_upright():
    env = WindyPendulum("sparse")
    sparse_step = jax.jit(env.step_env)
    rewards = {
        th: float(
            sparse_step(jax.random.PRNGKey(0), state_of(th, 0.0), jnp.zeros(1), env.default_params)[
                2
            ]
        )
        for th in (0.0, 0.19, -0.19, 0.21, 2 * np.pi + 0.1, np.pi)
    }
    assert rewards == {0.0: 1.0, 0.19: 1.0, -0.19: 1.0, 0.21: 0.0, 2 * np.pi + 0.1: 1.0, np.pi: 0.0}


def test_angle_normalize_wraps_into_minus_pi_pi():
    x = jnp.array([0.0, np.pi / 2, 3 * np.pi / 2, -3 * np.pi / 2, 7.0])
    np.testing.assert_allclose(
        angle_normalize(x), [0, np.pi / 2, -np.pi / 2, np.pi / 2, 7.0 - 2 * np.pi], atol=1e-6
    )


def test_unknown_reward_mode_is_a_clear_error():
    with pytest.raises(ConfigError, match="reward='shaped'.*dense"):
        WindyPendulum("shaped")
