import math
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY
from matplotlib import animation
from matplotlib.image import imread
from PIL import Image

from c3rl_jax import ConfigError, TrainConfig, train
from c3rl_jax.analysis.policy import load_policy
from c3rl_jax.analysis.render import (
    CARTPOLE_SIZE,
    DPI,
    PENDULUM_SIZE,
    cartpole_positions,
    frame_steps,
    pendulum_tip,
    render,
)
from c3rl_jax.envs.cartpole_swingup import CartPoleState, CartPoleSwingUp
from c3rl_jax.envs.pendulum import PendulumState, WindyPendulum

# one episode per run; warm-up under the 100 steps of an ar episode
TINY_RUN = dict(TINY, episodes=1, warmup_steps=50)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Task -> (policy, run dir) of one tiny saved run, trained on first use."""
    runs = {}

    def get(task):
        if task not in runs:
            out = tmp_path_factory.mktemp(task)
            train(TrainConfig(task=task, out_dir=str(out), **TINY_RUN))
            runs[task] = (load_policy(out), out)
        return runs[task]

    return get


def test_frame_steps_every_kth_step():
    assert frame_steps(200).tolist() == list(range(0, 200, 2))  # k = 2
    assert len(frame_steps(500)) == 100  # k = 5
    assert len(frame_steps(250)) == 84  # k = 3: 0, 3, ..., 249
    assert frame_steps(30).tolist() == list(range(30))  # k = 1


def pendulum_obs(theta, theta_dot=0.0):
    state = PendulumState(
        theta=jnp.asarray(theta), theta_dot=jnp.asarray(theta_dot), last_u=0.0, time=0
    )
    return WindyPendulum().get_obs(state)


def test_pendulum_tip_by_hand():
    for theta, expected in [(0.0, (0, 2)), (math.pi, (0, -2)), (math.pi / 2, (2, 0))]:
        np.testing.assert_allclose(pendulum_tip(pendulum_obs(theta), 2.0), expected, atol=1e-6)


def test_positive_wind_pushes_the_tip_toward_plus_x():
    # the arrow of w > 0 points along +x: the drawn tip must move that way, upright or hanging
    env = WindyPendulum()
    params = env.default_params.replace(w=1.0)
    for theta in (0.0, math.pi):
        state = PendulumState(theta=jnp.asarray(theta), theta_dot=0.0, last_u=0.0, time=0)
        obs, *_ = env.step_env(None, state, jnp.zeros(1), params)
        assert pendulum_tip(obs)[0] > pendulum_tip(pendulum_obs(theta))[0]


def test_cartpole_positions_by_hand():
    env = CartPoleSwingUp()
    for theta, expected in [(0.0, (1, 1, 1)), (math.pi, (1, 1, -1)), (math.pi / 2, (1, 2, 0))]:
        state = CartPoleState(x=1.0, x_dot=0.0, theta=jnp.asarray(theta), theta_dot=0.0, time=0)
        got = cartpole_positions(env.get_obs(state), half_length=0.5)
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize(
    "task, size", [("pendulum", PENDULUM_SIZE), ("cartpole_swingup", CARTPOLE_SIZE)]
)
def test_animation_has_the_documented_frames(saved, task, size):
    policy, out = saved(task)
    path = render(policy, 1, run_dir=out)
    assert path == out / "render-agent1.gif"
    with Image.open(path) as image:
        n_steps = policy.env.default_params.max_steps_in_episode
        assert image.n_frames == len(frame_steps(n_steps)) == 100
        assert image.size == (round(size[0] * DPI), round(size[1] * DPI))


def test_ar_plot_is_a_png(saved, tmp_path):
    policy, out = saved("ar")
    assert render(policy, 0, run_dir=out) == out / "render-agent0.png"
    path = render(policy, 1, tmp_path / "sub" / "ar.png", seed=3)
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100


@pytest.mark.parametrize("agent", [3, -1, True, 1.0])
def test_bad_agent(saved, agent):
    policy, out = saved("pendulum")
    with pytest.raises(ConfigError, match=r"agent=.*\[0, 3\)"):
        render(policy, agent, run_dir=out)


def test_bad_paths(saved, tmp_path):
    policy, _ = saved("pendulum")
    with pytest.raises(ConfigError, match="path=None.*run_dir"):
        render(policy, 0)
    with pytest.raises(ConfigError, match=r"path=.*\.gif or \.mp4"):
        render(policy, 0, tmp_path / "x.png")


@pytest.mark.skipif(animation.writers.is_available("ffmpeg"), reason="ffmpeg is installed")
def test_mp4_without_ffmpeg(saved, tmp_path):
    policy, _ = saved("pendulum")
    with pytest.raises(ConfigError, match="ffmpeg"):
        render(policy, 0, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_unknown_task():
    policy = SimpleNamespace(config=SimpleNamespace(task="mine"), n_agents=2)
    with pytest.raises(ConfigError, match="task='mine'.*pendulum, cartpole_swingup and ar"):
        render(policy, 0, "x.gif")
