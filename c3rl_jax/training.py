"""`train(config)`: build the population, run jitted chunks of episodes, collect `Results`.

Between chunks the host loop checks for divergence, saves results, checkpoints every
`checkpoint_every` episodes, and stops cleanly on SIGINT/SIGTERM (see `interrupts`).
With `seeds` S > 1 the S replicas step in one program (`runtime.replicas`); each keeps its
own host record (`_Run`) and is saved as the single run with its seed would be.
"""

import dataclasses
import json
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from c3rl_jax import replay
from c3rl_jax.config import RESUMABLE_CHANGES, TrainConfig
from c3rl_jax.errors import ConfigError, DivergenceError, check
from c3rl_jax.exploration import noise_scale
from c3rl_jax.learners import Learner, LearnerState, make_learner
from c3rl_jax.population import Population, broadcast_params
from c3rl_jax.replay import ReplayBuffer
from c3rl_jax.rollout import ChunkInputs, EpisodeStats, RunState, make_chunk
from c3rl_jax.runtime import agent_mesh, compile_cache, host_devices, replicas
from c3rl_jax.runtime.checkpoint import Checkpointer, check_compatible
from c3rl_jax.runtime.guards import check_finite
from c3rl_jax.runtime.interrupts import StopRequests, TrainingInterrupted
from c3rl_jax.runtime.memory import check_fits, learner_bytes_per_agent, replay_bytes_per_agent
from c3rl_jax.runtime.metrics import METRICS_FILE, MetricsLog, episode_rows
from c3rl_jax.runtime.results import RESULT_FILES, Results, atomic_write
from c3rl_jax.sharing import get_sharing
from c3rl_jax.sharing.adaptive import (
    MODEL_FILE,
    RebuildInput,
    precompile_draws,
    precompile_fit,
    rebuild_sharings,
)
from c3rl_jax.tasks import env_dims, get_task

PROFILED_CHUNKS = 3  # chunks traced by jax.profiler when config.profile_dir is set
# What a run writes into its output folder (a new run refuses a folder holding any of them)
RUN_FILES = (*RESULT_FILES, MODEL_FILE, METRICS_FILE, "tensorboard", "checkpoints")
REPLICAS_FILE = "replicas.json"  # a multi-seed run's folder: its config and replica folders


@dataclasses.dataclass
class _Run:
    """One run's host side (or one replica's of a multi-seed run): its config, the agents'
    true groups and the history so far (host arrays)."""

    config: TrainConfig
    groups: np.ndarray  # [N]
    returns: np.ndarray  # [N, E_done]
    sharing_matrices: np.ndarray  # [K, N, N]
    sharing_index: np.ndarray  # [E_done]
    compile_time: float = 0.0
    run_time: float = 0.0
    rebuilds: list = dataclasses.field(default_factory=list)  # records of adaptive rebuilds
    carry: dict = dataclasses.field(default_factory=dict)  # what the next rebuild starts from
    checkpointer: Checkpointer | None = None

    @property
    def episodes_done(self) -> int:
        return self.returns.shape[1]

    def checkpoint_tree(self, state: RunState, inputs: ChunkInputs) -> dict:
        return {
            "state": state,
            "env_params": inputs.env_params,
            "sharing": inputs.sharing,
            "clusters": inputs.clusters,
            "groups": self.groups,
            "returns": self.returns,
            "sharing_matrices": self.sharing_matrices,
            "sharing_index": self.sharing_index,
            "carry": self.carry,
        }

    def carry_shapes(self) -> dict:
        """The carry's array shapes and dtypes, for the checkpoint's record (JSON)."""
        return {k: [list(v.shape), str(v.dtype)] for k, v in self.carry.items()}

    def record(self, returns: np.ndarray, seconds: float) -> None:
        """A chunk's returns [E, N], run with the current P, in `seconds`."""
        self.run_time += seconds
        self.returns = np.concatenate([self.returns, returns.T], axis=1)
        index = np.full(returns.shape[0], len(self.sharing_matrices) - 1, np.int32)
        self.sharing_index = np.concatenate([self.sharing_index, index])


