"""One host device per CPU core by default (set before JAX starts), its switch, and the
default split of the agent axis; returns do not depend on it."""

import json
import os
import subprocess
import sys

import numpy as np

from c3rl_jax.runtime.agent_mesh import default_devices

RUN = """
import json, c3rl_jax, jax
from c3rl_jax import TrainConfig, train
r = train(TrainConfig(task="ar", n_agents=4, episodes=2, warmup_steps=120, hidden=(16,),
                      buffer_size=300, progress=False))
print(json.dumps({"devices": jax.device_count(), "returns": r.returns.tolist()}))
"""


def run_fresh(setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("C3RL_JAX_HOST_DEVICES", "XLA_FLAGS")}
    if setting is not None:
        env["C3RL_JAX_HOST_DEVICES"] = setting
    done = subprocess.run(
        [sys.executable, "-c", RUN], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_core_is_a_device_by_default_and_returns_do_not_depend_on_it():
    default, off, two = run_fresh(None), run_fresh("off"), run_fresh("2")
    assert default["devices"] == (os.cpu_count() or 1)
    assert off["devices"] == 1 and two["devices"] == 2
    for other in (default, two):  # 4 agents split over the devices: the same returns
        np.testing.assert_allclose(other["returns"], off["returns"], rtol=1e-4, atol=1e-4)


def test_devices_none_takes_the_most_devices_that_split_the_agents():
    assert default_devices(20, 2) == 2
    assert default_devices(3, 2) == 1
    assert default_devices(12, 8) == 6
    assert default_devices(7, 16) == 7
    assert default_devices(1, 4) == 1
