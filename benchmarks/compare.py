"""The paper's comparison: every method on every task and reward mode, several seeds.

Each method is one `train()` of 20 agents with its seeds in one program (`seeds`), saved
under benchmarks/results/compare/TASK-REWARD/METHOD/sS (compare_quick/ for --quick; a method
already complete there is skipped, so an interrupted suite resumes; so is one saved as
METHOD/seedS, one process per seed, by suites before seeds ran in one program).
Writes compare.json, compare.md (table) and, per task and reward mode, a learning-curve PNG,
plus for c3rl a PNG of the final P and of cluster ARI and K per rebuild
(c3rl_jax.analysis.plotting), and for every method that rebuilds P the stability of its
clusters (ARI at episodes 10 and 20, rebuilds after episode 20 below 0.8).

    python -m benchmarks.compare [--quick] [--seeds 5] [--tasks pendulum-dense ...]

Episodes to threshold: the first episode whose population-mean return, averaged over a
5-episode window, reaches the task's threshold (THRESHOLDS below); runs that never reach it
count as not reached and are left out of the mean (the table says how many reached).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS_DIR, environment
from c3rl_jax.analysis import plotting
from c3rl_jax.analysis.comparison import (
    episodes_to_threshold,
    headroom,
    interval,
    rebuild_stability,
)

METHODS = {
    "individual": {"sharing": "individual"},
    "global": {"sharing": "global"},
    "oracle": {"sharing": "oracle"},
    "c3rl": {"sharing": "c3rl"},
    "c3rl_anm_mm": {"sharing": "c3rl", "mechanism": "anm_mm"},
    "c3rl_anm_mm_no_coord": {"sharing": "c3rl", "mechanism": "anm_mm", "exploration": "gaussian"},
    "c3rl_sysid": {"sharing": "sysid"},
    "seed_sampling": {"sharing": "seed_sampling"},
}

# Population-mean episode return that counts as "solved enough" per task and reward mode.
THRESHOLDS = {
    ("pendulum", "dense"): -400.0,
    ("pendulum", "sparse"): 40.0,
    ("ar", "dense"): -30.0,
    ("ar", "sparse"): 25.0,
    ("cartpole_swingup", "dense"): 150.0,
    ("cartpole_swingup", "sparse"): 10.0,
}


def run_method(
    out_root: Path, task: str, reward: str, method: str, seeds: int, episodes: int | None
) -> list[dict]:
    """Train one (task, reward, method) for seeds 0..S-1 in one program (`seeds`), or load
    it if already complete; one summary per seed."""
    from c3rl_jax import Results, TrainConfig, train

    out = out_root / f"{task}-{reward}" / method
    config = TrainConfig(
        task=task,
        reward=reward,
        seeds=seeds,
        n_agents=20,
        episodes=episodes,
        out_dir=str(out),
        progress=False,
        checkpoint_every=0,
        overwrite=True,  # an incomplete run of the suite is redone from the start
        **METHODS[method],
    ).resolved()
    # sS: one program of all seeds; seedS: one process per seed (suites before 2026-12-02)
    for name, one_program in (("s", True), ("seed", False)):
        folders = [out / f"{name}{seed}" for seed in range(seeds)]
        if one_program and not (out / "replicas.json").exists():
            continue
        if all((f / "results.json").exists() for f in folders):
            done = [Results.load(f) for f in folders]
            if all(r.returns.shape[1] == config.episodes for r in done):
                return [summarise(r, one_program) for r in done]
    results = train(config)
    return [summarise(r) for r in (results if seeds > 1 else [results])]


def summarise(results, one_program: bool = True) -> dict:
    curve = results.returns.mean(axis=0)  # [E] population-mean return per episode
    return {
        "curve": curve.tolist(),
        "wall_time_s": results.wall_time,  # of the whole program, all seeds together
        "one_program": one_program,  # False: wall_time_s is this seed's own process
        "agent_steps": int(results.returns.size * results.episode_length),
        "rebuilds": results.extra.get("rebuilds", []),
        "final_sharing": results.sharing_matrices[-1].tolist(),
        "groups": results.groups.tolist(),
    }


def aggregate(runs: dict, threshold: float) -> dict:
    """runs: method -> list over seeds of run summaries. Per method its row, and the share
    of the oracle's headroom each c3rl variant captures."""
    table, reach_of = {}, {}
    for method, seeds in runs.items():
        curves = np.array([r["curve"] for r in seeds])  # [S, E]
        reach = np.array([episodes_to_threshold(c, threshold) for c in curves])
        reach_of[method] = reach
        one_program = seeds[0].get("one_program", True)
        walls = np.array([r["wall_time_s"] for r in seeds])
        table[method] = {
            "episodes_to_threshold": interval(reach),
            "reached": f"{int(np.isfinite(reach).sum())}/{len(reach)}",
            "final_return": interval(curves[:, -10:].mean(axis=1)),
            "auc": interval(curves.mean(axis=1)),
            # the one program of all seeds, or [mean, half-width] of one process per seed
            "wall_time_s": seeds[0]["wall_time_s"] if one_program else interval(walls),
            "agent_steps": int(sum(r["agent_steps"] for r in seeds)),
            "run_seconds": float(walls[0] if one_program else walls.sum()),
        }
    stability = {m: rebuild_stability(s) for m, s in runs.items() if s[0]["rebuilds"]}
    budget = len(runs["oracle"][0]["curve"])
    shares = {
        method: headroom(reach_of, budget, method)
        for method in runs
        if method.startswith("c3rl") and {"individual", "global", "oracle"} <= set(runs)
    }
    return table, shares, stability


