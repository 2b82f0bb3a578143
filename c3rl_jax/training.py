"""`train(config)`: build the population, run jitted chunks of episodes, collect `Results`.

Between chunks the host loop checks for divergence, saves results, checkpoints every
`checkpoint_every` episodes, and stops cleanly on SIGINT/SIGTERM (see `interrupts`).
"""

import dataclasses
import shutil
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from c3rl_jax import replay
from c3rl_jax.config import RESUMABLE_CHANGES, TrainConfig
from c3rl_jax.errors import ConfigError, check
from c3rl_jax.exploration import noise_scale
from c3rl_jax.learners import Learner, LearnerState, make_learner
from c3rl_jax.population import Population, broadcast_params
from c3rl_jax.replay import ReplayBuffer
from c3rl_jax.rollout import ChunkInputs, EpisodeStats, RunState, make_chunk
from c3rl_jax.runtime import agent_mesh, compile_cache, host_devices
from c3rl_jax.runtime.checkpoint import Checkpointer, check_compatible
from c3rl_jax.runtime.guards import check_finite
from c3rl_jax.runtime.interrupts import StopRequests, TrainingInterrupted
from c3rl_jax.runtime.memory import check_fits, learner_bytes_per_agent, replay_bytes_per_agent
from c3rl_jax.runtime.metrics import METRICS_FILE, MetricsLog, episode_rows
from c3rl_jax.runtime.results import RESULT_FILES, Results, atomic_write
from c3rl_jax.sharing import get_sharing
from c3rl_jax.sharing.adaptive import MODEL_FILE, rebuild_sharing
from c3rl_jax.tasks import get_task

PROFILED_CHUNKS = 3  # chunks traced by jax.profiler when config.profile_dir is set
# What a run writes into its output folder (a new run refuses a folder holding any of them)
RUN_FILES = (*RESULT_FILES, MODEL_FILE, METRICS_FILE, "tensorboard", "checkpoints")


@dataclasses.dataclass
class _Run:
    """What the host loop carries: the device state and the history so far (host arrays)."""

    state: RunState
    inputs: ChunkInputs
    mesh: jax.sharding.Mesh | None  # None: one device
    groups: np.ndarray  # [N]
    returns: np.ndarray  # [N, E_done]
    sharing_matrices: np.ndarray  # [K, N, N]
    sharing_index: np.ndarray  # [E_done]
    compile_time: float = 0.0
    run_time: float = 0.0
    rebuilds: list = dataclasses.field(default_factory=list)  # records of adaptive rebuilds
    carry: dict = dataclasses.field(default_factory=dict)  # what the next rebuild starts from

    @property
    def episodes_done(self) -> int:
        return self.returns.shape[1]

    def checkpoint_tree(self) -> dict:
        return {
            "state": self.state,
            "env_params": self.inputs.env_params,
            "sharing": self.inputs.sharing,
            "clusters": self.inputs.clusters,
            "groups": self.groups,
            "returns": self.returns,
            "sharing_matrices": self.sharing_matrices,
            "sharing_index": self.sharing_index,
            "carry": self.carry,
        }

    def carry_shapes(self) -> dict:
        """The carry's array shapes and dtypes, for the checkpoint's record (JSON)."""
        return {k: [list(v.shape), str(v.dtype)] for k, v in self.carry.items()}


def train(
    config: TrainConfig | None = None,
    population: Population | None = None,
    sharing_matrix=None,
    resume: str | None = None,
    initial_agents: LearnerState | None = None,
    initial_buffer: ReplayBuffer | None = None,
) -> Results:
    """Train `config.n_agents` agents (`config.learner`) concurrently; return their `Results`.

    population: a `Population` (params with leaves [N], groups [N]); default: the task's own.
    sharing_matrix: P [N, N] for `sharing="custom"` (rows sum to 1).
    resume: a run directory to continue from its latest checkpoint; `config` may then be None
        (the saved one is used) or may differ from it only in `config.RESUMABLE_CHANGES`
        (episodes, progress, checkpoint_every, profile_dir, devices, distributed,
        compile_cache).
    initial_agents, initial_buffer: start from these learners (leaves [N, ...]) and this replay
        buffer ([N, buffer_size, ...]) instead of fresh ones (a warm start; see `transfer`).
    With `config.out_dir` set, results are saved there after every chunk and checkpoints
    every `config.checkpoint_every` episodes.
    """
    start = time.perf_counter()
    if resume is None:
        config = (config or TrainConfig()).resolved()
        run, env, learner = _build(
            config, population, sharing_matrix, initial_agents, initial_buffer
        )
        _claim_output(config)  # after every input is checked: a bad call touches nothing
        checkpointer = None
        if config.out_dir is not None and config.checkpoint_every > 0:
            checkpointer = Checkpointer(config.out_dir)
    else:
        given = (population, sharing_matrix, initial_agents, initial_buffer)
        check(
            all(a is None for a in given),
            "population/sharing_matrix/initial_agents/initial_buffer",
            "given",
            "None when resuming: they come from the checkpoint",
        )
        checkpointer, config, run, env, learner = _from_checkpoint(
            resume, lambda saved: _resumed_config(saved, config, resume)
        )
    compile_cache.enable(config.compile_cache)
    _warn_if_nothing_learns(config, env.default_params.max_steps_in_episode)
    return _loop(config, run, env, learner, checkpointer, start)


