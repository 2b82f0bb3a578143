"""Does individual DDPG learn? 20 identical pendulums (w = 0, default m and l), 100 episodes.

Target (issue 2): mean return over episodes 91-100, averaged over agents, at least -200.

    python -m benchmarks.learning [--quick]
"""

import argparse

import numpy as np

from benchmarks.common import write_json


def main(quick: bool = False) -> dict:
    from c3rl_jax import TrainConfig, custom_population, get_task, train

    env = get_task("pendulum").make_env("dense")
    n_agents, episodes = (4, 10) if quick else (20, 100)
    population = custom_population(env.default_params, {"w": np.zeros(n_agents)})
    results = train(
        TrainConfig(n_agents=n_agents, episodes=episodes, sharing="individual", progress=False),
        population=population,
    )
    last10 = results.returns[:, -10:].mean(axis=1)
    payload = {
        "quick": quick,
        "n_agents": n_agents,
        "episodes": episodes,
        "mean_return_last_10": float(last10.mean()),
        "worst_agent_last_10": float(last10.min()),
        "best_agent_last_10": float(last10.max()),
        "mean_return_per_episode": results.returns.mean(axis=0).tolist(),
        "agent_steps_per_s": results.agent_steps_per_s,
        "compile_time_s": results.compile_time,
        "config": results.config,
    }

    print(
        f"individual DDPG, {n_agents} pendulums (w=0), episodes {episodes - 9}-{episodes}: "
        f"mean return {last10.mean():.1f} (agents {last10.min():.1f} to {last10.max():.1f}), "
        f"{results.agent_steps_per_s:,.0f} agent-steps/s"
    )
    write_json("learning_quick.json" if quick else "learning.json", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
