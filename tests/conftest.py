import atexit
import os
import shutil
import tempfile

# One CPU device in tests (and their subprocesses), unless a test asks for more: the default of
# one host device per core is tested on its own (test_host_devices.py).
os.environ.setdefault("C3RL_JAX_HOST_DEVICES", "off")

import pytest  # noqa: E402

from c3rl_jax import TrainConfig  # noqa: E402

# Runs in tests compile into a throwaway persistent cache, never the user's; the process that
# made it (with pytest-xdist: the controller, whose workers inherit it) removes it at exit.
if "C3RL_JAX_CACHE_DIR" not in os.environ:
    os.environ["C3RL_JAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="c3rl-jax-test-cache-")
    atexit.register(shutil.rmtree, os.environ["C3RL_JAX_CACHE_DIR"], ignore_errors=True)

# Small enough for CI: 3 agents, 2 pendulum episodes, updates from step 100 on.
TINY = dict(
    n_agents=3,
    episodes=2,
    episodes_per_chunk=1,
    hidden=(16,),
    batch_size=8,
    warmup_steps=100,
    buffer_size=512,
    progress=False,
)


@pytest.fixture
def tiny_config():
    return TrainConfig(**TINY)