@dataclasses.dataclass
class _Program:
    """The device side, what the chunks step: one run's RunState and ChunkInputs, or with
    `n_replicas` those of the replicas stacked (`runtime.replicas`; the last one repeated to
    fill the devices), placed on `mesh` (split by agent for one run, by replica for several)."""

    state: RunState
    inputs: ChunkInputs
    mesh: jax.sharding.Mesh | None  # None: one device
    n_replicas: int | None = None  # None: one run, not stacked

    def of(self, r: int, tree):
        """Replica r's part of `tree` (one of the program's trees; itself for one run)."""
        return tree if self.n_replicas is None else replicas.replica(tree, r)

    def placed(self, tree):
        """`tree` on the mesh by the rule of `agent_mesh.place_agents`."""
        leading = self.n_replicas or jax.tree.leaves(self.inputs.clusters)[0].shape[0]
        return agent_mesh.place_agents(tree, self.mesh, leading)

    def set_sharing(self, r: int, sharing: np.ndarray, clusters: np.ndarray) -> None:
        """Replica r's P [N, N] and cluster labels [N] for the next chunks."""
        # device_put: a jnp.asarray of host data compiles a program per shape
        sharing = jax.device_put(np.asarray(sharing, np.float32))
        clusters = jax.device_put(np.asarray(clusters, np.int32))
        if self.n_replicas is not None:
            sharing = self.inputs.sharing.at[r].set(sharing)
            clusters = self.inputs.clusters.at[r].set(clusters)
        self.inputs = self.placed(self.inputs._replace(sharing=sharing, clusters=clusters))


def train(
    config: TrainConfig | None = None,
    population: Population | list[Population] | None = None,
    sharing_matrix=None,
    resume: str | None = None,
    initial_agents: LearnerState | None = None,
    initial_buffer: ReplayBuffer | None = None,
) -> Results | list[Results]:
    """Train `config.n_agents` agents (`config.learner`) concurrently; return their `Results`
    (with `config.seeds` S > 1: a list, replica r being the run with seed `config.seed + r`).

    population: a `Population` (params with leaves [N], groups [N]); default: the task's own
        (each replica's from its seed); a given one is every replica's, or a list of S, one
        per replica.
    sharing_matrix: P [N, N] for `sharing="custom"` (rows sum to 1).
    resume: a run directory to continue from its latest checkpoint; `config` may then be None
        (the saved one is used) or may differ from it only in `config.RESUMABLE_CHANGES`
        (episodes, progress, checkpoint_every, profile_dir, devices, distributed,
        compile_cache).
    initial_agents, initial_buffer: start from these learners (leaves [N, ...]) and this replay
        buffer ([N, buffer_size, ...]) instead of fresh ones (a warm start; see `transfer`;
        one run only).
    With `config.out_dir` set, results are saved there after every chunk and checkpoints
    every `config.checkpoint_every` episodes (a multi-seed run: replica r in OUT/sSEED_r,
    as the single run would be, beside OUT/replicas.json).
    """
    start = time.perf_counter()
    if resume is None:
        config = (config or TrainConfig()).resolved()
        fit_compiling = _precompile_fit(config)  # from now: building the run takes seconds
        runs, program, env, learner = _build(
            config, population, sharing_matrix, initial_agents, initial_buffer
        )
        _claim_output(config, runs)  # after every input is checked: a bad call touches nothing
        if config.out_dir is not None and config.checkpoint_every > 0:
            for run in runs:
                run.checkpointer = Checkpointer(run.config.out_dir)
        if config.seeds > 1 and config.out_dir is not None and jax.process_index() == 0:
            _write_replicas(config, runs)
    else:
        fit_compiling = None  # the config is in the checkpoint: `_loop` starts it
        given = (population, sharing_matrix, initial_agents, initial_buffer)
        check(
            all(a is None for a in given),
            "population/sharing_matrix/initial_agents/initial_buffer",
            "given",
            "None when resuming: they come from the checkpoint",
        )
        config, runs, program, env, learner = _from_checkpoint(
            resume, lambda saved: _resumed_config(saved, config, resume)
        )
    _warn_if_nothing_learns(config, env.default_params.max_steps_in_episode)
    results = _loop(config, runs, program, env, learner, start, fit_compiling)
    return results if config.seeds > 1 else results[0]


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


