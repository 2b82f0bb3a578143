"""Outside speed reference: rejax 0.1.3's TD3 set as close to c3rl-jax's DDPG as it allows
(its two critics, policy_delay 1, batch 64, 64-64 networks, one update per environment step,
one environment per seed), S seeds vmapped in one jitted program on gymnax Pendulum-v1, no
evaluation during training. Prints one JSON line with the aggregate agent-steps/s (the
second call of the compiled program, so compilation is not counted).

rejax 0.1.3 needs gymnax 0.0.9 (this project uses gymnax 1.x), so it runs in its own venv:

    python3 -m venv /tmp/rejax && /tmp/rejax/bin/pip install rejax==0.1.3 gymnax==0.0.9
    /tmp/rejax/bin/python benchmarks/rejax_td3.py [--seeds 20] [--steps 20000]
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
from rejax import TD3


def main(seeds: int, steps: int) -> dict:
    algo = TD3.create(
        env="Pendulum-v1",
        total_timesteps=steps,
        eval_freq=steps,
        skip_initial_evaluation=True,
        num_envs=1,
        policy_delay=1,
        batch_size=64,
        buffer_size=50_000,
        fill_buffer=1_000,
        learning_rate=1e-3,
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    train = jax.jit(jax.vmap(algo.train))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    start = time.perf_counter()
    jax.block_until_ready(train(keys))
    first = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(train(keys))
    run = time.perf_counter() - start
    return {
        "rejax": "0.1.3",
        "jax": jax.__version__,
        "seeds": seeds,
        "steps_per_seed": steps,
        "compile_and_first_run_s": first,
        "run_s": run,
        "agent_steps_per_s": seeds * steps / run,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(main(args.seeds, args.steps)))
