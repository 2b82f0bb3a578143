"""Transportability on the windy pendulum: place held-out environments among a c3rl run's
mechanisms, compare the recommended policy's predicted and actual return with the best trained
policy's, and count episodes to threshold from a warm start vs from scratch.

    python -m benchmarks.transfer [--quick]

Trains (once; reused on rerun) a c3rl run, 20 agents, pendulum dense, under
benchmarks/results/transfer_run/ (git-ignored: it holds checkpoints), then for each held-out
environment: `transfer` with the trained policies' data (the default) and with random actions,
and single-agent runs from the warm start (with and without its mechanism's replay data) and
from scratch, several seeds. Writes results/transfer.json and results/transfer.md.
"""

import argparse
import time

import jax
import numpy as np

from benchmarks.common import RESULTS_DIR, write_json
from benchmarks.compare import THRESHOLDS, episodes_to_threshold, interval

TASK, REWARD = "pendulum", "dense"
GROUP_WIND = (-1.0, 0.0, 1.0)  # the default population's groups (tasks.pendulum_population)


def held_out(quick: bool) -> list[dict]:
    """New environments: inside the groups (group wind, m and l jittered 5% as in training),
    between them and outside them."""
    if quick:
        return [
            {"where": "inside", "group": 2, "params": {"w": 1.0}},
            {"where": "between", "params": {"w": 0.5}},
        ]
    key = jax.random.key(2026)
    rows = []
    for g, wind in enumerate(GROUP_WIND):
        for i in range(2):
            m, length = 1.0 + 0.05 * np.asarray(
                jax.random.normal(jax.random.fold_in(key, 2 * g + i), (2,))
            )
            params = {"w": wind, "m": round(float(m), 3), "l": round(float(length), 3)}
            rows.append({"where": "inside", "group": g, "params": params})
    rows += [{"where": "between", "params": {"w": w}} for w in (-0.5, 0.5)]
    rows += [{"where": "outside", "params": {"w": w}} for w in (-2.0, 2.0)]
    return rows


def trained_run(quick: bool):
    """The c3rl run to transfer from (trained here unless complete)."""
    from c3rl_jax import Results, TrainConfig, train

    out = RESULTS_DIR / ("transfer_run_quick" if quick else "transfer_run")
    config = TrainConfig(
        task=TASK,
        reward=REWARD,
        sharing="c3rl",
        episodes=40 if quick else 100,
        out_dir=str(out),
        checkpoint_every=50,
        progress=False,
        overwrite=True,  # trained again unless complete
    ).resolved()
    done = (out / "results.json").exists() and Results.load(out).returns.shape[1] == config.episodes
    if not done:
        train(config)
    return out, Results.load(out)


def scratch(run_dir, params: dict, episodes: int, seed: int):
    from c3rl_jax.analysis.transfer import new_population, scratch_config
    from c3rl_jax.training import load_run, train

    run = load_run(str(run_dir))
    return train(scratch_config(run, episodes, seed, None, False), new_population(run, params))


def group_component(results, model) -> list[int]:
    """The mixture component holding most of each true group's agents (evaluation only)."""
    labels = model.assignments.argmax(axis=1)
    return [int(np.bincount(labels[results.groups == g]).argmax()) for g in range(len(GROUP_WIND))]


def main(quick: bool = False) -> dict:
    from c3rl_jax.analysis.transfer import load_model, transfer, warm_start

    start = time.perf_counter()
    threshold = THRESHOLDS[(TASK, REWARD)]
    seeds = 1 if quick else 3
    warm_episodes, scratch_episodes = (10, 30) if quick else (30, 60)
    run_dir, results = trained_run(quick)
    model = load_model(run_dir)
    components = group_component(results, model)
    rows = []
    for env in held_out(quick):
        row = dict(env)
        for behaviour in ("policies", "random"):
            placed = transfer(
                run_dir, env["params"], n_transitions=100, evaluate=True, behaviour=behaviour
            )
            actual = placed.actual_returns
            best = float(actual.max())
            row[behaviour] = {
                "posterior": np.round(placed.posterior, 3).tolist(),
                "recommended": placed.recommended,
                "predicted": float(placed.predicted_returns[placed.recommended]),
                "actual": float(actual[placed.recommended]),
                "best": best,
                "mean_policy": float(actual.mean()),
                "worst": float(actual.min()),
                "gap_to_best": (best - float(actual[placed.recommended])) / abs(best),
            }
            if "group" in env:
                row[behaviour]["mass_on_group"] = float(placed.posterior[components[env["group"]]])
            if behaviour == "policies":
                result = placed
        for name, kwargs in (("warm", {}), ("warm_replay", {"mechanism_replay": True})):
            curves = [
                warm_start(
                    run_dir, env["params"], result, warm_episodes, seed=s, progress=False, **kwargs
                ).returns[0]
                for s in range(seeds)
            ]
            row[name] = [episodes_to_threshold(c, threshold) for c in curves]
        curves = [
            scratch(run_dir, env["params"], scratch_episodes, s).returns[0] for s in range(seeds)
        ]
        row["scratch"] = [episodes_to_threshold(c, threshold) for c in curves]
        rows.append(row)
        pol = row["policies"]
        print(
            f"{env['params']}: P(k) {pol['posterior']}, recommended {pol['actual']:.1f}, best "
            f"{pol['best']:.1f}; warm {row['warm']}, replay {row['warm_replay']}, scratch "
            f"{row['scratch']}",
            flush=True,
        )
    payload = {
        "task": f"{TASK}-{REWARD}",
        "threshold": threshold,
        "run_dir": str(run_dir.relative_to(RESULTS_DIR.parent.parent)),
        "trained_rebuild_ari": [r.get("ari") for r in results.extra["rebuilds"]],
        "group_components": components,
        "seeds": seeds,
        "warm_episodes": warm_episodes,
        "scratch_episodes": scratch_episodes,
        "rows": rows,
        "wall_time_s": time.perf_counter() - start,
    }
    name = "transfer_quick" if quick else "transfer"
    write_json(f"{name}.json", payload)
    (RESULTS_DIR / f"{name}.md").write_text(markdown(payload))
    print(markdown(payload))
    return payload


def _episodes(values: list[float]) -> str:
    mean, half = interval(np.array(values))
    reached = int(np.isfinite(values).sum())
    return (
        f"{mean:.1f} ± {half:.1f} ({reached}/{len(values)})"
        if reached
        else f"never (0/{len(values)})"
    )


def markdown(payload: dict) -> str:
    lines = [
        "| new env | where | P(k) (policies' data) | mass on group | rec. predicted "
        "| rec. actual | best | gap | P(k) (random data) | rec. actual (random) | warm "
        "| warm + replay | scratch |",
        "|" + "---|" * 13,
    ]
    for row in payload["rows"]:
        pol, rnd = row["policies"], row["random"]
        params = ", ".join(f"{k}={v:g}" for k, v in row["params"].items())
        mass = f"{pol['mass_on_group']:.2f}" if "mass_on_group" in pol else "-"
        lines.append(
            f"| {params} | {row['where']} | {pol['posterior']} | {mass} | {pol['predicted']:.1f} "
            f"| {pol['actual']:.1f} | {pol['best']:.1f} | {100 * pol['gap_to_best']:.1f}% "
            f"| {rnd['posterior']} | {rnd['actual']:.1f} | {_episodes(row['warm'])} "
            f"| {_episodes(row['warm_replay'])} | {_episodes(row['scratch'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    main(quick=parser.parse_args().quick)
