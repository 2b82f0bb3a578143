"""The agent axis split over 4 forced host devices gives the same training as one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from jax.sharding import PartitionSpec

from c3rl_jax import Results
from c3rl_jax.config import SHARING_MODES
from c3rl_jax.errors import ConfigError
from c3rl_jax.runtime.agent_mesh import make_mesh

ADAPTIVE = ("c3rl", "sysid")


@pytest.fixture(scope="module")
def sharded():
    script = Path(__file__).with_name("mesh_check.py")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_four_devices_seen(sharded):
    assert sharded["devices"] == 4


@pytest.mark.parametrize("mode", SHARING_MODES)
def test_sharded_returns_equal_unsharded(sharded, mode):
    row = sharded["modes"][mode]
    # c3rl refits GPPOM (300 non-convex steps) on data equal to ~1e-7: that amplifies a little
    assert row["max_rel_diff"] < (1e-2 if mode == "c3rl" else 1e-4)
    if mode in ADAPTIVE:  # the rebuild really ran and changed P mid-run
        assert row["p_rebuilt"]


def test_every_leaf_is_split_by_agent_iff_it_has_the_agent_axis(sharded):
    split, copy = str(PartitionSpec("agents")), str(PartitionSpec())
    leaves = {leaf["path"]: leaf for leaf in sharded["specs"]}
    for leaf in leaves.values():
        per_agent = len(leaf["shape"]) >= 1 and leaf["shape"][0] == 8
        assert leaf["spec"] == (split if per_agent else copy), leaf
        if per_agent:  # 8 agents over 4 devices: 2 each
            assert leaf["shard_shape"] == [2, *leaf["shape"][1:]], leaf
    obs = next(leaf for path, leaf in leaves.items() if "obs" in path and "data" in path)
    assert obs["spec"] == split and obs["shard_shape"] == [2, 50_000, 2]  # the default buffer
    assert any("ptr" in path and leaf["spec"] == copy for path, leaf in leaves.items())
    assert sum(leaf["spec"] == split for leaf in leaves.values()) > 20  # networks, buffer, ...


def test_cross_device_gather_is_exact(sharded):
    assert sharded["gather_equal"]


def test_indivisible_agent_count_is_refused(sharded):
    message = sharded["indivisible_error"]
    assert message is not None
    assert "n_agents=6" in message and "devices=4" in message and "multiple of 4" in message


def test_more_devices_than_exist_is_refused():
    with pytest.raises(ConfigError, match="devices=64 is invalid"):
        make_mesh(64, 64)


def test_one_device_needs_no_mesh():
    assert make_mesh(1, 7) is None


def test_cli_refuses_unavailable_devices(capsys):
    from c3rl_jax.cli import main

    assert main(["train", "--agents", "4", "--devices", "3", "--episodes", "1"]) == 2
    assert "devices=3 is invalid" in capsys.readouterr().err


def test_two_processes_train_like_one(tmp_path):
    """`c3rl train --distributed` in two local processes (gloo collectives on the CPU), the
    agent axis over both, gives the single-process returns; only process 0 saves results."""
    args = ["train", "--task", "ar", "--agents", "4", "--episodes", "2", "--warmup-steps"]
    args += ["120", "--hidden", "16,16", "--buffer-size", "300", "--sharing", "global"]
    args += ["--no-progress", "--checkpoint-every", "0"]
    c3rl = [sys.executable, "-m", "c3rl_jax"]
    env = {
        **os.environ,
        "JAX_COORDINATOR_ADDRESS": "localhost:23471",
        "JAX_NUM_PROCESSES": "2",
        "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
        "PYTHONWARNINGS": "ignore",
    }
    procs = [
        subprocess.Popen(
            [*c3rl, *args, "--distributed", "--out", str(tmp_path / f"p{i}")],
            env={**env, "JAX_PROCESS_ID": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    single = subprocess.run(
        [*c3rl, *args, "--devices", "1", "--out", str(tmp_path / "single")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    assert not (tmp_path / "p1").exists()
    both = Results.load(tmp_path / "p0").returns
    np.testing.assert_allclose(both, Results.load(tmp_path / "single").returns, rtol=1e-4)


def test_distributed_after_jax_started_is_a_clear_error():
    import jax.numpy as jnp

    from c3rl_jax.runtime.agent_mesh import start_distributed

    jnp.zeros(1).block_until_ready()  # the backend is up
    with pytest.raises(ConfigError, match="before importing"):
        start_distributed()


def test_importing_the_package_leaves_jax_unstarted_and_names_resolve():
    code = (
        "from jax._src import xla_bridge as xb\n"
        "import c3rl_jax\n"
        "assert not xb.backends_are_initialized()\n"
        "import c3rl_jax.training\n"
        "from c3rl_jax import train, TrainConfig\n"
        "assert train is c3rl_jax.training.train and callable(train)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