def _claim_output(config: TrainConfig, runs: list[_Run]) -> None:
    """Refuse an output folder that holds another run's files, or (overwrite) remove them."""
    if config.out_dir is None:
        return
    out = Path(config.out_dir)
    found = [out / name for name in (*RUN_FILES, REPLICAS_FILE) if (out / name).exists()]
    if config.seeds > 1:
        for run in runs:
            folder = Path(run.config.out_dir)
            if any((folder / name).exists() for name in RUN_FILES):
                found.append(folder)
    if not found:
        return
    if not config.overwrite:
        names = ", ".join(str(path.relative_to(out)) for path in found)
        raise ConfigError(
            f"out_dir={str(out)!r} is invalid: it holds another run ({names}); "
            f"continue it with --resume {out}, or replace it with --overwrite"
        )
    if jax.process_index() == 0:
        for path in found:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _write_replicas(config: TrainConfig, runs: list[_Run]) -> None:
    """OUT/replicas.json: the multi-seed run's config and its replicas' folders."""
    folders = [str(Path(run.config.out_dir).relative_to(config.out_dir)) for run in runs]
    record = {"config": dataclasses.asdict(config), "replicas": folders}
    Path(config.out_dir).mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1).encode()
    atomic_write(Path(config.out_dir) / REPLICAS_FILE, lambda f: f.write(text))


def _replicas_record(run_dir: str) -> dict | None:
    """The content of run_dir/replicas.json, or None for a single run's folder."""
    path = Path(run_dir) / REPLICAS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def saved_config(run_dir: str) -> TrainConfig:
    """The config of the run in `run_dir` (of its latest checkpoint; a multi-seed run's own)."""
    record = _replicas_record(run_dir)
    if record is not None:
        return TrainConfig.from_dict(record["config"])
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
    """The latest checkpoint of `run_dir`, restored on one device (CheckpointError if none;
    a multi-seed run's folder: ConfigError naming its replicas' folders, to load one by one)."""
    record = _replicas_record(run_dir)
    if record is not None:
        folders = ", ".join(str(Path(run_dir) / f) for f in record["replicas"])
        raise ConfigError(
            f"run directory={str(run_dir)!r} is invalid here: it holds the replicas of a "
            f"multi-seed run; load one of them: {folders}"
        )

    def one_device(saved: dict) -> TrainConfig:
        config = TrainConfig.from_dict(saved)
        return dataclasses.replace(config, progress=False, devices=1, distributed=False).resolved()

    _, runs, program, env, learner = _from_checkpoint(run_dir, one_device)
    return SavedRun(
        runs[0].config, env, learner, program.state, program.inputs.env_params, runs[0].groups
    )


def _from_checkpoint(run_dir: str, configure):
    """(config, runs, program, env, learner) of the latest checkpoint in `run_dir` (of every
    replica's, for a multi-seed run), built under `configure(saved config dict) ->
    TrainConfig`."""
    record = _replicas_record(run_dir)
    if record is None:
        checkpointer = Checkpointer(run_dir, create=False)
        config = configure(checkpointer.meta(checkpointer.latest())["config"])
    else:
        config = configure(record["config"])
    runs, program, env, learner = _build(config, _template_population(config), None)
    if record is not None:
        for run in runs:
            run.checkpointer = Checkpointer(run.config.out_dir, create=False)
    else:
        runs[0].checkpointer = checkpointer
    # Replicas are checkpointed one after another: a kill between them leaves some a
    # checkpoint ahead, so all continue from the latest one they share.
    step = min(run.checkpointer.latest() for run in runs)
    for run in runs:
        run.checkpointer.drop_after(step)
    restored = [_restore(run, step, program, r) for r, run in enumerate(runs)]
    runs = [run for run, _, _ in restored]
    program = _program([(s, i) for _, s, i in restored], program.mesh, program.n_replicas)
    return config, runs, program, env, learner


