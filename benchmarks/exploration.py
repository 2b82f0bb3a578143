"""Coordinated exploration where it should matter: sparse cart-pole swing-up, c3rl with its
coordinated OU noise against the same c3rl with plain Gaussian action noise, 10 seeds each
in one program, paired by seed (same population, same initial networks).

Sparse cart-pole is the task where independent noise rarely finds the reward: in the
comparison (benchmarks/compare.py, 5 seeds, 100 episodes) individual agents with OU noise
never reached the threshold (0/5, final mean return 3.1 of a possible 500).

    python -m benchmarks.exploration [--quick] [--seeds 10]

Writes results/exploration/exploration.json: per arm and seed the episodes to threshold
(not reached: the episode budget), the final return (mean of the last 10 episodes) and the
AUC (mean return over all episodes); per measure the paired differences with a Wilcoxon
signed-rank test and a paired t-test.
"""

import argparse
import json
import time

import numpy as np
from scipy import stats

from benchmarks.common import RESULTS_DIR, environment
from benchmarks.compare import THRESHOLDS
from c3rl_jax.analysis.comparison import episodes_to_threshold

TASK, REWARD = "cartpole_swingup", "sparse"
ARMS = {"coordinated": "coordinated", "gaussian": "gaussian"}  # arm: TrainConfig.exploration


def run_arm(exploration: str, seeds: int, episodes: int | None, out) -> list:
    """The seeds' Results of c3rl with this action noise (loaded when already complete)."""
    from c3rl_jax import Results, TrainConfig, train

    config = TrainConfig(
        task=TASK,
        reward=REWARD,
        sharing="c3rl",
        exploration=exploration,
        seeds=seeds,
        episodes=episodes,
        out_dir=str(out),
        progress=False,
        checkpoint_every=0,
        overwrite=True,
    ).resolved()
    folders = [out / f"s{seed}" for seed in range(seeds)]
    if all((f / "results.json").exists() for f in folders):
        done = [Results.load(f) for f in folders]
        if all(r.returns.shape[1] == config.episodes for r in done):
            return done
    return train(config)


def paired(a: np.ndarray, b: np.ndarray) -> dict:
    """a - b per seed, with a Wilcoxon signed-rank and a paired t-test (two-sided)."""
    diff = a - b
    wilcoxon = stats.wilcoxon(a, b) if np.any(diff != 0) else None
    return {
        "mean_difference": float(diff.mean()),
        "differences": diff.tolist(),
        "wilcoxon_p": None if wilcoxon is None else float(wilcoxon.pvalue),
        "t_test_p": float(stats.ttest_rel(a, b).pvalue) if np.any(diff != 0) else None,
    }


def main(quick: bool = False, seeds: int = 10) -> dict:
    seeds, episodes = (2, 6) if quick else (seeds, None)
    root = RESULTS_DIR / ("exploration_quick" if quick else "exploration")
    threshold = THRESHOLDS[(TASK, REWARD)]
    start = time.perf_counter()
    measures = {}
    for arm, exploration in ARMS.items():
        results = run_arm(exploration, seeds, episodes, root / arm)
        curves = np.array([r.returns.mean(axis=0) for r in results])  # [S, E]
        reach = np.array([episodes_to_threshold(c, threshold) for c in curves])
        measures[arm] = {
            "episodes_to_threshold": np.where(np.isfinite(reach), reach, curves.shape[1]),
            "reached": int(np.isfinite(reach).sum()),
            "final_return": curves[:, -10:].mean(axis=1),
            "auc": curves.mean(axis=1),
            "wall_time_s": results[0].wall_time,
        }
    a, b = measures["coordinated"], measures["gaussian"]
    payload = {
        "environment": environment(),
        "task": f"{TASK}-{REWARD}",
        "threshold": threshold,
        "seeds": seeds,
        "arms": {
            arm: {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in m.items()}
            for arm, m in measures.items()
        },
        "coordinated_minus_gaussian": {
            k: paired(a[k], b[k]) for k in ("episodes_to_threshold", "final_return", "auc")
        },
        "seconds": time.perf_counter() - start,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "exploration.json").write_text(json.dumps(payload, indent=2))
    for k, test in payload["coordinated_minus_gaussian"].items():
        print(f"{k}: coordinated - gaussian = {test['mean_difference']:.2f}, "
              f"Wilcoxon p = {test['wilcoxon_p']}, paired t p = {test['t_test_p']}")  # fmt: skip
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    main(args.quick, args.seeds)
