"""Aggregate agent-steps per second of the full training loop vs the number of agents and
the number of devices the agent axis is split over.

Every step: act with OU noise, step all pendulums, store, and one critic and one actor update
per agent (batch 64, 64-64 networks; warm-up 0 so updates run from the first step), on N
pendulums with winds spread over [-1, 1]. Each (devices, N) point runs in its own process so
that its peak memory is its own; on a CPU-only machine the extra devices are forced host
devices (XLA_FLAGS=--xla_force_host_platform_device_count=D), which split the same cores.
Compile time is reported apart from run time.

The compute ceiling (`--ceiling`, also run by the suite, in its own process on one device)
puts the rows in FLOPs: the learner update's FLOPs per agent (XLA's cost analysis), the
GFLOP/s of the update alone (one scan of 2,000 agent-updates, at least 10 updates) and of
batched 64x64x64 matrix products (the shape of the networks' hidden layers) at N = 20 and
1000, and of one 2048^2 product; each row then carries its achieved GFLOP/s.

    python -m benchmarks.scaling [--quick] [--devices 1,2] [--agents 20,100,1000,4096]
    python -m benchmarks.scaling --ceiling
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


def update_flops(learner, n_agents: int) -> float:
    """FLOPs of one learner update per agent (batch of the learner's size), counted by XLA."""
    import jax

    state, batch, datum = _update_inputs(learner, n_agents)
    cost = jax.jit(learner.update).lower(state, batch, datum).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # a list in older jax
    return cost["flops"] / n_agents


def _update_inputs(learner, n_agents: int):
    """(state, batch [N, B, ...], datum [N, B]) for one update of random data."""
    import jax
    import jax.numpy as jnp

    from c3rl_jax.replay import Transition

    key = jax.random.PRNGKey(0)
    shape = (n_agents, learner.config.batch_size)
    normal = lambda *tail: jax.random.normal(key, shape + tail)  # noqa: E731
    never = jnp.zeros(shape, bool)
    batch = Transition(
        normal(learner.obs_dim),
        normal(learner.act_dim),
        normal(),
        normal(learner.obs_dim),
        never,
        never,
    )
    return learner.init(key, n_agents), batch, jnp.zeros(shape, jnp.int32)


def _best_seconds(fn, *args, repeats: int = 5) -> float:
    """Fastest of `repeats` calls of a jitted fn, after one warm call."""
    import time

    import jax

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


def ceiling(agent_counts=(20, 1000)) -> dict:
    """GFLOP/s of one 2048^2 matrix product, of batched [N, 64, 64] products and of the DDPG
    update alone (2,000 agent-updates, at least 10 updates, in one scan) at each N, and the
    update's FLOPs per agent."""
    import jax
    import jax.numpy as jnp

    from c3rl_jax.learners import make_learner
    from c3rl_jax.learners.ddpg import DDPGConfig

    key = jax.random.PRNGKey(0)
    square = jax.random.normal(key, (2048, 2048))
    out = {"gemm_2048_gflops": 2 * 2048**3 / _best_seconds(jax.jit(lambda a: a @ a), square) / 1e9}
    product = jax.jit(lambda a: jnp.einsum("nij,njk->nik", a, a))
    learner = make_learner("ddpg", DDPGConfig(batch_size=64, hidden=(64, 64)), 3, 1)
    flops = update_flops(learner, agent_counts[0])
    out["update_flops_per_agent"] = flops

    def many_updates(state, batch, datum, updates: int):
        body = lambda s, _: (learner.update(s, batch, datum)[0], None)  # noqa: E731
        return jax.lax.scan(body, state, None, length=updates)[0]

    scanned = jax.jit(many_updates, static_argnums=3)
    for n in agent_counts:
        updates = max(10, 2000 // n)
        blocks = jax.random.normal(key, (n, 64, 64))
        out[f"batched_64_gflops_n{n}"] = 2 * n * 64**3 / _best_seconds(product, blocks) / 1e9
        seconds = _best_seconds(scanned, *_update_inputs(learner, n), updates, repeats=3)
        out[f"update_gflops_n{n}"] = flops * n * updates / seconds / 1e9
        out[f"update_agent_updates_per_s_n{n}"] = n * updates / seconds
    return out


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


def run_ceiling() -> dict:
    """`ceiling()` in a fresh process on one device."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.scaling", "--ceiling"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(quick: bool = False, devices=(1, 2), agents=None) -> dict:
    counts = agents or (QUICK_AGENT_COUNTS if quick else AGENT_COUNTS)
    limits = run_ceiling()
    for name, value in limits.items():
        print(f"{name}: {value:,.1f}")
    rows = []
    print(
        f"{'devices':>7} {'agents':>7} {'agent-steps/s':>14} {'GFLOP/s':>8} {'compile s':>10} "
        f"{'peak MiB':>9}"
    )
    for d in devices:
        for n in counts:
            if n % d:
                continue  # the agent axis splits in equal blocks
            r = run_point(n, d, episodes_for(n, quick))
            r["gflops"] = r["agent_steps_per_s"] * limits["update_flops_per_agent"] / 1e9
            rows.append(r)
            print(
                f"{d:>7} {n:>7} {r['agent_steps_per_s']:>14,.0f} {r['gflops']:>8.1f} "
                f"{r['compile_time_s']:>10.1f} "
                f"{r['peak_rss_mib']:>9.0f}",
                flush=True,
            )
    payload = {"quick": quick, "ceiling": limits, "rows": rows, "ratios": _ratios(rows)}
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
    parser.add_argument(
        "--ceiling", action="store_true", help="measure the compute ceiling, print JSON"
    )
    args = parser.parse_args()
    device_counts = tuple(int(d) for d in args.devices.split(","))
    if args.ceiling:
        print(json.dumps(ceiling()))
    elif args.single:
        print(json.dumps(measure(args.single, args.episodes, device_counts[0])))
    else:
        agents = tuple(int(n) for n in args.agents.split(",")) if args.agents else None
        main(args.quick, device_counts, agents)
