"""Aggregate agent-steps per second of the full training loop vs the number of agents and
the number of devices the agent axis is split over.

Every step: act with OU noise, step all pendulums, store, and one critic and one actor update
per agent (batch 64, 64-64 networks; warm-up 0 so updates run from the first step), on N
pendulums with winds spread over [-1, 1]. Each (devices, N) point runs in its own process so
that its peak memory is its own; on a CPU-only machine the extra devices are forced host
devices (XLA_FLAGS=--xla_force_host_platform_device_count=D), which split the same cores.
Compile time is reported apart from run time.

    python -m benchmarks.scaling [--quick] [--devices 1,2] [--agents 20,100,1000,4096]
"""

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import peak_rss_mib, write_json

AGENT_COUNTS = (1, 20, 100, 1000, 4096)
QUICK_AGENT_COUNTS = (1, 20, 100)


def measure(n_agents: int, episodes: int, devices: int) -> dict:
    import jax
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
        devices=devices,
        progress=False,
    )
    results = train(config, population=population)
    return {
        "devices": devices,
        "device_kind": jax.devices()[0].device_kind,
        "n_agents": n_agents,
        "episodes": episodes,
        "agent_steps_per_s": results.agent_steps_per_s,
        "compile_time_s": results.compile_time,
        "run_time_s": results.run_time,
        "peak_rss_mib": peak_rss_mib(),
        "config": results.config,
    }


def episodes_for(n_agents: int, quick: bool) -> int:
    """About 20k-60k agent-steps per point (1 episode = 200 steps per agent), at least 2
    episodes (1 in the quick suite) so that large N still run a few."""
    if quick:
        return 1 if n_agents >= 100 else 2
    return max(2, min(20, 300 // n_agents))


def run_point(n_agents: int, devices: int, episodes: int) -> dict:
    """One (devices, N) point in a fresh process."""
    env = dict(os.environ)
    if devices > 1:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    args = ["--single", str(n_agents), "--episodes", str(episodes), "--devices", str(devices)]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.scaling", *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(quick: bool = False, devices=(1, 2), agents=None) -> dict:
    counts = agents or (QUICK_AGENT_COUNTS if quick else AGENT_COUNTS)
    rows = []
    print(f"{'devices':>7} {'agents':>7} {'agent-steps/s':>14} {'compile s':>10} {'peak MiB':>9}")
    for d in devices:
        for n in counts:
            if n % d:
                continue  # the agent axis splits in equal blocks
            r = run_point(n, d, episodes_for(n, quick))
            rows.append(r)
            print(
                f"{d:>7} {n:>7} {r['agent_steps_per_s']:>14,.0f} {r['compile_time_s']:>10.1f} "
                f"{r['peak_rss_mib']:>9.0f}",
                flush=True,
            )
    payload = {"quick": quick, "rows": rows, "ratios": _ratios(rows)}
    for name, value in payload["ratios"].items():
        print(f"{name}: {value:.2f}")
    write_json("scaling_quick.json" if quick else "scaling.json", payload)
    return payload


def _ratios(rows: list[dict]) -> dict:
    """Aggregate speed at large N over N = 20 per device count, and 2 devices over 1."""
    speed = {(r["devices"], r["n_agents"]): r["agent_steps_per_s"] for r in rows}
    out = {}
    for (d, n), value in speed.items():
        if n > 20 and (d, 20) in speed:
            out[f"devices={d}: N={n} / N=20"] = value / speed[d, 20]
        if d > 1 and (1, n) in speed:
            out[f"N={n}: devices={d} / devices=1"] = value / speed[1, n]
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--single", type=int, help="measure one agent count, print JSON")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--devices", default="1,2", help="device counts, comma-separated")
    parser.add_argument("--agents", help="agent counts, comma-separated (default: the suite's)")
    args = parser.parse_args()
    device_counts = tuple(int(d) for d in args.devices.split(","))
    if args.single:
        print(json.dumps(measure(args.single, args.episodes, device_counts[0])))
    else:
        agents = tuple(int(n) for n in args.agents.split(",")) if args.agents else None
        main(args.quick, device_counts, agents)