def plot_c3rl(seeds: list, title: str, path: Path) -> None:
    """Seed 0's final P (agents by true group) and each seed's cluster ARI and K per rebuild."""
    fig, (ax_p, ax_ari, ax_k) = plotting.figure(3, title=title)
    final = np.array(seeds[0]["final_sharing"])
    image = plotting.draw_sharing(ax_p, final, np.array(seeds[0]["groups"]), final.max())
    fig.colorbar(image, ax=ax_p)
    ax_p.set(
        title="c3rl: final P (seed 0, by true group)", xlabel="source agent m", ylabel="agent n"
    )
    plotting.draw_rebuilds(ax_ari, ax_k, {f"seed {i}": r["rebuilds"] for i, r in enumerate(seeds)})
    plotting.save(fig, path)


def markdown(table: dict) -> str:
    lines = []
    for key, rows in table.items():
        lines += [
            f"\n### {key} (threshold {rows['threshold']})\n",
            "| method | episodes to threshold | reached | final return | AUC | wall s, all seeds |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for method, r in rows["methods"].items():
            fmt = lambda m_h: f"{m_h[0]:.1f} ± {m_h[1]:.1f}"  # noqa: E731
            # a [mean, half-width] pair: one process per seed (saved before seeds ran in one)
            wall = r["wall_time_s"]
            wall = f"{wall[0]:.0f} per seed" if isinstance(wall, list | tuple) else f"{wall:.0f}"
            lines.append(
                f"| {method} | {fmt(r['episodes_to_threshold'])} | {r['reached']} | "
                f"{fmt(r['final_return'])} | {fmt(r['auc'])} | {wall} |"
            )
        for method, st in rows.get("rebuilds", {}).items():
            lines.append(
                f"\n{method} rebuilds: cluster ARI {st['ari_episode_10']:.2f} at episode 10 and "
                f"{st['ari_episode_20']:.2f} at 20 (mean over seeds); after episode 20 "
                f"{st['later_below']} of {st['later']} below 0.8, lowest {st['later_lowest']:.2f}"
            )
        for method, h in rows.get("headroom", {}).items():
            ahead = "ahead of" if h["oracle_gain"] >= 0 else "behind"
            detail = (
                f"the oracle is {abs(h['oracle_gain']):.1f} episodes {ahead} {h['naive']}; "
                "not reached counts as the episode budget"
            )
            share = (
                f"{h['headroom']:.2f} of the oracle's headroom "
                f"(95% {h['low']:.2f} to {h['high']:.2f}; {detail})"
                if np.isfinite(h["headroom"])
                else f"no headroom to capture ({detail})"
            )
            lines.append(f"\n{method}: {share}")
    return "\n".join(lines) + "\n"


def suite_throughput(table: dict) -> dict:
    """Over every task in `table` (this invocation's and earlier ones'): the runs' seconds,
    each run's own wall time as saved (compiles and rebuilds included, process start-up
    not; an earlier suite's one process per seed counts each process), their agent-steps,
    and agent-steps per second."""
    rows = [row for task in table.values() for row in task["methods"].values()]
    seconds = sum(row["run_seconds"] for row in rows)
    steps = sum(row["agent_steps"] for row in rows)
    return {
        "suite_run_seconds": seconds,
        "suite_agent_steps": steps,
        "suite_agent_steps_per_s": steps / seconds if seconds else float("nan"),
    }


def merged_tables(path: Path, table: dict) -> dict:
    """The tables already in `path` (tasks run earlier) with this run's replacing theirs, in
    THRESHOLDS order, so that running one task at a time never drops the others."""
    earlier = json.loads(path.read_text())["table"] if path.exists() else {}
    merged = {**earlier, **table}
    order = [f"{t}-{r}" for t, r in THRESHOLDS]
    return {key: merged[key] for key in sorted(merged, key=order.index)}


def main(quick: bool = False, seeds: int = 5, tasks: list[str] | None = None) -> dict:
    if quick:
        tasks, seeds, episodes = tasks or ["pendulum-dense", "pendulum-sparse"], 2, 15
    else:
        tasks, episodes = tasks or [f"{t}-{r}" for t, r in THRESHOLDS], None
    out_root = RESULTS_DIR / ("compare_quick" if quick else "compare")
    out_root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    table = {}

    for key in tasks:
        task, reward = key.rsplit("-", 1)
        threshold = THRESHOLDS[(task, reward)]
        runs = {m: run_method(out_root, task, reward, m, seeds, episodes) for m in METHODS}
        rows, shares, stability = aggregate(runs, threshold)
        table[key] = {
            "threshold": threshold,
            "methods": rows,
            "headroom": shares,
            "rebuilds": stability,
        }
        bands = {m: plotting.t_band(np.array([r["curve"] for r in s])) for m, s in runs.items()}
        band = "band: 95% t-interval over seeds"
        fig = plotting.curves_figure(bands, band, key, threshold, "mean return over agents")
        plotting.save(fig, out_root / f"{key}-curves.png")
        plot_c3rl(runs["c3rl"], key, out_root / f"{key}-c3rl.png")
        print(markdown({key: table[key]}), flush=True)
    table = merged_tables(out_root / "compare.json", table)
    payload = {
        "environment": environment(),
        "quick": quick,
        "seeds": seeds,
        "invocation_seconds": time.perf_counter() - start,
        "tasks_run": tasks,
        **suite_throughput(table),
        "table": table,
    }
    (out_root / "compare.json").write_text(json.dumps(payload, indent=2))
    (out_root / "compare.md").write_text(markdown(table))
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--tasks",
        nargs="*",
        default=None,
        help="TASK-REWARD keys, e.g. pendulum-dense (default: all six)",
    )
    args = parser.parse_args()
    main(args.quick, args.seeds, args.tasks)