def _warn_if_nothing_learns(config: TrainConfig, episode_length: int) -> None:
    steps = config.episodes * episode_length
    if steps <= config.warmup_steps:
        warnings.warn(
            f"episodes x steps per episode = {steps} <= warmup_steps={config.warmup_steps}: "
            "every action is random and nothing is learned; raise episodes or lower "
            "warmup_steps",
            UserWarning,
            stacklevel=3,
        )


def _claim_output(config: TrainConfig) -> None:
    """Refuse an output folder that holds another run's files, or (overwrite) remove them."""
    if config.out_dir is None:
        return
    out = Path(config.out_dir)
    found = [name for name in RUN_FILES if (out / name).exists()]
    if not found:
        return
    if not config.overwrite:
        raise ConfigError(
            f"out_dir={str(out)!r} is invalid: it holds another run ({', '.join(found)}); "
            f"continue it with --resume {out}, or replace it with --overwrite"
        )
    if jax.process_index() == 0:
        for name in found:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def saved_config(run_dir: str) -> TrainConfig:
    """The config of the latest checkpoint in `run_dir`."""
    checkpointer = Checkpointer(run_dir, create=False)
    return TrainConfig.from_dict(checkpointer.meta(checkpointer.latest())["config"])


@dataclasses.dataclass
class SavedRun:
    """A run restored from its latest checkpoint on one device: the config, the environment
    and learner it used, the RunState (agents, replay buffer), env params [N] and the agents'
    true groups [N]."""

    config: TrainConfig
    env: object
    learner: Learner
    state: RunState
    env_params: object
    groups: np.ndarray


def load_run(run_dir: str) -> SavedRun:
    """The latest checkpoint of `run_dir`, restored on one device (CheckpointError if none)."""

    def one_device(saved: dict) -> TrainConfig:
        config = TrainConfig.from_dict(saved)
        return dataclasses.replace(config, progress=False, devices=1, distributed=False).resolved()

    _, config, run, env, learner = _from_checkpoint(run_dir, one_device)
    return SavedRun(config, env, learner, run.state, run.inputs.env_params, run.groups)


def _from_checkpoint(run_dir: str, configure):
    """(checkpointer, config, run, env, learner) of the latest checkpoint in `run_dir`, built
    under `configure(saved config dict) -> TrainConfig`."""
    checkpointer = Checkpointer(run_dir, create=False)
    step = checkpointer.latest()
    meta = checkpointer.meta(step)
    config = configure(meta["config"])
    run, env, learner = _build(config, _template_population(config), None)
    return checkpointer, config, _restore(checkpointer, step, meta, run), env, learner


