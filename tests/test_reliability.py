"""Checkpoint and resume, interruption, divergence guards, corrupt and mismatched checkpoints."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY

from c3rl_jax import ConfigError, Results, Task, custom_population, get_task, register_task, train
from c3rl_jax.envs.pendulum import WindyPendulum
from c3rl_jax.errors import DivergenceError
from c3rl_jax.runtime.checkpoint import Checkpointer, CheckpointError


@pytest.mark.parametrize(
    ("sharing", "learner"), [("individual", "ddpg"), ("c3rl", "ddpg"), ("individual", "td3")]
)
def test_resumed_run_equals_uninterrupted_run(tiny_config, tmp_path, sharing, learner):
    """c3rl: the rebuild at episode 4 continues from the one at 2 (its carry is checkpointed);
    td3: its step counter (the delay's phase) and noise keys are checkpointed."""
    base = dataclasses.replace(
        tiny_config, episodes=4, checkpoint_every=2, sharing=sharing, rebuild_every=2,
        learner=learner,
    )  # fmt: skip
    full = train(dataclasses.replace(base, out_dir=str(tmp_path / "full")))
    train(dataclasses.replace(base, episodes=2, out_dir=str(tmp_path / "half")))
    resumed = train(dataclasses.replace(base, checkpoint_every=1), resume=str(tmp_path / "half"))
    np.testing.assert_array_equal(resumed.returns, full.returns)
    np.testing.assert_array_equal(resumed.sharing_matrices, full.sharing_matrices)
    assert resumed.config["checkpoint_every"] == 1  # a resumable change is kept, not dropped
    assert sorted(p.name for p in (tmp_path / "half" / "checkpoints").iterdir()) == ["3", "4"]
    np.testing.assert_array_equal(Results.load(tmp_path / "half").returns, full.returns)


def test_resume_refuses_a_mismatched_config(tiny_config, tmp_path):
    train(dataclasses.replace(tiny_config, episodes=1, out_dir=str(tmp_path)))
    with pytest.raises(
        CheckpointError, match="n_agents=4 is invalid: the checkpoint was made with n_agents=3"
    ):
        train(dataclasses.replace(tiny_config, n_agents=4), resume=str(tmp_path))
    with pytest.raises(ConfigError, match="None when resuming"):
        train(tiny_config, resume=str(tmp_path), sharing_matrix=np.eye(3))
    with pytest.raises(CheckpointError, match="no checkpoints directory"):
        train(tiny_config, resume=str(tmp_path / "elsewhere"))


def test_a_truncated_checkpoint_is_refused_not_half_loaded(tiny_config, tmp_path):
    train(dataclasses.replace(tiny_config, episodes=1, out_dir=str(tmp_path)))
    data_files = [
        p
        for p in (tmp_path / "checkpoints").rglob("*")
        if p.is_file() and p.stat().st_size > 1000 and "state" in p.parts
    ]
    assert data_files
    for path in data_files:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(CheckpointError, match="could not be read"):
        train(resume=str(tmp_path))


class PoisonedPendulum(WindyPendulum):
    """Reward NaN for agents whose wind is exactly 99 (a test marker)."""

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = super().step_env(key, state, action, params)
        return obs, state, jnp.where(params.w == 99.0, jnp.nan, reward), terminated, info


def test_a_nan_reward_names_the_agent_and_episode(tiny_config):
    pendulum = get_task("pendulum")
    register_task(
        Task(
            "poisoned",
            lambda reward: PoisonedPendulum(reward),
            pendulum.make_population,
            validate_params=lambda params: None,
        )
    )
    pop = custom_population(WindyPendulum().default_params, {"w": [0.0, 0.0, 99.0]})
    with pytest.raises(
        DivergenceError,
        match=r"agent\(s\) \[2\] diverged: non-finite return "
        r"in episode 0",
    ):
        train(dataclasses.replace(tiny_config, task="poisoned"), population=pop)


def cli_args(out: Path, episodes: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "c3rl_jax",
        "train",
        "--out",
        str(out),
        "--no-progress",
        "--episodes",
        str(episodes),
        "--episodes-per-chunk",
        "1",
        "--checkpoint-every",
        "1",
        "--agents",
        str(TINY["n_agents"]),
        "--hidden",
        "16",
        "--batch-size",
        "8",
        "--warmup-steps",
        "100",
        "--buffer-size",
        "512",
    ]


def test_sigint_mid_run_leaves_a_resumable_checkpoint_and_complete_results(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        cli_args(out, 400),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    deadline = time.time() + 180
    while not (out / "results.json").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert f"resume with: c3rl train --resume {out}" in err
    saved = Results.load(out)
    done = saved.returns.shape[1]
    assert 1 <= done < 400 and np.all(np.isfinite(saved.returns))
    assert saved.sharing.shape == (done, 3, 3)

    finish = done + 1
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "c3rl_jax",
            "train",
            "--resume",
            str(out),
            "--episodes",
            str(finish),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run(
        cli_args(tmp_path / "straight", finish), capture_output=True, text=True, timeout=300
    )
    assert straight.returncode == 0, straight.stderr
    np.testing.assert_array_equal(
        Results.load(out).returns, Results.load(tmp_path / "straight").returns
    )


def test_a_checkpoint_of_another_state_layout_is_named_as_such(tmp_path):
    """A learner state with other fields (as an older version saved) is refused in one line."""
    checkpointer = Checkpointer(tmp_path)
    saved = {"agents": {"actor": np.zeros(3), "prior": np.ones(3)}}
    checkpointer.save(1, saved, {"config": {}})
    with pytest.raises(CheckpointError, match="laid out as by another version of c3rl-jax"):
        checkpointer.restore(1, {"agents": {"actor": np.zeros(3)}})
