"""Aggregate agent-steps per second of the full training loop vs the number of agents.

Every step: act with OU noise, step all pendulums, store, and one critic and one actor update
per agent (batch 64, 64-64 networks; warm-up 0 so updates run from the first step), on N
pendulums with winds spread over [-1, 1]. Each N
runs in its own process so that its peak memory is its own.

    python -m benchmarks.throughput [--quick]
"""

import argparse
import json
import subprocess
import sys

from benchmarks.common import peak_rss_mib, write_json

AGENT_COUNTS = (1, 20, 100, 1000)


def measure(n_agents: int, episodes: int) -> dict:
    import numpy as np

    from c3rl_jax import TrainConfig, custom_population, get_task, train

    env = get_task("pendulum").make_env("dense")
    population = custom_population(env.default_params, {"w": np.linspace(-1, 1, n_agents)})
    config = TrainConfig(
        n_agents=n_agents,
        episodes=episodes,
        episodes_per_chunk=1,
        warmup_steps=0,
        batch_size=64,
        hidden=(64, 64),
        buffer_size=10_000,
        progress=False,
    )
    results = train(config, population=population)
    return {
        "n_agents": n_agents,
        "episodes": episodes,
        "agent_steps_per_s": results.agent_steps_per_s,
        "compile_time_s": results.compile_time,
        "run_time_s": results.run_time,
        "peak_rss_mib": peak_rss_mib(),
        "config": results.config,
    }


def episodes_for(n_agents: int, quick: bool) -> int:
    """About 20k-60k agent-steps per point (1 episode = 200 steps per agent)."""
    if quick:
        return 1 if n_agents >= 100 else 2
    return max(2, min(20, 300 // n_agents))


def main(quick: bool = False) -> dict:
    counts = AGENT_COUNTS[:3] if quick else AGENT_COUNTS
    rows = []
    for n in counts:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.throughput",
                "--single",
                str(n),
                "--episodes",
                str(episodes_for(n, quick)),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'agents':>7} {'agent-steps/s':>14} {'compile s':>10} {'peak MiB':>9}")
    for r in rows:
        print(
            f"{r['n_agents']:>7} {r['agent_steps_per_s']:>14,.0f} {r['compile_time_s']:>10.1f} "
            f"{r['peak_rss_mib']:>9.0f}"
        )
    payload = {"quick": quick, "rows": rows}
    write_json("throughput_quick.json" if quick else "throughput.json", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--single", type=int, help="measure one agent count, print JSON")
    parser.add_argument("--episodes", type=int, default=2)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(measure(args.single, args.episodes)))
    else:
        main(args.quick)
