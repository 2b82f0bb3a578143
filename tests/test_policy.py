"""load_policy acts as the training loop did; `c3rl eval` and Policy.evaluate against the
evaluation module's all-pairs returns; their errors."""

import json

import jax
import numpy as np
import pytest
from conftest import TINY

from c3rl_jax import ConfigError, TrainConfig, load_policy, train
from c3rl_jax.analysis.evaluation import greedy_returns
from c3rl_jax.analysis.transfer import new_env_params
from c3rl_jax.cli import main


@pytest.fixture(scope="module")
def frozen_actor_run(tmp_path_factory):
    """TD3 without action noise whose actor moves once (step 0) and never again: every later
    stored action is the saved actor's greedy action. 3 pendulum agents, 1 episode."""
    out = tmp_path_factory.mktemp("frozen")
    config = dict(TINY, episodes=1, warmup_steps=0, learner="td3", policy_delay=10**6)
    train(TrainConfig(**config, exploration="none", out_dir=str(out)))
    return out


def test_policy_actions_equal_the_training_loops_actions(frozen_actor_run):
    policy = load_policy(frozen_actor_run)
    data = policy.run.state.buffer.data  # leaves [N, capacity, ...]; 200 steps written
    obs, stored = np.asarray(data.obs[:, 1:200]), np.asarray(data.action[:, 1:200])
    high = 2.0  # pendulum's torque bound: the buffer keeps actions in [-1, 1]
    for n in range(policy.n_agents):
        np.testing.assert_allclose(policy.act(obs[n], agent=n) / high, stored[n], atol=1e-6)
    batched = policy.act(obs[:, 7])  # row n acted by agent n
    np.testing.assert_allclose(batched / high, stored[:, 7], atol=1e-6)
    assert batched.shape == (3, 1)


def test_policy_refuses_bad_agents_and_shapes(frozen_actor_run):
    policy = load_policy(frozen_actor_run)
    with pytest.raises(
        ConfigError, match=r"agent=3 is invalid: None or an agent index in \[0, 3\)"
    ):
        policy.act(np.zeros(3), agent=3)
    with pytest.raises(ConfigError, match=r"obs shape=\(2, 3\) is invalid"):
        policy.act(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="episodes=0 is invalid"):
        policy.evaluate(episodes=0)


def test_eval_command_equals_the_all_pairs_returns(frozen_actor_run, capsys):
    policy = load_policy(frozen_actor_run)
    actors = policy.run.state.agents.actor
    key = jax.random.PRNGKey(4)
    pairs = np.asarray(
        greedy_returns(policy.env, policy.learner, actors, policy.env_params, key, 2)
    )
    assert main(["eval", str(frozen_actor_run), "--episodes", "2", "--seed", "4"]) == 0
    saved = json.loads((frozen_actor_run / "eval.json").read_text())
    np.testing.assert_allclose(saved["returns"], np.diag(pairs), rtol=1e-5)
    groups = np.asarray(policy.groups)
    for row in saved["groups"]:
        members = np.diag(pairs)[groups == row["group"]]
        assert row["agents"] == members.size
        np.testing.assert_allclose(row["mean"], members.mean(), rtol=1e-5)
    assert "greedy return over 2 episodes, each on its own environment" in capsys.readouterr().out

    new = new_env_params(policy.run, {"w": 0.8})
    column = np.asarray(greedy_returns(policy.env, policy.learner, actors, new, key, 2))[:, 0]
    assert (
        main(["eval", str(frozen_actor_run), "--episodes", "2", "--seed", "4", "--param", "w=0.8"])
        == 0
    )
    windy = json.loads((frozen_actor_run / "eval-w=0.8.json").read_text())
    np.testing.assert_allclose(windy["returns"], column, rtol=1e-5)
    assert windy["params"] == {"w": 0.8}


def test_eval_command_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["eval"])
    assert exit_info.value.code == 2
