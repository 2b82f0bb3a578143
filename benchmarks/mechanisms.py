"""Mechanism inference on RL data: agent ARI of agent_gp, anm_mm and sysid against the true groups.

    python -m benchmarks.mechanisms [--quick] [--seeds 10] [--other-seeds 3] [--only NAME ...]

Two kinds of data, both the transitions a c3rl rebuild sees (`adaptive.recent_transitions`):
- random: the training loop's warm-up, uniform random actions per agent for the task's
  warmup_steps (whole episodes: 1000 steps on every default task), 50 transitions per agent
  drawn among them (the data of a run's first rebuild);
- rebuild: the data of the real rebuilds of a c3rl run with the defaults (agent_gp, 100
  transitions per agent on cart-pole and 50 on the others) at episodes 10 and 20, recorded
  through a registered wrapper of the agent_gp method. agent_gp's figure is
  the run's own rebuild (warm-started from the one before, K by its silhouette rule); anm_mm
  (on the first 20 of each agent's transitions, its default) and sysid are fitted cold on
  the same data.
Every method's latents are clustered three ways: K = the true number of groups, K by BIC over
1..6, K by the silhouette rule over 1..6 (`clustering.fit_gmm`). Populations: each task's
default (3 groups, 7/7/6, dense and sparse) and six others built here (`POPULATIONS`).
Writes benchmarks/results/mechanisms.json and mechanisms.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
import warnings

import jax
import numpy as np

from benchmarks.common import RESULTS_DIR, write_json
from c3rl_jax import TrainConfig, custom_population, get_task, train
from c3rl_jax.causal import adjusted_rand_index, cluster_agents
from c3rl_jax.causal.methods import get_mechanism, register_mechanism
from c3rl_jax.sharing.adaptive import recent_transitions
from c3rl_jax.training import load_run

TASKS = ("ar", "pendulum", "cartpole_swingup")
METHODS = ("agent_gp", "anm_mm", "sysid")
RULES = ("true_k", "bic", "silhouette")
PER_AGENT = 50


def population(task: str, spec: dict, seed: int):
    """A population of `spec`: group sizes and, per parameter, one value per group; 5% jitter
    on the fields the task's default population jitters."""
    base = get_task(task).make_env("dense").default_params
    sizes = spec["sizes"]
    groups = np.repeat(np.arange(len(sizes)), sizes)
    rng = np.random.default_rng(1000 + seed)
    arrays = {}
    for name, values in spec["values"].items():
        arrays[name] = np.asarray(values, np.float32)[groups]
    for name in JITTER[task]:
        value = arrays.get(name, np.full(len(groups), getattr(base, name), np.float32))
        noise = np.clip(1 + 0.05 * rng.normal(size=len(groups)), 0.5, 1.5)
        arrays[name] = (value * noise).astype(np.float32)
    return custom_population(base, arrays, groups=groups)


JITTER = {
    "pendulum": ("m", "l"),
    "ar": ("phi1", "phi2", "beta", "omega"),
    "cartpole_swingup": ("half_length", "masspole", "masscart"),
}
POPULATIONS = {  # name: (task, spec); "default" means the task's own population
    "pendulum unequal 3/5/12": ("pendulum", {"sizes": [3, 5, 12], "values": {"w": [-1, 0, 1]}}),
    "pendulum 2 groups": ("pendulum", {"sizes": [10, 10], "values": {"w": [-1, 1]}}),
    "pendulum 5 groups": (
        "pendulum",
        {"sizes": [4] * 5, "values": {"w": [-2, -1, 0, 1, 2]}},
    ),
    "pendulum mass and length, no wind": (
        "pendulum",
        {"sizes": [7, 7, 6], "values": {"m": [0.5, 1.0, 1.5], "l": [0.7, 1.0, 1.3]}},
    ),
    "cart-pole cart mass": (
        "cartpole_swingup",
        {"sizes": [7, 7, 6], "values": {"masscart": [0.5, 1.0, 2.0]}},
    ),
    "ar target only": ("ar", {"sizes": [7, 7, 6], "values": {"omega": [1.0, -1.0, 0.5]}}),
}


