"""The accelerator figures in one short run (about 5 minutes on a lent H200), one JSON:

- scaling of the full training loop at N = 20, 1000 and 4096 agents (one critic and one actor
  update per agent-step, batch 64, 64-64 networks; `benchmarks.scaling`, each point in its own
  process), aggregate agent-steps/s and compile time;
- the compute ceiling (`benchmarks.scaling.ceiling`): the update's FLOPs per agent and the
  GFLOP/s of the update alone, of batched 64x64x64 products and of a 2048^2 product;
- c3rl against oracle sharing on the default pendulum population (20 agents, 100 episodes):
  wall, run and compile time, the rebuilds' seconds; the target is c3rl at most 1.2x oracle;
- a jax.profiler trace of the first chunks at N = 4096 (TensorBoard's profile plugin or
  ui.perfetto.dev).

    bash benchmarks/device_check.sh          # on the device machine: installs, then this
    python -m benchmarks.device_check --out DIR [--quick]
"""

import argparse
import json
import time
from pathlib import Path

from benchmarks import scaling
from benchmarks.common import environment

AGENTS = (20, 1000, 4096)


def c3rl_against_oracle(episodes: int) -> dict:
    from c3rl_jax import TrainConfig, train

    out = {}
    for sharing in ("oracle", "c3rl"):
        results = train(TrainConfig(sharing=sharing, episodes=episodes, progress=False))
        rebuilds = [r["seconds"] for r in results.extra["rebuilds"] if "seconds" in r]
        out[sharing] = {
            "wall_time_s": results.wall_time,
            "run_time_s": results.run_time,
            "compile_time_s": results.compile_time,
            "rebuild_seconds": rebuilds,
            "final_mean_return": results.summary()["final_mean_return"],
        }
    out["wall_ratio_c3rl_over_oracle"] = out["c3rl"]["wall_time_s"] / out["oracle"]["wall_time_s"]
    return out


def profile(out_dir: Path, n_agents: int) -> str:
    from c3rl_jax import TrainConfig, train

    trace = out_dir / "profile"
    config = TrainConfig(
        n_agents=n_agents,
        episodes=3,
        episodes_per_chunk=1,
        warmup_steps=0,
        buffer_size=10_000,
        profile_dir=str(trace),
        progress=False,
    )
    train(config)
    return str(trace)


def main(out_dir: str, quick: bool = False) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    agents = AGENTS[:2] if quick else AGENTS
    payload = {"environment": environment(), "scaling": []}
    for n in agents:
        row = scaling.run_point(n, 1, 2 if quick else 5)
        payload["scaling"].append(row)
        print(f"N={n}: {row['agent_steps_per_s']:,.0f} agent-steps/s", flush=True)
    payload["ceiling"] = scaling.run_ceiling()
    print(f"update alone, N=1000: {payload['ceiling']['update_gflops_n1000']:.0f} GFLOP/s")
    payload["c3rl_vs_oracle"] = c3rl_against_oracle(10 if quick else 100)
    print(f"c3rl / oracle wall: {payload['c3rl_vs_oracle']['wall_ratio_c3rl_over_oracle']:.2f}")
    payload["profile_dir"] = profile(out, agents[-1])
    payload["seconds"] = time.perf_counter() - start
    (out / "device_check.json").write_text(json.dumps(payload, indent=2))
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="benchmarks/results/device")
    parser.add_argument("--quick", action="store_true", help="N = 20 and 1000, 10 episodes")
    args = parser.parse_args()
    main(args.out, args.quick)
