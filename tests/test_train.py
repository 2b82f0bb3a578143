import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax import ConfigError, Results, custom_population, get_task, replay, train
from c3rl_jax.cli import main, print_summary
from c3rl_jax.config import SHARING_MODES
from c3rl_jax.learners.ddpg import DDPG
from c3rl_jax.rollout import ChunkInputs, RunState, make_chunk


def test_tiny_run_shapes_saves_and_loads(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, out_dir=str(tmp_path), sharing="oracle")
    results = train(config)
    assert results.returns.shape == (3, 2)
    assert np.all(np.isfinite(results.returns))
    assert results.sharing.shape == (2, 3, 3)
    np.testing.assert_allclose(results.sharing.sum(axis=2), 1.0, rtol=1e-6)
    assert results.compile_time > 0 and results.agent_steps_per_s > 0
    for name in ("results.json", "arrays.npz", "returns.csv"):
        assert (tmp_path / name).is_file()
    loaded = Results.load(tmp_path)
    np.testing.assert_array_equal(loaded.returns, results.returns)
    np.testing.assert_array_equal(loaded.groups, results.groups)
    assert loaded.config["sharing"] == "oracle" and loaded.config["hidden"] == [16]
    csv = (tmp_path / "returns.csv").read_text().splitlines()
    assert csv[0] == "agent,group,ep0,ep1" and len(csv) == 4


def test_same_seed_same_result_other_seed_other_result(tiny_config):
    a, b = train(tiny_config), train(tiny_config)
    np.testing.assert_array_equal(a.returns, b.returns)
    c = train(dataclasses.replace(tiny_config, seed=1))
    assert not np.array_equal(a.returns, c.returns)


def test_a_custom_sharing_matrix_changes_what_agents_learn_from(tiny_config):
    """Same population and seed: P only matters once updates start (after episode 0)."""
    env = get_task("pendulum").make_env("dense")
    pop = custom_population(env.default_params, {"w": np.zeros(3)})
    copy_first = np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]])
    base = dataclasses.replace(tiny_config, episodes=3, warmup_steps=200)
    own = train(base, population=pop)
    shared = train(
        dataclasses.replace(base, sharing="custom"), population=pop, sharing_matrix=copy_first
    )
    np.testing.assert_array_equal(own.returns[:, :1], shared.returns[:, :1])  # warm-up: same
    assert not np.array_equal(own.returns[:, 2:], shared.returns[:, 2:])


def test_changing_p_does_not_recompile(tiny_config):
    config = tiny_config.resolved()
    env = get_task("pendulum").make_env("dense")
    ddpg = DDPG(config.learner_config, 3, 1)
    pop = get_task("pendulum").make_population(jax.random.PRNGKey(0), 3)
    chunk = jax.jit(make_chunk(env, ddpg, config.explore, 0, 1))
    state = RunState(
        ddpg.init(jax.random.PRNGKey(1), 3),
        replay.init_buffer(3, 256, 3, 1),
        jax.random.PRNGKey(2),
        jnp.array(0, jnp.int32),
    )
    for sharing in (jnp.eye(3), jnp.full((3, 3), 1 / 3, jnp.float32)):
        state, *_ = chunk(state, ChunkInputs(pop.params, sharing, jnp.zeros(3, jnp.int32)))
    assert chunk._cache_size() == 1


def test_population_and_sharing_inputs_are_validated(tiny_config):
    pop = get_task("pendulum").make_population(jax.random.PRNGKey(0), 4)
    with pytest.raises(ConfigError, match="population size=4 is invalid: equal to n_agents=3"):
        train(tiny_config, population=pop)
    with pytest.raises(ConfigError, match="sharing_matrix=None"):
        train(dataclasses.replace(tiny_config, sharing="custom"))
    with pytest.raises(ConfigError, match="sharing_matrix='an array'"):
        train(tiny_config, sharing_matrix=np.eye(3))
    with pytest.raises(ConfigError, match="params.l"):
        env = get_task("pendulum").make_env("dense")
        train(tiny_config, population=custom_population(env.default_params, {"l": [1.0, 0.0, 1.0]}))


def test_cli_reports_bad_input_in_one_line_and_exits_2(capsys):
    assert main(["train", "--agents", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "c3rl: error: n_agents=0 is invalid: a positive integer"
    assert main(["train", "--sharing", "custom", "--sharing-matrix", "missing.npy"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_trains_and_prints_a_group_summary(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.full((3, 3), 1 / 3))
    code = main(
        [
            "train",
            "--agents",
            "3",
            "--episodes",
            "1",
            "--hidden",
            "8",
            "--batch-size",
            "8",
            "--warmup-steps",
            "50",
            "--buffer-size",
            "256",
            "--sharing",
            "custom",
            "--sharing-matrix",
            str(tmp_path / "p.npy"),
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "group" in out and "agent-steps/s" in out
    assert (
        len([line for line in out.splitlines() if line.strip().startswith(("0 ", "1 ", "2 "))]) == 3
    )
    assert Results.load(tmp_path / "run").returns.shape == (3, 1)


def test_profile_dir_gets_a_trace_for_tensorboard_and_perfetto(tiny_config, tmp_path):
    train(dataclasses.replace(tiny_config, profile_dir=str(tmp_path)))
    names = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert any(n.endswith(".xplane.pb") for n in names), names
    assert "perfetto_trace.json.gz" in names, names


@pytest.mark.parametrize("learner", ["ddpg", "td3"])
@pytest.mark.parametrize("sharing", SHARING_MODES)
def test_every_sharing_mode_trains_with_every_learner(tiny_config, sharing, learner):
    config = dataclasses.replace(
        tiny_config, sharing=sharing, learner=learner, episodes=3, rebuild_every=2,
        rebuild_samples=8, rebuild_fit_steps=5, episodes_per_chunk=3,
    )  # fmt: skip
    matrix = np.full((3, 3), 1 / 3) if sharing == "custom" else None
    results = train(config, sharing_matrix=matrix)
    assert results.returns.shape == (3, 3) and np.all(np.isfinite(results.returns))
    assert results.config["learner"] == learner


def test_an_output_folder_holding_another_run_is_refused_unless_overwrite(tiny_config, tmp_path):
    out = str(tmp_path / "run")
    first = dataclasses.replace(tiny_config, out_dir=out, checkpoint_every=1)
    train(first)
    with pytest.raises(ConfigError) as err:
        train(dataclasses.replace(first, seed=1))
    message = str(err.value)
    assert message.startswith(f"out_dir={out!r} is invalid: it holds another run (")
    assert "--resume" in message and "--overwrite" in message and "\n" not in message
    second = train(dataclasses.replace(first, seed=1, episodes=1, overwrite=True))
    assert Results.load(out).config["seed"] == 1 and second.returns.shape == (3, 1)
    # nothing of the first run is left: only the second run's checkpoint
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["1"]


def test_a_run_shorter_than_its_warm_up_warns_and_the_summary_counts_its_episodes(
    tiny_config, capsys
):
    with pytest.warns(UserWarning, match=r"200 <= warmup_steps=1000: every action is random"):
        results = train(dataclasses.replace(tiny_config, episodes=1, warmup_steps=1000))
    print_summary(results, "nowhere")
    assert "1 episodes: mean return over the last 1 episodes" in capsys.readouterr().out