def _build(
    config: TrainConfig,
    population: Population | None,
    sharing_matrix,
    initial_agents: LearnerState | None = None,
    initial_buffer: ReplayBuffer | None = None,
):
    """A fresh run's (runs, program, env, learner): per run (replica) its population, P,
    agents and an empty replay buffer (or the initial ones)."""
    compile_cache.enable(config.compile_cache)  # before the first program (the agents' init)
    if config.distributed:
        agent_mesh.start_distributed()
    task = get_task(config.task)
    env = task.make_env(config.reward)
    n_agents, n_replicas = config.n_agents, config.seeds
    obs_dim, act_dim = env_dims(env)
    learner = make_learner(
        config.learner, config.learner_config, obs_dim, act_dim, config.seed_sampling
    )
    per_agent = replay_bytes_per_agent(config.buffer_size, obs_dim, act_dim)
    per_agent += learner_bytes_per_agent(learner)
    per_agent += 2 * n_agents * 4  # its rows of P and of the P history's first entry
    if n_replicas == 1:
        mesh, stacked = agent_mesh.make_mesh(config.devices, n_agents), None
        configs = [config]
    else:
        check(
            initial_agents is None and initial_buffer is None,
            "initial_agents/initial_buffer",
            "given",
            f"None when seeds > 1 (seeds={n_replicas}: every replica starts fresh)",
        )
        devices, stacked = replicas.layout(n_replicas, config.devices, len(jax.devices()))
        mesh = agent_mesh.make_mesh(devices, stacked, "seeds")
        configs = [config.replica(r) for r in range(n_replicas)]
    n_devices = 1 if mesh is None else mesh.size
    total = (stacked or 1) * n_agents
    check_fits(total // n_devices, per_agent, jax.devices()[0])
    populations = population if isinstance(population, list) else [population] * n_replicas
    check(
        len(populations) == n_replicas,
        "population",
        f"a list of {len(populations)}",
        f"one Population, or a list of one per replica (seeds={n_replicas})",
    )
    built = [
        _fresh(c, task, learner, pop, sharing_matrix, initial_agents, initial_buffer)
        for c, pop in zip(configs, populations, strict=True)
    ]
    if config.progress:  # once every input is checked
        print(
            f"{total} agents x {per_agent / 2**20:.2f} MiB (replay, networks, P) = "
            f"{total * per_agent / 2**30:.2f} GiB; {_placement(config, n_devices, stacked)}",
            file=sys.stderr,
        )
    runs = [run for run, _, _ in built]
    program = _program([(s, i) for _, s, i in built], mesh, stacked)
    return runs, program, env, learner


def _program(parts: list[tuple[RunState, ChunkInputs]], mesh, stacked: int | None) -> _Program:
    """The program of the runs' (state, inputs): one run's, or the replicas' stacked (the
    last repeated up to `stacked`), placed on `mesh`."""
    if stacked is None:
        program = _Program(*parts[0], mesh)
    else:
        parts = parts + [parts[-1]] * (stacked - len(parts))
        state = replicas.stack([state for state, _ in parts])
        inputs = replicas.stack([inputs for _, inputs in parts])
        program = _Program(state, inputs, mesh, stacked)
    program.state, program.inputs = program.placed(program.state), program.placed(program.inputs)
    return program


def _fresh(config, task, learner, population, sharing_matrix, initial_agents, initial_buffer):
    """(host record, RunState, ChunkInputs) of one new run with `config.seed`."""
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
    agents = learner.init(key_init, config.n_agents)
    buffer = replay.init_buffer(
        config.n_agents, config.buffer_size, learner.obs_dim, learner.act_dim
    )
    state = RunState(
        agents=_initial("initial_agents", initial_agents, agents),
        buffer=_initial("initial_buffer", initial_buffer, buffer),
        key=key_run,
        total_steps=jnp.array(0, jnp.int32),
    )
    clusters = jnp.zeros((config.n_agents,), jnp.int32)  # one cluster until the first rebuild
    inputs = ChunkInputs(population.params, jnp.asarray(sharing), clusters)
    run = _Run(
        config=config,
        groups=groups,
        returns=np.zeros((config.n_agents, 0), np.float32),
        sharing_matrices=sharing[None],
        sharing_index=np.zeros((0,), np.int32),
    )
    return run, state, inputs


def _placement(config: TrainConfig, n_devices: int, stacked: int | None) -> str:
    """Where the agent axis (or the replica axis) runs, and why, for the start of a run."""
    platform = jax.devices()[0].platform
    axis = "agent axis" if stacked is None else f"{config.seeds} replicas"
    if stacked is not None and stacked > config.seeds:
        axis += f" (the last repeated {stacked - config.seeds}x to fill the devices)"
    where = f"{axis} over {n_devices} {platform} device(s)"
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


def _precompile_fit(config: TrainConfig) -> threading.Thread | None:
    """The rebuild's fit compiling in the background from now, if the run will rebuild."""
    if not _rebuild_ahead(config, 0):
        return None
    return precompile_fit(config, *env_dims(get_task(config.task).make_env(config.reward)))


def _rebuild_ahead(config: TrainConfig, done: int) -> bool:
    """Whether a rebuild is due after episode `done` and before the run ends."""
    next_rebuild = (done // config.rebuild_every + 1) * config.rebuild_every
    return get_sharing(config.sharing).rebuilt and next_rebuild <= config.episodes


def _loop(
    config: TrainConfig,
    runs: list[_Run],
    program: _Program,
    env,
    learner,
    start: float,
    fit_compiling: threading.Thread | None = None,
):
    """Chunks until the run is done or stopped; after each, per run (replica): rebuild P
    when due, metrics, checkpoint and results; progress. Returns the runs' Results.
    fit_compiling: the rebuild's fit compiling since the run started (else started here)."""
    episode_length = env.default_params.max_steps_in_episode
    primary = jax.process_index() == 0  # the process that writes files
    chunks = _Chunks(config, env, learner)
    logs = [MetricsLog(run.config, config.n_agents, run.episodes_done, primary) for run in runs]
    desc = f"{config.task} {config.sharing}" + (f" x {config.seeds}" if config.seeds > 1 else "")
    done = runs[0].episodes_done  # every replica's
    bar = tqdm(
        total=config.episodes, initial=done, unit="ep", disable=not config.progress, desc=desc
    )
    last_checkpoint = done
    compiling = []  # the rebuild's programs compile while the first chunks run
    if _rebuild_ahead(config, done):
        fit = fit_compiling or precompile_fit(config, learner.obs_dim, learner.act_dim)
        compiling = [fit, precompile_draws(config, program.of(0, program.state.buffer))]
    with StopRequests() as stop:
        while done < config.episodes and stop.received is None:
            used = [run.sharing_matrices[-1] for run in runs]
            stats, seconds = chunks.run(program, runs, _chunk_length(config, done))
            rebuilding = _rebuild_due(config, runs[0])
            if rebuilding:
                for thread in compiling:
                    thread.join()
            steps_per_s = sum(s.returns.size for s in stats) * episode_length / seconds
            scales = [noise_scale(config.explore, e) for e in range(done, runs[0].episodes_done)]
            rebuilt = _rebuild(runs, program, episode_length) if rebuilding else [None] * len(runs)
            for r, rebuild in enumerate(rebuilt):
                logs[r].write(episode_rows(done, *stats[r], scales, used[r], steps_per_s, rebuild))
            bar.update(runs[0].episodes_done - done)
            done = runs[0].episodes_done
            last_return = np.mean([s.returns[-1].mean() for s in stats])
            bar.set_postfix(mean_return=f"{last_return:.1f}", steps_per_s=f"{steps_per_s:.0f}")
            due = done - last_checkpoint >= config.checkpoint_every
            finished = done == config.episodes or stop.received is not None
            for r, run in enumerate(runs):
                results = _results(run, episode_length, start)
                if run.checkpointer is not None and (due or finished):
                    _checkpoint(run, program, r, results)
                if run.config.out_dir is not None and primary:
                    results.save(run.config.out_dir)
            if due or finished:
                last_checkpoint = done
    for thread in compiling:
        thread.join()  # a stop before the first rebuild: no thread outlives the run
    bar.close()
    for log in logs:
        log.close()
    results = [_results(run, episode_length, start) for run in runs]
    if stop.received is not None and done < config.episodes:
        raise TrainingInterrupted(
            _interrupted_message(config, runs[0], stop.received),
            results if config.seeds > 1 else results[0],
        )
    return results


def _checkpoint(run: _Run, program: _Program, r: int, results: Results) -> None:
    meta = {
        **results.meta(),
        "n_sharing_matrices": len(run.sharing_matrices),
        "carry_shapes": run.carry_shapes(),
    }
    tree = run.checkpoint_tree(program.of(r, program.state), program.of(r, program.inputs))
    run.checkpointer.save(run.episodes_done, tree, meta)


def _results(run: _Run, episode_length: int, start: float) -> Results:
    return Results(
        config=dataclasses.asdict(run.config),
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

    def run(
        self, program: _Program, runs: list[_Run], n_episodes: int
    ) -> tuple[list[EpisodeStats], float]:
        """Run the next `n_episodes` of the program (its state, the runs' histories and
        timings updated); per run the chunk's stats (host arrays [E, N]) and the chunk's
        seconds. DivergenceError if non-finite."""
        config = self.config
        if n_episodes not in self.compiled:
            t0 = time.perf_counter()
            stacked = program.n_replicas is not None
            chunk = make_chunk(
                self.env,
                self.learner,
                config.explore,
                config.warmup_steps,
                n_episodes,
                None if stacked else program.mesh,
            )
            if stacked:
                chunk = replicas.batched(chunk, program.state, program.mesh)
            lowered = jax.jit(chunk, donate_argnums=0).lower(program.state, program.inputs)
            self.compiled[n_episodes] = lowered.compile()
            for run in runs:
                run.compile_time += time.perf_counter() - t0
        profiling = config.profile_dir is not None and self.ran < PROFILED_CHUNKS
        if profiling and self.ran == 0:
            jax.profiler.start_trace(config.profile_dir, create_perfetto_trace=True)
        t0 = time.perf_counter()
        state, stats, params_finite = self.compiled[n_episodes](program.state, program.inputs)
        stats, params_finite = agent_mesh.to_host((stats, params_finite))  # waits for it
        seconds = time.perf_counter() - t0
        self.ran += 1
        first = runs[0].episodes_done
        if profiling and (self.ran == PROFILED_CHUNKS or first + n_episodes >= config.episodes):
            jax.profiler.stop_trace()
        per_run = [(stats, params_finite)]
        if program.n_replicas is not None:
            per_run = [replicas.replica((stats, params_finite), r) for r in range(len(runs))]
        for run, (run_stats, finite) in zip(runs, per_run, strict=True):
            try:
                check_finite(first, run_stats.returns, run_stats.critic_loss, finite)
            except DivergenceError as err:
                if program.n_replicas is None:
                    raise
                raise DivergenceError(f"replica seed={run.config.seed}: {err}") from None
        program.state = state
        for run, (run_stats, _) in zip(runs, per_run, strict=True):
            run.record(run_stats.returns, seconds)
        return [run_stats for run_stats, _ in per_run], seconds


def _rebuild_due(config: TrainConfig, run: _Run) -> bool:
    return get_sharing(config.sharing).rebuilt and run.episodes_done % config.rebuild_every == 0


def _chunk_length(config: TrainConfig, done: int) -> int:
    """Episodes in the next chunk: up to episodes_per_chunk, ending at the next rebuild."""
    n = min(config.episodes_per_chunk, config.episodes - done)
    if get_sharing(config.sharing).rebuilt:
        n = min(n, config.rebuild_every - done % config.rebuild_every)
    return n


def _warmup_held(config: TrainConfig, steps: int, capacity: int) -> int:
    """Steps at the start of the buffer that are the warm-up's random actions and that a
    rebuild draws half its samples from: config.warmup_steps while `steps` (written per
    agent so far) fit in the buffer, with `rebuild_warmup` and no `rebuild_window`; else 0."""
    use = config.rebuild_warmup and config.rebuild_window is None and steps <= capacity
    return config.warmup_steps if use else 0


def _rebuild(runs: list[_Run], program: _Program, episode_length: int) -> list[dict]:
    """Refit every run's (replica's) sharing matrix from its data (host side, the fits
    batched where the method can); the Ps go back in as arrays. Returns the rebuilds'
    records (also appended to each run.rebuilds)."""
    config = runs[0].config  # the replicas' differ only in seed and folder
    episode = runs[0].episodes_done
    inputs = []
    for r, run in enumerate(runs):
        key = jax.random.fold_in(jax.random.PRNGKey(run.config.seed), episode)
        labels = np.asarray(agent_mesh.to_host(program.of(r, program.inputs.clusters)))
        buffer = program.of(r, program.state.buffer)
        inputs.append(RebuildInput(buffer, key, run.groups, labels, run.carry))
    capacity = inputs[0].buffer.capacity
    window = capacity if config.rebuild_window is None else config.rebuild_window * episode_length
    warmup = _warmup_held(config, episode * episode_length, capacity)
    rebuilds = rebuild_sharings(inputs, config, episode, window, warmup)
    records = []
    for r, (run, rebuild) in enumerate(zip(runs, rebuilds, strict=True)):
        if rebuild is None:
            run.rebuilds.append({"episode": episode, "failed": True})
            records.append(run.rebuilds[-1])
            continue
        run.rebuilds.append(rebuild.record)
        run.carry = rebuild.carry
        if run.config.out_dir is not None and jax.process_index() == 0:
            Path(run.config.out_dir).mkdir(parents=True, exist_ok=True)
            atomic_write(Path(run.config.out_dir) / MODEL_FILE, rebuild.model.save)
        program.set_sharing(r, rebuild.sharing, rebuild.labels)
        run.sharing_matrices = np.concatenate([run.sharing_matrices, rebuild.sharing[None]])
        records.append(rebuild.record)
    return records


def _interrupted_message(config: TrainConfig, run: _Run, signal_name: str) -> str:
    done = f"{signal_name}: stopped after episode {run.episodes_done} of {config.episodes}"
    if run.checkpointer is None:
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


def _restore(run: _Run, step: int, program: _Program, r: int):
    """(host record, RunState, ChunkInputs) of run r's checkpoint at `step`, shaped like
    the fresh `run` and the program's replica r."""
    meta = run.checkpointer.meta(step)
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
    ).checkpoint_tree(program.of(r, program.state), program.of(r, program.inputs))
    if "carry_shapes" not in meta:  # saved before rebuilds carried state
        del template["carry"]
    tree = run.checkpointer.restore(step, template)
    restored = dataclasses.replace(
        run,
        groups=np.asarray(tree["groups"]),
        returns=np.asarray(tree["returns"]),
        sharing_matrices=np.asarray(tree["sharing_matrices"]),
        sharing_index=np.asarray(tree["sharing_index"]),
        compile_time=meta["compile_time"],
        run_time=meta["run_time"],
        rebuilds=meta["extra"]["rebuilds"],
        carry={k: np.asarray(v) for k, v in tree.get("carry", {}).items()},
    )
    inputs = ChunkInputs(tree["env_params"], tree["sharing"], tree["clusters"])
    return restored, tree["state"], inputs


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