def _build(
    config: TrainConfig,
    population: Population | None,
    sharing_matrix,
    initial_agents: LearnerState | None = None,
    initial_buffer: ReplayBuffer | None = None,
):
    """A fresh run: population, P, agents and an empty replay buffer (or the initial ones)."""
    if config.distributed:
        agent_mesh.start_distributed()
    task = get_task(config.task)
    env = task.make_env(config.reward)
    n_agents = config.n_agents
    obs_dim = env.observation_space(env.default_params).shape[0]
    act_dim = env.action_space(env.default_params).shape[0]
    learner = make_learner(
        config.learner, config.learner_config, obs_dim, act_dim, config.seed_sampling
    )
    per_agent = replay_bytes_per_agent(config.buffer_size, obs_dim, act_dim)
    per_agent += learner_bytes_per_agent(learner)
    per_agent += 2 * n_agents * 4  # its rows of P and of the P history's first entry
    mesh = agent_mesh.make_mesh(config.devices, n_agents)
    n_devices = 1 if mesh is None else mesh.size
    check_fits(n_agents // n_devices, per_agent, jax.devices()[0])
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
    if config.progress:
        print(
            f"{n_agents} agents x {per_agent / 2**20:.2f} MiB (replay, networks, P) = "
            f"{n_agents * per_agent / 2**30:.2f} GiB; {_placement(config, n_devices)}",
            file=sys.stderr,
        )
    agents = learner.init(key_init, n_agents)
    buffer = replay.init_buffer(n_agents, config.buffer_size, obs_dim, act_dim)
    state = RunState(
        agents=_initial("initial_agents", initial_agents, agents),
        buffer=_initial("initial_buffer", initial_buffer, buffer),
        key=key_run,
        total_steps=jnp.array(0, jnp.int32),
    )
    clusters = jnp.zeros((n_agents,), jnp.int32)  # one cluster until the first rebuild
    inputs = ChunkInputs(population.params, jnp.asarray(sharing), clusters)
    run = _Run(
        state=state,
        inputs=inputs,
        mesh=mesh,
        groups=groups,
        returns=np.zeros((n_agents, 0), np.float32),
        sharing_matrices=sharing[None],
        sharing_index=np.zeros((0,), np.int32),
    )
    return _placed(run), env, learner


def _placement(config: TrainConfig, n_devices: int) -> str:
    """Where the agent axis runs, and why, for the start of a run."""
    platform = jax.devices()[0].platform
    where = f"agent axis over {n_devices} {platform} device(s)"
    if platform == "cpu" and config.devices is None:
        where += (
            f" of {jax.device_count()} (one host device per core, {host_devices.ENV}=off for one)"
        )
    return where


def _initial(name: str, given, fresh):
    """`given` if it has the structure, shapes and dtypes of `fresh`, else a ConfigError."""
    if given is None:
        return fresh
    want = jax.tree.map(lambda a: (a.shape, a.dtype), fresh)
    got = jax.tree.map(lambda a: (jnp.shape(a), jnp.asarray(a).dtype), given)
    check(
        jax.tree.structure(given) == jax.tree.structure(fresh) and got == want,
        name,
        "a tree of other shapes",
        f"the structure, shapes and dtypes of this config's fresh one, {want}",
    )
    return jax.tree.map(jnp.array, given)  # a copy: the chunk donates (deletes) its input


def _placed(run: _Run) -> _Run:
    """The run's device arrays on its mesh, by the rule of `agent_mesh.place_agents`."""
    n_agents = len(run.groups)
    state = agent_mesh.place_agents(run.state, run.mesh, n_agents)
    inputs = agent_mesh.place_agents(run.inputs, run.mesh, n_agents)
    return dataclasses.replace(run, state=state, inputs=inputs)


def _loop(config: TrainConfig, run: _Run, env, learner: Learner, checkpointer, start: float):
    """Chunks until the run is done or stopped; after each: rebuild P when due, metrics,
    progress, checkpoint and results."""
    episode_length = env.default_params.max_steps_in_episode
    primary = jax.process_index() == 0  # the process that writes files
    chunks = _Chunks(config, env, learner)
    log = MetricsLog(config, config.n_agents, run.episodes_done, primary)
    bar = tqdm(
        total=config.episodes,
        initial=run.episodes_done,
        unit="ep",
        disable=not config.progress,
        desc=f"{config.task} {config.sharing}",
    )
    last_checkpoint = run.episodes_done
    with StopRequests() as stop:
        while run.episodes_done < config.episodes and stop.received is None:
            first, used = run.episodes_done, run.sharing_matrices[-1]
            stats, seconds = chunks.run(run, _chunk_length(config, first))
            rebuild = _rebuild(config, run, episode_length) if _rebuild_due(config, run) else None
            steps_per_s = stats.returns.size * episode_length / seconds
            scales = [noise_scale(config.explore, e) for e in range(first, run.episodes_done)]
            log.write(episode_rows(first, *stats, scales, used, steps_per_s, rebuild))
            bar.update(run.episodes_done - first)
            bar.set_postfix(
                mean_return=f"{stats.returns[-1].mean():.1f}", steps_per_s=f"{steps_per_s:.0f}"
            )
            results = _results(config, run, episode_length, start)
            due = run.episodes_done - last_checkpoint >= config.checkpoint_every
            finished = run.episodes_done == config.episodes or stop.received is not None
            if checkpointer is not None and (due or finished):
                _checkpoint(checkpointer, run, results)
                last_checkpoint = run.episodes_done
            if config.out_dir is not None and primary:
                results.save(config.out_dir)
    bar.close()
    log.close()
    results = _results(config, run, episode_length, start)
    if stop.received is not None and run.episodes_done < config.episodes:
        raise TrainingInterrupted(
            _interrupted_message(config, run, checkpointer, stop.received), results
        )
    return results


def _checkpoint(checkpointer: Checkpointer, run: _Run, results: Results) -> None:
    meta = {
        **results.meta(),
        "n_sharing_matrices": len(run.sharing_matrices),
        "carry_shapes": run.carry_shapes(),
    }
    checkpointer.save(run.episodes_done, run.checkpoint_tree(), meta)


def _results(config: TrainConfig, run: _Run, episode_length: int, start: float) -> Results:
    return Results(
        config=dataclasses.asdict(config),
        returns=run.returns,
        sharing_matrices=run.sharing_matrices,
        sharing_index=run.sharing_index,
        groups=run.groups,
        episode_length=episode_length,
        compile_time=run.compile_time,
        run_time=run.run_time,
        wall_time=time.perf_counter() - start,
        extra={"rebuilds": run.rebuilds},
    )


class _Chunks:
    """The run's jitted chunks, compiled once per length; the first PROFILED_CHUNKS traced
    when config.profile_dir is set."""

    def __init__(self, config: TrainConfig, env, learner: Learner):
        self.config, self.env, self.learner = config, env, learner
        self.compiled = {}
        self.ran = 0

    def run(self, run: _Run, n_episodes: int) -> tuple[EpisodeStats, float]:
        """Run the next `n_episodes` of `run` (its state, history and timings updated); the
        chunk's stats (host arrays [E, N]) and its seconds. DivergenceError if non-finite."""
        config = self.config
        if n_episodes not in self.compiled:
            t0 = time.perf_counter()
            chunk = make_chunk(
                self.env, self.learner, config.explore, config.warmup_steps, n_episodes, run.mesh
            )
            lowered = jax.jit(chunk, donate_argnums=0).lower(run.state, run.inputs)
            self.compiled[n_episodes] = lowered.compile()
            run.compile_time += time.perf_counter() - t0
        profiling = config.profile_dir is not None and self.ran < PROFILED_CHUNKS
        if profiling and self.ran == 0:
            jax.profiler.start_trace(config.profile_dir, create_perfetto_trace=True)
        t0 = time.perf_counter()
        state, stats, params_finite = self.compiled[n_episodes](run.state, run.inputs)
        stats, params_finite = agent_mesh.to_host((stats, params_finite))  # waits for it
        seconds = time.perf_counter() - t0
        self.ran += 1
        last = run.episodes_done + n_episodes >= config.episodes
        if profiling and (self.ran == PROFILED_CHUNKS or last):
            jax.profiler.stop_trace()
        check_finite(run.episodes_done, stats.returns, stats.critic_loss, params_finite)
        run.state, run.run_time = state, run.run_time + seconds
        run.returns = np.concatenate([run.returns, stats.returns.T], axis=1)
        index = np.full(n_episodes, len(run.sharing_matrices) - 1, np.int32)
        run.sharing_index = np.concatenate([run.sharing_index, index])
        return stats, seconds


def _rebuild_due(config: TrainConfig, run: _Run) -> bool:
    return get_sharing(config.sharing).rebuilt and run.episodes_done % config.rebuild_every == 0


def _chunk_length(config: TrainConfig, done: int) -> int:
    """Episodes in the next chunk: up to episodes_per_chunk, ending at the next rebuild."""
    n = min(config.episodes_per_chunk, config.episodes - done)
    if get_sharing(config.sharing).rebuilt:
        n = min(n, config.rebuild_every - done % config.rebuild_every)
    return n


def _rebuild(config: TrainConfig, run: _Run, episode_length: int) -> dict:
    """Refit the sharing matrix from recent data (host side); P goes back in as an array.
    Returns the rebuild's record (also appended to run.rebuilds)."""
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), run.episodes_done)
    rebuild = rebuild_sharing(
        run.state.buffer,
        config,
        key,
        run.groups,
        np.asarray(agent_mesh.to_host(run.inputs.clusters)),
        run.carry,
        run.episodes_done,
        window=run.state.buffer.capacity
        if config.rebuild_window is None
        else config.rebuild_window * episode_length,
    )
    if rebuild is None:
        run.rebuilds.append({"episode": run.episodes_done, "failed": True})
        return run.rebuilds[-1]
    run.rebuilds.append(rebuild.record)
    run.carry = rebuild.carry
    if config.out_dir is not None and jax.process_index() == 0:
        Path(config.out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write(Path(config.out_dir) / MODEL_FILE, rebuild.model.save)
    inputs = run.inputs._replace(
        sharing=jnp.asarray(rebuild.sharing), clusters=jnp.asarray(rebuild.labels, jnp.int32)
    )
    run.inputs = agent_mesh.place_agents(inputs, run.mesh, len(run.groups))
    run.sharing_matrices = np.concatenate([run.sharing_matrices, rebuild.sharing[None]])
    return rebuild.record


def _interrupted_message(config, run, checkpointer, signal_name: str) -> str:
    done = f"{signal_name}: stopped after episode {run.episodes_done} of {config.episodes}"
    if checkpointer is None:
        return f"{done}; nothing to resume from (no out_dir or checkpoint_every=0)"
    return f"{done}; resume with: c3rl train --resume {config.out_dir}"


def _resumed_config(saved: dict, requested: TrainConfig | None, run_dir: str) -> TrainConfig:
    config = TrainConfig.from_dict(saved)
    if requested is not None:
        requested = requested.resolved()
        check_compatible(dataclasses.asdict(config), dataclasses.asdict(requested))
        changes = {name: getattr(requested, name) for name in RESUMABLE_CHANGES}
        config = dataclasses.replace(config, **changes)
    return dataclasses.replace(config, out_dir=str(run_dir)).resolved()


def _template_population(config: TrainConfig) -> Population:
    """Shapes and dtypes of any population of this task (the values come from a checkpoint)."""
    env = get_task(config.task).make_env(config.reward)
    params = broadcast_params(env.default_params, config.n_agents, {})
    return Population(params, jnp.zeros((config.n_agents,), jnp.int32))


def _restore(checkpointer: Checkpointer, step: int, meta: dict, run: _Run) -> _Run:
    n_agents = run.groups.shape[0]
    n_matrices = int(meta["n_sharing_matrices"])
    template = dataclasses.replace(
        run,
        returns=np.zeros((n_agents, step), np.float32),
        sharing_matrices=np.zeros((n_matrices, n_agents, n_agents), np.float32),
        sharing_index=np.zeros((step,), np.int32),
        carry={
            k: np.zeros(shape, dtype) for k, (shape, dtype) in meta.get("carry_shapes", {}).items()
        },
    ).checkpoint_tree()
    if "carry_shapes" not in meta:  # saved before rebuilds carried state
        del template["carry"]
    tree = checkpointer.restore(step, template)
    restored = _Run(
        state=tree["state"],
        inputs=ChunkInputs(tree["env_params"], tree["sharing"], tree["clusters"]),
        mesh=run.mesh,
        groups=np.asarray(tree["groups"]),
        returns=np.asarray(tree["returns"]),
        sharing_matrices=np.asarray(tree["sharing_matrices"]),
        sharing_index=np.asarray(tree["sharing_index"]),
        compile_time=meta["compile_time"],
        run_time=meta["run_time"],
        rebuilds=meta["extra"]["rebuilds"],
        carry={k: np.asarray(v) for k, v in tree.get("carry", {}).items()},
    )
    return _placed(restored)


def _sharing_matrix(config: TrainConfig, groups: np.ndarray, sharing_matrix) -> np.ndarray:
    """The run's first P [N, N] from its sharing method (and the user's matrix if it takes one)."""
    method = get_sharing(config.sharing)
    if not method.takes_matrix:
        check(
            sharing_matrix is None,
            "sharing_matrix",
            "an array",
            f"None unless the sharing method takes one (sharing={config.sharing!r})",
        )
    return method.initial(config.n_agents, groups, sharing_matrix)
