"""metrics.csv (columns, one row per episode, values against the run's own records and closed
forms), its continuation on resume, TensorBoard scalars read back, the W&B extra's error."""

import csv
import dataclasses
import importlib.util
import struct

import numpy as np
import pytest
from conftest import TINY

from c3rl_jax import ConfigError, TrainConfig, train
from c3rl_jax.runtime.metrics import MetricsLog, columns, effective_sources

tensorboardX = pytest.importorskip("tensorboardX")


def read_rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def c3rl_run(tmp_path_factory):
    """4 episodes of 4 pendulum agents, P rebuilt every 2, TensorBoard on."""
    out = tmp_path_factory.mktemp("metrics")
    config = dict(TINY, n_agents=4, episodes=4, episodes_per_chunk=2, rebuild_every=2)
    results = train(TrainConfig(**config, sharing="c3rl", tensorboard=True, out_dir=str(out)))
    return out, results


def test_metrics_csv_has_one_row_per_episode_matching_the_run(c3rl_run):
    out, results = c3rl_run
    rows = read_rows(out / "metrics.csv")
    assert list(rows[0]) == columns(4)
    assert [int(r["episode"]) for r in rows] == [1, 2, 3, 4]
    returns = np.array([[float(r[f"return_{n}"]) for n in range(4)] for r in rows])
    np.testing.assert_allclose(returns, results.returns.T, rtol=1e-6)
    np.testing.assert_allclose([float(r["mean_return"]) for r in rows], returns.mean(1), rtol=1e-6)
    config = results.config
    for k, row in enumerate(rows):  # the coordinated means' sigma_k, by hand
        sigma_k = max(
            config["explore_floor"], config["explore_sigma"] * config["explore_decay"] ** k
        )
        np.testing.assert_allclose(float(row["exploration_scale"]), sigma_k, rtol=1e-6)
        used = results.sharing[k]
        hand = np.mean([1 / sum(p * p for p in used[n]) for n in range(4)])
        np.testing.assert_allclose(float(row["effective_sources"]), hand, rtol=1e-5)
    assert float(rows[0]["effective_sources"]) == pytest.approx(1.0)  # own data until a rebuild
    for record in results.extra["rebuilds"]:
        row = rows[record["episode"] - 1]
        assert int(row["n_clusters"]) == record["n_clusters"]
        assert float(row["ari"]) == pytest.approx(record["ari"])
    assert [r["ari"] for r in rows[::2]] == ["", ""]  # no rebuild after episodes 1 and 3
    # episode 1 is half warm-up (100 of 200 steps), yet the learner updated: losses are set
    assert all(float(r["critic_loss"]) > 0 and float(r["actor_loss"]) != 0 for r in rows)
    assert all(float(r["agent_steps_per_s"]) > 0 for r in rows)


def test_effective_sources_is_one_for_individual_and_n_for_global():
    assert effective_sources(np.eye(5)) == pytest.approx(1.0)
    assert effective_sources(np.full((5, 5), 0.2)) == pytest.approx(5.0)


def tfrecords(path) -> list[bytes]:
    """The records of a TFRecord file: [length u64][crc u32][data][crc u32] each."""
    data, records, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at : at + 8])
        records.append(data[at + 12 : at + 12 + length])
        at += 12 + length + 4
    return records


def test_tensorboard_scalars_read_back_equal_the_csv(c3rl_run):
    from tensorboardX.proto.event_pb2 import Event

    out, _ = c3rl_run
    (events_file,) = (out / "tensorboard").glob("events.out.tfevents.*")
    scalars = {}
    for record in tfrecords(events_file):
        event = Event.FromString(record)
        for value in event.summary.value:
            scalars[(value.tag, event.step)] = value.simple_value
    rows = read_rows(out / "metrics.csv")
    for row in rows:
        step = int(row["episode"])
        for tag in ("mean_return", "critic_loss", "effective_sources"):
            assert scalars[(tag, step)] == pytest.approx(float(row[tag]), rel=1e-6)
    assert ("ari", 2) in scalars and ("ari", 1) not in scalars


def test_resumed_run_continues_metrics_without_repeating_episodes(tmp_path):
    out = str(tmp_path / "run")
    config = TrainConfig(**dict(TINY, episodes=2), checkpoint_every=1, out_dir=out)
    train(config)
    train(dataclasses.replace(config, episodes=3), resume=out)
    assert [int(r["episode"]) for r in read_rows(tmp_path / "run" / "metrics.csv")] == [1, 2, 3]


def test_metrics_log_drops_rows_after_the_checkpoint_it_resumes_from(tmp_path):
    config = TrainConfig(**TINY, out_dir=str(tmp_path))
    row = {name: 0.0 for name in columns(3)}
    log = MetricsLog(config, 3, episodes_done=0)
    log.write([{**row, "episode": e} for e in (1, 2, 3)])  # episode 3 after the checkpoint
    MetricsLog(config, 3, episodes_done=2)
    assert [int(r["episode"]) for r in read_rows(tmp_path / "metrics.csv")] == [1, 2]


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb installed")
def test_track_without_wandb_says_how_to_install_it(tmp_path):
    config = TrainConfig(**TINY, track=True, out_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"pip install 'c3rl-jax\[wandb\]'"):
        train(config)


def test_tensorboard_needs_an_output_folder():
    with pytest.raises(ConfigError, match="tensorboard=True is invalid: False when out_dir"):
        train(TrainConfig(**TINY, tensorboard=True))
