"""Every task and reward mode: a uniform random policy against individual DDPG.

For each (task, reward) and seed: the task's default population of 20 agents built from the
seed; the mean return of a random policy (actions uniform in [-1, 1], scaled to the action
space, through the environment's own reset and step) over RANDOM_EPISODES episodes; and
individual DDPG (sharing="individual", the task's default settings and episode budget) on the
same population, scored as the mean over agents of the mean return of its last 10 episodes.
Results: benchmarks/results/tasks.json and the markdown table benchmarks/results/tasks.md
(tasks_quick.json and tasks_quick.md in quick mode).

    python -m benchmarks.tasks [--quick]     # quick: 2 episodes, 1 seed (a smoke test)
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS_DIR, write_json

CASES = (
    ("ar", "dense"),
    ("ar", "sparse"),
    ("cartpole_swingup", "dense"),
    ("cartpole_swingup", "sparse"),
)
N_AGENTS = 20
SEEDS = (0, 1, 2)
RANDOM_EPISODES = 10
LAST = 10  # DDPG is scored on the mean return of its last LAST episodes


def random_policy_returns(env, population, key: jax.Array, episodes: int) -> np.ndarray:
    """[episodes, N] returns of uniform random actions in every agent's environment."""
    n_agents = population.n_agents
    n_steps = env.default_params.max_steps_in_episode
    act_dim = env.action_space(env.default_params).shape[0]
    high = jax.vmap(lambda p: jnp.broadcast_to(env.action_space(p).high, (act_dim,)))(
        population.params
    )

    @jax.jit
    def episode(key):
        k_reset, k_steps = jax.random.split(key)
        _, state = jax.vmap(env.reset_env)(jax.random.split(k_reset, n_agents), population.params)

        def step(carry, k):
            state, ret = carry
            k_act, k_env = jax.random.split(k)
            action = jax.random.uniform(k_act, (n_agents, act_dim), minval=-1.0, maxval=1.0)
            _, state, reward, _, _ = jax.vmap(env.step_env)(
                jax.random.split(k_env, n_agents), state, action * high, population.params
            )
            return (state, ret + reward), None

        (_, ret), _ = jax.lax.scan(
            step, (state, jnp.zeros((n_agents,))), jax.random.split(k_steps, n_steps)
        )
        return ret

    return np.stack([np.asarray(episode(k)) for k in jax.random.split(key, episodes)])


def _spread(values) -> dict:
    values = np.asarray(values, np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "per_seed": values.tolist(),
    }


def run_case(name: str, reward: str, seeds, episodes: int | None, random_episodes: int) -> dict:
    from c3rl_jax import TrainConfig, get_task, train

    task = get_task(name)
    env = task.make_env(reward)
    random_means, ddpg_means, group_means, walls = [], [], [], []
    config = None
    for seed in seeds:
        population = task.make_population(jax.random.PRNGKey(seed), N_AGENTS)
        rand = random_policy_returns(
            env, population, jax.random.PRNGKey(10_000 + seed), random_episodes
        )
        random_means.append(rand.mean())
        start = time.perf_counter()
        results = train(
            TrainConfig(
                task=name,
                reward=reward,
                n_agents=N_AGENTS,
                seed=seed,
                sharing="individual",
                episodes=episodes,
                progress=False,
            ),
            population=population,
        )
        walls.append(time.perf_counter() - start)
        config = results.config
        last = results.returns[:, -LAST:].mean(axis=1)  # [N]
        ddpg_means.append(last.mean())
        group_means.append([float(g["mean"]) for g in results.group_summary(LAST)])
        print(
            f"{name:>16} {reward:>6} seed {seed}: random {rand.mean():8.2f}, "
            f"DDPG last {LAST} {last.mean():8.2f} (agents {last.min():.1f} to {last.max():.1f}), "
            f"{walls[-1]:.0f} s",
            flush=True,
        )
    random_stats, ddpg_stats = _spread(random_means), _spread(ddpg_means)
    return {
        "task": name,
        "reward": reward,
        "episode_length": env.default_params.max_steps_in_episode,
        "episodes": config["episodes"],
        "settings": {
            k: config[k]
            for k in (
                "hidden",
                "actor_lr",
                "critic_lr",
                "gamma",
                "tau",
                "batch_size",
                "warmup_steps",
                "ou_sigma",
            )
        },
        "seeds": list(seeds),
        "random_policy": random_stats,
        "ddpg_individual": ddpg_stats,
        "ddpg_group_means": group_means,
        "ddpg_above_random_every_seed": bool(ddpg_stats["min"] > random_stats["max"]),
        "train_wall_time_s": float(np.sum(walls)),
    }


def markdown(rows: list[dict], command: str, wall_time: float, random_episodes: int) -> str:
    lines = [
        f"Individual DDPG, {N_AGENTS} agents, the task's default population and episode budget; "
        f"DDPG: mean over agents of the mean return of the last {LAST} episodes; random: uniform "
        f"actions, {random_episodes} episodes on the same population. Mean +- std over seeds.",
        "",
        "| task | reward | steps/episode | episodes | random policy | individual DDPG | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rand, ddpg = row["random_policy"], row["ddpg_individual"]
        per_seed = ", ".join(f"{v:.1f}" for v in ddpg["per_seed"])
        lines.append(
            f"| {row['task']} | {row['reward']} | {row['episode_length']} | {row['episodes']} "
            f"| {rand['mean']:.1f} +- {rand['std']:.1f} | {ddpg['mean']:.1f} +- {ddpg['std']:.1f} "
            f"| {per_seed} |"
        )
    lines += ["", f"Produced by `{command}` in {wall_time / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main(quick: bool = False) -> dict:
    start = time.perf_counter()
    seeds = SEEDS[:1] if quick else SEEDS
    episodes = 2 if quick else None
    random_episodes = 2 if quick else RANDOM_EPISODES
    rows = [run_case(name, reward, seeds, episodes, random_episodes) for name, reward in CASES]
    wall_time = time.perf_counter() - start
    command = "python -m benchmarks.tasks" + (" --quick" if quick else "")
    payload = {
        "quick": quick,
        "command": command,
        "n_agents": N_AGENTS,
        "last_episodes": LAST,
        "random_episodes": random_episodes,
        "wall_time_s": wall_time,
        "rows": rows,
    }
    name = "tasks_quick" if quick else "tasks"  # a smoke test never overwrites the real table
    write_json(f"{name}.json", payload)
    table = markdown(rows, command, wall_time, random_episodes)
    (RESULTS_DIR / f"{name}.md").write_text(table)
    print(table)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
