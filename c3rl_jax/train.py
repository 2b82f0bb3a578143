"""`train(config)`: build the population, run jitted chunks of episodes, collect `Results`."""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from c3rl_jax import replay
from c3rl_jax.agents.ddpg import DDPG
from c3rl_jax.config import TrainConfig
from c3rl_jax.errors import check
from c3rl_jax.population import Population
from c3rl_jax.results import Results
from c3rl_jax.rollout import ChunkInputs, RunState, make_chunk
from c3rl_jax.sharing import fixed_sharing, validate_sharing_matrix
from c3rl_jax.tasks import get_task


def train(
    config: TrainConfig | None = None,
    population: Population | None = None,
    sharing_matrix=None,
) -> Results:
    """Train `config.n_agents` DDPG agents concurrently and return their `Results`.

    population: a `Population` (params with leaves [N], groups [N]); default: the task's own.
    sharing_matrix: P [N, N] for `sharing="custom"` (rows sum to 1).
    With `config.out_dir` set, results are saved there after every chunk.
    """
    start = time.perf_counter()
    config = (config or TrainConfig()).resolved()
    task = get_task(config.task)
    env = task.make_env(config.reward)
    key_pop, key_init, key_run = jax.random.split(jax.random.PRNGKey(config.seed), 3)

    if population is None:
        population = task.make_population(key_pop, config.n_agents)
    check(
        population.n_agents == config.n_agents,
        "population size",
        population.n_agents,
        f"equal to n_agents={config.n_agents}",
    )
    task.validate_params(population.params)
    groups = np.asarray(population.groups)
    sharing = _sharing_matrix(config, groups, sharing_matrix)

    n_agents = config.n_agents
    obs_dim = env.observation_space(env.default_params).shape[0]
    act_dim = env.action_space(env.default_params).shape[0]
    ddpg = DDPG(config.ddpg, obs_dim, act_dim)
    state = RunState(
        agents=ddpg.init(key_init, n_agents),
        buffer=replay.init_buffer(n_agents, config.buffer_size, obs_dim, act_dim),
        key=key_run,
        total_steps=jnp.array(0, jnp.int32),
    )
    inputs = ChunkInputs(population.params, jnp.asarray(sharing), jnp.zeros((n_agents, act_dim)))

    compiled, compile_time = {}, 0.0
    returns, history, run_time = [], [], 0.0
    episode_length = env.default_params.max_steps_in_episode
    bar = tqdm(total=config.episodes, unit="ep", disable=not config.progress, desc=config.task)
    while len(returns) < config.episodes:
        n_episodes = min(config.episodes_per_chunk, config.episodes - len(returns))
        if n_episodes not in compiled:
            t0 = time.perf_counter()
            chunk = make_chunk(env, ddpg, config.ou, config.warmup_steps, n_episodes)
            compiled[n_episodes] = jax.jit(chunk, donate_argnums=0).lower(state, inputs).compile()
            compile_time += time.perf_counter() - t0
        t0 = time.perf_counter()
        state, stats = compiled[n_episodes](state, inputs)
        chunk_returns = np.asarray(stats.returns)  # [E, N]; blocks until the chunk is done
        run_time += time.perf_counter() - t0
        returns.extend(chunk_returns)
        history.extend([sharing] * n_episodes)
        bar.update(n_episodes)
        bar.set_postfix(
            mean_return=f"{chunk_returns[-1].mean():.1f}",
            steps_per_s=f"{len(returns) * episode_length * n_agents / run_time:.0f}",
        )
        results = Results(
            config=dataclasses.asdict(config),
            returns=np.stack(returns, axis=1),
            sharing=np.stack(history),
            groups=groups,
            episode_length=episode_length,
            compile_time=compile_time,
            run_time=run_time,
            wall_time=time.perf_counter() - start,
        )
        if config.out_dir is not None:
            results.save(config.out_dir)
    bar.close()
    return results


def _sharing_matrix(config: TrainConfig, groups: np.ndarray, sharing_matrix) -> np.ndarray:
    if config.sharing == "custom":
        check(
            sharing_matrix is not None,
            "sharing_matrix",
            None,
            'an [N, N] array when sharing="custom"',
        )
        return validate_sharing_matrix(sharing_matrix, config.n_agents)
    check(
        sharing_matrix is None,
        "sharing_matrix",
        "an array",
        f'None unless sharing="custom" (sharing={config.sharing!r})',
    )
    return fixed_sharing(config.sharing, groups)