def scores(x, y, ids, groups, key, fits=None) -> dict:
    """method -> rule -> ARI of the agents' clusters (fits: method -> a MechanismFit, fitted
    here when missing)."""
    n_agents, n_true = len(groups), len(np.unique(groups))
    out = {}
    for name in METHODS:
        method = get_mechanism(name)
        if fits is not None and name in fits:
            fit = fits[name]
        elif name == "anm_mm":  # its default 20 transitions per agent (n = 1000 is slow)
            keep = np.concatenate([np.flatnonzero(ids == n)[:20] for n in range(n_agents)])
            fit = method.fit(x[keep], y[keep], ids[keep], n_agents, key, None, {})
        else:
            fit = method.fit(x, y, ids, n_agents, key, None, {})
        out[name] = {}
        for rule in RULES:
            k = n_true if rule == "true_k" else None
            criterion = "bic" if rule == "true_k" else rule
            labels = cluster_agents(
                fit.theta, fit.point_agents, n_agents, k, 6, seed=0, criterion=criterion
            ).agent_labels
            out[name][rule] = adjusted_rand_index(groups, labels)
    return out


def random_data(task: str, reward: str, pop, seed: int, out_dir: str):
    """Random-action transitions of every agent: the training loop's warm-up, no updates."""
    episode = get_task(task).make_env(reward).default_params.max_steps_in_episode
    warmup = TrainConfig(task=task, reward=reward).resolved().warmup_steps
    episodes = max(1, -(-warmup // episode))
    config = TrainConfig(
        task=task,
        reward=reward,
        n_agents=pop.n_agents,
        seed=seed,
        episodes=episodes,
        episodes_per_chunk=episodes,
        warmup_steps=episodes * episode,
        out_dir=out_dir,
        checkpoint_every=episodes,
        progress=False,
    )
    with warnings.catch_warnings():  # "nothing is learned": only the warm-up is wanted
        warnings.simplefilter("ignore", UserWarning)
        train(config, population=pop)
    buffer = load_run(out_dir).state.buffer
    return recent_transitions(buffer, PER_AGENT, episodes * episode, jax.random.PRNGKey(seed))


RECORDED: list = []  # (x, y, ids, fit) of every rebuild of the recording method


def _recording_fit(x, y, agent_ids, n_agents, key, steps, carry):
    fit = get_mechanism("agent_gp").fit(x, y, agent_ids, n_agents, key, steps, carry)
    RECORDED.append((x, y, agent_ids, fit))
    return fit


def rebuild_data(task: str, reward: str, pop, seed: int, episodes: int) -> tuple[list, list]:
    """A c3rl run's rebuild records and the (x, y, ids, fit) each rebuild saw."""
    RECORDED.clear()
    config = TrainConfig(
        task=task,
        reward=reward,
        sharing="c3rl",
        mechanism="agent_gp_recorded",
        n_agents=pop.n_agents,
        seed=seed,
        episodes=episodes,
        progress=False,
    )
    results = train(config, population=pop)
    return results.extra["rebuilds"], list(RECORDED)


def study(task, reward, pop, seed, episodes, at=(10, 20)) -> dict:
    groups = np.asarray(pop.groups)
    key = jax.random.PRNGKey(seed)
    with tempfile.TemporaryDirectory() as tmp:
        x, y, ids = random_data(task, reward, pop, seed, tmp)
    start = time.perf_counter()
    row = {"random": scores(x, y, ids, groups, key)}
    row["random_seconds"] = time.perf_counter() - start
    records, seen = rebuild_data(task, reward, pop, seed, episodes)
    row["rebuild_ari"] = {r["episode"]: r.get("ari") for r in records}
    row["rebuild_k"] = {r["episode"]: r.get("n_clusters") for r in records}
    row["rebuild_seconds"] = [r["seconds"] for r in records if "seconds" in r]
    labels = [r["labels"] for r in records if "labels" in r]
    # stability: agreement of each rebuild's partition with the one before (1: unchanged)
    row["consecutive_ari"] = [
        adjusted_rand_index(a, b) for a, b in zip(labels[:-1], labels[1:], strict=True)
    ]
    fitted = [r for r in records if "ari" in r]
    if len(fitted) != len(seen):  # a fit whose latents the mixture step refused
        return row
    for record, (rx, ry, rids, fit) in zip(fitted, seen, strict=True):
        if record["episode"] in at:
            found = scores(rx, ry, rids, groups, key, fits={"agent_gp": fit})
            found["agent_gp"]["run"] = record["ari"]  # the run's own (warm-started) rebuild
            row[f"ep{record['episode']}"] = found
    return row


def mean_table(rows: list[dict]) -> dict:
    """data kind -> method -> rule -> mean ARI over the rows (seeds)."""
    table = {}
    for kind in ("random", "ep10", "ep20"):
        present = [r[kind] for r in rows if kind in r]
        if present:
            table[kind] = {
                m: {rule: float(np.mean([p[m][rule] for p in present])) for rule in p0}
                for m, p0 in present[0].items()
            }
    consecutive = [a for r in rows for a in r["consecutive_ari"]]
    table["consecutive_ari_mean"] = float(np.mean(consecutive)) if consecutive else None
    table["consecutive_ari_min"] = float(np.min(consecutive)) if consecutive else None
    return table


def markdown(summary: dict) -> str:
    lines = [
        "| population | data | method | K = true | K by BIC | K by silhouette | run's rebuild |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in summary.items():
        for kind in ("random", "ep10", "ep20"):
            for method, by_rule in entry["mean"].get(kind, {}).items():
                run = f"{by_rule['run']:.2f}" if "run" in by_rule else ""
                lines.append(
                    f"| {name} ({entry['seeds']} seeds) | {kind} | {method} | "
                    f"{by_rule['true_k']:.2f} | {by_rule['bic']:.2f} | "
                    f"{by_rule['silhouette']:.2f} | {run} |"
                )
    return "\n".join(lines) + "\n"


def main(
    quick: bool = False, seeds: int = 10, only: list[str] | None = None, other_seeds: int = 3
) -> dict:
    register_mechanism(
        dataclasses.replace(get_mechanism("agent_gp"), name="agent_gp_recorded", fit=_recording_fit)
    )
    episodes = 20
    cases = [(f"{task} dense", task, "dense", None, 1 if quick else seeds) for task in TASKS]
    if not quick:
        cases += [(f"{task} sparse", task, "sparse", None, 3) for task in TASKS]
        cases += [
            (name, task, "dense", spec, other_seeds) for name, (task, spec) in POPULATIONS.items()
        ]
    suffix = "_quick" if quick else ""
    summary = {}
    if only is not None:  # rerun the matching cases, keep the others' saved results
        cases = [case for case in cases if any(part in case[0] for part in only)]
        saved = RESULTS_DIR / f"mechanisms{suffix}.json"
        summary = json.loads(saved.read_text())["summary"] if saved.exists() else {}
    start = time.perf_counter()
    for name, task, reward, spec, n_seeds in cases:
        rows = []
        for seed in range(n_seeds):
            pop = (
                get_task(task).make_population(jax.random.split(jax.random.PRNGKey(seed), 3)[0], 20)
                if spec is None
                else population(task, spec, seed)
            )
            rows.append(study(task, reward, pop, seed, episodes))
            print(f"{name} seed {seed}: rebuild ARI {rows[-1]['rebuild_ari']}", flush=True)
        summary[name] = {"seeds": n_seeds, "mean": mean_table(rows), "rows": rows}
        print(markdown({name: summary[name]}), flush=True)
        payload = {"suite_seconds": time.perf_counter() - start, "summary": summary}
        write_json(f"mechanisms{suffix}.json", payload)  # after every case: nothing lost
        (RESULTS_DIR / f"mechanisms{suffix}.md").write_text(markdown(summary))
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--other-seeds", type=int, default=3, help="seeds of the other populations")
    parser.add_argument(
        "--only", nargs="+", help="rerun only the cases whose name contains one of these"
    )
    args = parser.parse_args()
    main(args.quick, args.seeds, args.only, args.other_seeds)
