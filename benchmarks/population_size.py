"""The benefit as N grows (the paper's open question 3): c3rl against individual, global and
oracle sharing at N = 20, 100 and 500 agents on dense ar, the task's three mechanisms with
groups growing with N (7/7/6, 34/33/33, 167/167/166), episodes to threshold and wall time.

    python -m benchmarks.population_size [--quick]

Seeds per size (in one program each): 5 at N = 20, 2 at N = 100, 1 at N = 500 (the CPU's
budget). Writes results/population_size.json after every row (a rerun keeps the rows saved
and runs the rest) and prints a table.
"""

import argparse
import json
import time

import numpy as np

from benchmarks.common import RESULTS_DIR, write_json
from benchmarks.compare import THRESHOLDS
from c3rl_jax.analysis.comparison import episodes_to_threshold, interval

TASK, REWARD = "ar", "dense"
SIZES = {20: 5, 100: 2, 500: 1}  # agents: seeds
METHODS = ("individual", "global", "oracle", "c3rl")
EPISODES = 50


def run(n_agents: int, seeds: int, sharing: str, episodes: int) -> dict:
    from c3rl_jax import TrainConfig, train

    config = TrainConfig(
        task=TASK,
        reward=REWARD,
        sharing=sharing,
        n_agents=n_agents,
        seeds=seeds,
        episodes=episodes,
        progress=False,
        checkpoint_every=0,
    )
    start = time.perf_counter()
    results = train(config)
    wall = time.perf_counter() - start
    results = results if seeds > 1 else [results]
    threshold = THRESHOLDS[(TASK, REWARD)]
    reach = np.array([episodes_to_threshold(r.returns.mean(axis=0), threshold) for r in results])
    aris = [r.extra["rebuilds"][-1].get("ari") for r in results if r.extra["rebuilds"]]
    return {
        "episodes_to_threshold": interval(reach),
        "reached": f"{int(np.isfinite(reach).sum())}/{seeds}",
        "final_return": interval(np.array([r.returns[:, -10:].mean() for r in results])),
        "wall_time_s": wall,
        "compile_time_s": results[0].compile_time,
        "last_ari": aris,
    }


def main(quick: bool = False) -> dict:
    """Every (size, method) row, saved after each; rows already saved are kept, not rerun."""
    sizes, episodes = ({20: 2, 40: 1}, 4) if quick else (SIZES, EPISODES)
    name = "population_size_quick.json" if quick else "population_size.json"
    path = RESULTS_DIR / name
    table = json.loads(path.read_text())["table"] if path.exists() else {}
    for n_agents, seeds in sizes.items():
        for sharing in METHODS:
            key = f"{n_agents}-{sharing}"
            if key not in table:
                table[key] = {
                    "agents": n_agents,
                    "seeds": seeds,
                    **run(n_agents, seeds, sharing, episodes),
                }
                write_json(name, {"task": f"{TASK}-{REWARD}", "episodes": episodes, "table": table})
            row = table[key]
            e, h = row["episodes_to_threshold"]
            print(
                f"N={n_agents:>4} {sharing:>10}: {e:5.1f} ± {h:4.1f} episodes "
                f"({row['reached']}), wall {row['wall_time_s']:6.0f} s, ARI {row['last_ari']}",
                flush=True,
            )
    return {"task": f"{TASK}-{REWARD}", "episodes": episodes, "table": table}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
