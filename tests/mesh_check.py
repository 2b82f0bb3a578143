"""Run by tests/test_agent_mesh.py in a subprocess with 4 forced host devices (the flag must be
set before JAX starts). Prints one JSON object with what the test asserts."""

import json
import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from c3rl_jax import TrainConfig, train  # noqa: E402
from c3rl_jax.config import SHARING_MODES  # noqa: E402
from c3rl_jax.errors import ConfigError  # noqa: E402
from c3rl_jax.runtime.agent_mesh import gather_rows, make_mesh  # noqa: E402
from c3rl_jax.training import _build  # noqa: E402

N_AGENTS = 8
out = {"devices": jax.device_count(), "modes": {}}
custom = np.full((N_AGENTS, N_AGENTS), 1.0 / N_AGENTS)
for mode in SHARING_MODES:
    returns, changed = {}, {}
    for devices in (1, 4):
        config = TrainConfig(
            task="ar",
            sharing=mode,
            n_agents=N_AGENTS,
            episodes=2,
            warmup_steps=120,
            hidden=(16, 16),
            buffer_size=300,
            rebuild_every=1,
            devices=devices,
            progress=False,
        )
        result = train(config, sharing_matrix=custom if mode == "custom" else None)
        returns[devices] = result.returns
        changed[devices] = len(result.sharing_matrices) > 1
    diff = np.abs(returns[1] - returns[4]) / np.maximum(np.abs(returns[1]), 1.0)
    out["modes"][mode] = {"max_rel_diff": float(diff.max()), "p_rebuilt": changed[4]}

config = TrainConfig(task="ar", n_agents=N_AGENTS, devices=4, progress=False).resolved()
_, run, _, _ = _build(config, None, None)  # run: the program (state, inputs)
out["specs"] = [  # every leaf of the run's state and chunk inputs: shape, where it lives
    {
        "path": jax.tree_util.keystr(path),
        "shape": list(leaf.shape),
        "spec": str(leaf.sharding.spec),
        "shard_shape": list(leaf.sharding.shard_shape(leaf.shape)),
    }
    for tree in (run.state, run.inputs)
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
]

mesh = make_mesh(4, N_AGENTS)
k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
data = {
    "x": jax.random.normal(k1, (N_AGENTS, 50, 3)),
    "flag": jax.random.bernoulli(k1, 0.5, (N_AGENTS, 50)),
}
src = jax.random.randint(k2, (N_AGENTS, 16), 0, N_AGENTS)
idx = jax.random.randint(k3, (N_AGENTS, 16), 0, 50)
plain = gather_rows(data, src, idx, None)
split = jax.jit(lambda d, s, i: gather_rows(d, s, i, mesh))(data, src, idx)
out["gather_equal"] = all(
    bool(jnp.array_equal(a, b))
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(split), strict=True)
)
try:
    train(TrainConfig(task="ar", n_agents=6, episodes=1, devices=4, progress=False))
    out["indivisible_error"] = None
except ConfigError as err:
    out["indivisible_error"] = str(err)
print("RESULT " + json.dumps(out))
