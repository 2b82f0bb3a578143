"""Seeds in one program (`TrainConfig.seeds`): each replica is the single run with its seed,
no data crosses replicas, and a multi-seed run saves, loads and resumes replica by replica."""

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax import TrainConfig, load_policy, train
from c3rl_jax.causal import methods
from c3rl_jax.cli import main
from c3rl_jax.config import SHARING_MODES
from c3rl_jax.errors import ConfigError
from c3rl_jax.runtime import replicas
from c3rl_jax.runtime.results import Results
from c3rl_jax.training import _build, _Chunks, load_run

# Replicas run the single run's chunk under one more vmap: XLA may order a batched matmul's
# or a reduction's float sums differently, and learning carries the last bits on. Measured
# on this config (every sharing mode, 2 replicas): the warm-up episode bitwise equal, then
# relative differences of the returns up to 1.7e-7 after 2 episodes, 2.1e-6 after 3.
RETURNS_RTOL = 1e-5


def _config(tiny_config, sharing: str, **changes) -> TrainConfig:
    adaptive = dict(rebuild_every=1, rebuild_samples=8, rebuild_fit_steps=5)
    extra = adaptive if sharing in ("c3rl", "sysid") else {}
    fields = {"sharing": sharing, "episodes": 2, "devices": 1, **extra, **changes}
    return dataclasses.replace(tiny_config, **fields)


@pytest.mark.parametrize("sharing", SHARING_MODES)
def test_a_replica_equals_the_single_run_with_its_seed(tiny_config, sharing):
    config = _config(tiny_config, sharing, seed=5)
    matrix = np.array([[0.5, 0.5, 0], [0.2, 0.6, 0.2], [0, 0, 1]]) if sharing == "custom" else None
    multi = train(dataclasses.replace(config, seeds=2), sharing_matrix=matrix)
    assert len(multi) == 2
    for r, replica in enumerate(multi):
        single = train(dataclasses.replace(config, seed=5 + r), sharing_matrix=matrix)
        assert replica.config == {**single.config, "devices": None}
        warm_up = 1  # episode 0 is all random actions (warmup_steps=100 < 200)
        np.testing.assert_array_equal(replica.returns[:, :warm_up], single.returns[:, :warm_up])
        np.testing.assert_allclose(replica.returns, single.returns, rtol=RETURNS_RTOL)
        np.testing.assert_allclose(replica.sharing_matrices, single.sharing_matrices, atol=1e-6)
        np.testing.assert_array_equal(replica.sharing_index, single.sharing_index)
        got, want = replica.extra["rebuilds"], single.extra["rebuilds"]
        assert [r.get("labels") for r in got] == [r.get("labels") for r in want]
        assert [r.get("n_clusters") for r in got] == [r.get("n_clusters") for r in want]
    assert not np.array_equal(multi[0].returns, multi[1].returns)  # the seeds differ


def test_no_replay_data_crosses_replicas(tiny_config):
    """A marker planted in replica 0's buffer (huge rewards) changes replica 0's learning and
    leaves replica 1's bit for bit as it was, under global sharing."""
    config = _config(tiny_config, "global", seeds=2).resolved()

    def second_chunk(plant: bool):
        runs, program, env, learner = _build(config, None, None)
        chunks = _Chunks(config, env, learner)
        chunks.run(program, runs, 1)  # the warm-up and the first updates
        if plant:
            reward = program.state.buffer.data.reward.at[0].set(1e6)
            data = program.state.buffer.data._replace(reward=reward)
            program.state = program.state._replace(buffer=program.state.buffer._replace(data=data))
        stats, _ = chunks.run(program, runs, 1)
        return stats, jax.device_get(program.state.agents.critic)

    (clean, clean_critic), (marked, marked_critic) = second_chunk(False), second_chunk(True)
    assert marked[0].critic_loss.min() > 100 * clean[0].critic_loss.max()
    np.testing.assert_array_equal(marked[1].critic_loss, clean[1].critic_loss)
    np.testing.assert_array_equal(marked[1].returns, clean[1].returns)
    for a, b in zip(jax.tree.leaves(clean_critic), jax.tree.leaves(marked_critic), strict=True):
        np.testing.assert_array_equal(a[1], b[1])
        assert not np.array_equal(a[0], b[0])


