"""Do the learners learn? Individual learning on the pendulum, 20 agents, 100 episodes.

1. DDPG on 20 identical pendulums (w = 0, default m and l); target (issue 2): mean return
   over episodes 91-100, averaged over agents, at least -200.
2. DDPG and TD3 side by side on the default population (3 wind groups), one run each, the
   same seed: final return and agent-steps/s.

    python -m benchmarks.learning [--quick]
"""

import argparse
import dataclasses

import numpy as np

from benchmarks.common import write_json


def summary(results) -> dict:
    last10 = results.returns[:, -10:].mean(axis=1)
    return {
        "mean_return_last_10": float(last10.mean()),
        "worst_agent_last_10": float(last10.min()),
        "best_agent_last_10": float(last10.max()),
        "mean_return_per_episode": results.returns.mean(axis=0).tolist(),
        "agent_steps_per_s": results.agent_steps_per_s,
        "compile_time_s": results.compile_time,
        "run_time_s": results.run_time,
        "config": results.config,
    }


def main(quick: bool = False) -> dict:
    from c3rl_jax import TrainConfig, custom_population, get_task, train

    env = get_task("pendulum").make_env("dense")
    n_agents, episodes = (4, 10) if quick else (20, 100)
    base = TrainConfig(n_agents=n_agents, episodes=episodes, sharing="individual", progress=False)
    identical = custom_population(env.default_params, {"w": np.zeros(n_agents)})
    payload = {"quick": quick, "n_agents": n_agents, "episodes": episodes}
    payload["identical_ddpg"] = summary(train(base, population=identical))
    for learner in ("ddpg", "td3"):
        config = dataclasses.replace(base, learner=learner)
        payload[f"default_{learner}"] = summary(train(config))
    for name in ("identical_ddpg", "default_ddpg", "default_td3"):
        row = payload[name]
        print(
            f"{name}: episodes {episodes - 9}-{episodes} mean return "
            f"{row['mean_return_last_10']:.1f} (agents {row['worst_agent_last_10']:.1f} to "
            f"{row['best_agent_last_10']:.1f}), {row['agent_steps_per_s']:,.0f} agent-steps/s"
        )
    write_json("learning_quick.json" if quick else "learning.json", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