def test_a_rebuild_fits_every_replica_in_one_batch_or_else_one_by_one(tiny_config, monkeypatch):
    """agent_gp's fit_many gets the replicas' data stacked, once per rebuild; if the batch
    is refused, each replica is fitted alone and gets the same labels."""
    agent_gp = methods.get_mechanism("agent_gp")
    shapes = []

    def counted(xs, *args):
        shapes.append(xs.shape)
        return agent_gp.fit_many(xs, *args)

    def refused(xs, *args):
        raise ValueError("no batch")

    config = _config(tiny_config, "c3rl", seeds=2)  # 2 rebuilds, 8 samples of 3 agents each
    runs = {}
    for name, fit_many in (("batched", counted), ("alone", refused)):
        method = dataclasses.replace(agent_gp, fit_many=fit_many)
        monkeypatch.setitem(methods._MECHANISMS._entries, "agent_gp", method)
        runs[name] = train(config)
    assert [s[:2] for s in shapes] == [(2, 3 * 8)] * 2
    for batched, alone in zip(runs["batched"], runs["alone"], strict=True):
        labels = [[r["labels"] for r in run.extra["rebuilds"]] for run in (batched, alone)]
        assert labels[0] == labels[1] and len(labels[0]) == 2


def test_stacking_keeps_shared_scalars_once_and_gives_each_replica_back():
    trees = [{"w": jnp.full((3, 2), float(r)), "ptr": jnp.array(7)} for r in range(4)]
    stacked = replicas.stack(trees)
    assert stacked["w"].shape == (4, 3, 2) and stacked["ptr"].shape == ()
    for r in range(4):
        back = replicas.replica(stacked, r)
        np.testing.assert_array_equal(back["w"], trees[r]["w"])
        assert int(back["ptr"]) == 7
    assert replicas.axes(trees[0]) == {"w": 0, "ptr": None}
    with pytest.raises(AssertionError, match="a scalar leaf differs between replicas"):
        replicas.stack([{"ptr": jnp.array(1)}, {"ptr": jnp.array(2)}])


def test_a_multi_seed_run_saves_each_replica_as_its_single_run(tiny_config, tmp_path):
    out = tmp_path / "multi"
    config = _config(tiny_config, "c3rl", seeds=2, seed=3, out_dir=str(out), checkpoint_every=1)
    multi = train(config)
    record = json.loads((out / "replicas.json").read_text())
    assert record["replicas"] == ["s3", "s4"] and record["config"]["seeds"] == 2
    for replica, folder in zip(multi, ("s3", "s4"), strict=True):
        saved = Results.load(out / folder)
        np.testing.assert_array_equal(saved.returns, replica.returns)
        assert saved.config["seed"] == replica.config["seed"] and saved.config["seeds"] == 1
        assert (out / folder / "metrics.csv").is_file()
        assert (out / folder / "mechanisms.npz").is_file()
        assert load_policy(str(out / folder)).act(np.zeros((3, 3))).shape == (3, 1)
    with pytest.raises(ConfigError, match=r"holds the replicas of a multi-seed run; load one"):
        load_run(str(out))
    with pytest.raises(ConfigError, match=r"it holds another run \(.*replicas\.json"):
        train(config)
    again = train(dataclasses.replace(config, episodes=1, overwrite=True))
    assert again[0].returns.shape == (3, 1)


def test_a_resumed_multi_seed_run_equals_the_uninterrupted_one(tiny_config, tmp_path):
    """Also when a kill came between two replicas' checkpoints: all continue from the last
    checkpoint they share."""
    config = _config(tiny_config, "c3rl", seeds=2, episodes=4, checkpoint_every=2)
    whole = train(config)
    out = tmp_path / "run"
    train(dataclasses.replace(config, out_dir=str(out)))
    shutil.rmtree(out / "s1" / "checkpoints" / "4")  # s1 saved only up to episode 2
    resumed = train(dataclasses.replace(config, episodes=4), resume=str(out))
    for a, b in zip(whole, resumed, strict=True):
        np.testing.assert_array_equal(a.returns, b.returns)
        np.testing.assert_array_equal(a.sharing_matrices, b.sharing_matrices)


def test_multi_seed_inputs_are_checked(tiny_config):
    with pytest.raises(ConfigError, match=r"^seeds=0 is invalid: .*a positive integer"):
        train(dataclasses.replace(tiny_config, seeds=0))
    with pytest.raises(ConfigError, match=r"^track=True is invalid: .*False when seeds > 1"):
        train(dataclasses.replace(tiny_config, seeds=2, track=True))
    with pytest.raises(ConfigError, match=r"^initial_agents/initial_buffer=.*None when seeds"):
        train(dataclasses.replace(tiny_config, seeds=2), initial_buffer=object())


def test_the_command_line_trains_resumes_and_plots_a_multi_seed_run(tmp_path, capsys):
    out = tmp_path / "cli"
    common = ["--agents", "3", "--hidden", "16", "--batch-size", "8", "--buffer-size", "512"]
    common += ["--warmup-steps", "100", "--no-progress", "--devices", "1"]
    assert main(["train", "--seeds", "3", "--episodes", "1", "--out", str(out), *common]) == 0
    printed = capsys.readouterr().out
    assert "3 replicas of 3 agents, 1 episodes" in printed
    for seed in range(3):
        assert f"{out / f's{seed}'}" in printed
    assert main(["train", "--resume", str(out), "--episodes", "2"]) == 0
    assert [Results.load(out / f"s{s}").returns.shape for s in range(3)] == [(3, 2)] * 3
    assert main(["plot", str(out)]) == 0
    assert (out / "curves.png").is_file()
    assert main(["eval", str(out)]) == 2
    assert "load one of them" in capsys.readouterr().err


@pytest.mark.parametrize(
    "seeds, devices, available, want",
    [(5, None, 2, (2, 6)), (6, None, 4, (3, 6)), (3, None, 16, (3, 3)), (5, 1, 2, (1, 5)),
     (5, 3, 8, (3, 6)), (2, None, 1, (1, 2))],
)  # fmt: skip
def test_the_replica_layout_runs_ceil_s_over_d_replicas_per_device(seeds, devices, available, want):
    assert replicas.layout(seeds, devices, available) == want


def test_repeats_that_fill_the_devices_change_no_replica(tiny_config, monkeypatch):
    config = _config(tiny_config, "c3rl", seeds=2)
    plain = train(config)
    monkeypatch.setattr(replicas, "layout", lambda n, devices, available: (1, n + 1))
    padded = train(config)
    assert len(padded) == 2
    for a, b in zip(plain, padded, strict=True):
        np.testing.assert_allclose(a.returns, b.returns, rtol=RETURNS_RTOL)
        np.testing.assert_allclose(a.sharing_matrices, b.sharing_matrices, atol=1e-6)


def test_each_replica_may_have_its_own_population(tiny_config):
    from c3rl_jax import custom_population, get_task

    base = get_task("pendulum").make_env("dense").default_params
    pops = [custom_population(base, {"w": np.array([w, 0.0, -w])}) for w in (1.0, 2.0)]
    config = _config(tiny_config, "individual", seeds=2, episodes=1)
    multi = train(config, population=pops)
    for replica, pop in zip(multi, pops, strict=True):
        single = train(
            dataclasses.replace(config, seed=replica.config["seed"], seeds=1), population=pop
        )
        np.testing.assert_array_equal(replica.returns, single.returns)  # all warm-up
    with pytest.raises(ConfigError, match=r"^population='a list of 1' is invalid: .*seeds=2"):
        train(config, population=pops[:1])
