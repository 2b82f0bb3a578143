"""Sharing rebuilt from data (the c3rl method; `sysid` is its least-squares ablation).

Every `rebuild_every` episodes the host draws `rebuild_samples` transitions per agent at random
among its last `rebuild_window` episodes (by default all its buffer holds, half of them from
the warm-up's random-action steps while it holds them: `rebuild_warmup`), maps them to
mechanism latents with the configured mechanism-inference method (`causal.methods`: agent_gp,
anm_mm, sysid), starting from what the previous rebuild of the run learned (its `carry`),
clusters the latents with a Gaussian mixture whose components are relabelled to match the
previous rebuild's labels, and turns the agents' soft assignments into P. A failed or
degenerate fit keeps the previous P with a warning.
True group labels are used only to score the clustering (ARI), never to build P.
"""

import functools
import threading
import time
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from c3rl_jax.causal import adjusted_rand_index, cluster_agents
from c3rl_jax.causal.clustering import align_mixture
from c3rl_jax.causal.mechanisms import MechanismModel
from c3rl_jax.causal.methods import get_mechanism
from c3rl_jax.replay import ReplayBuffer, Transition
from c3rl_jax.runtime.agent_mesh import to_host

MODEL_FILE = "mechanisms.npz"  # the latest c3rl fit, saved in the run directory


class Rebuild(NamedTuple):
    """One rebuild: P [N, N], agent labels [N], its record, the fitted mechanism model and the
    carry the next rebuild starts from."""

    sharing: np.ndarray
    labels: np.ndarray
    record: dict
    model: MechanismModel
    carry: dict


class RebuildInput(NamedTuple):
    """What one run's rebuild starts from: its replay buffer, key, true groups [N] (for the
    ARI only), current cluster labels [N] and the previous rebuild's carry."""

    buffer: ReplayBuffer
    key: jax.Array
    groups: np.ndarray
    labels: np.ndarray
    carry: dict


def mechanism_data(data: Transition) -> tuple[np.ndarray, np.ndarray]:
    """The mechanism's cause and effect of transitions with leaves [..., d]: X [..., obs+act] =
    (obs, action), Y [..., obs+1] = (obs' - obs, reward)."""
    x = np.concatenate([data.obs, data.action], axis=-1)
    y = np.concatenate([data.next_obs - data.obs, np.asarray(data.reward)[..., None]], axis=-1)
    return x, y


@functools.partial(jax.jit, static_argnums=(2, 3))
def _distinct_ages(key: jax.Array, window, capacity: int, m: int) -> jax.Array:
    """m distinct ages [m] uniform in 0..window-1: the top m of uniform scores over the
    buffer's slots, those past the window masked (one program for every window; a
    `jax.random.choice` without replacement recompiled for each new fill)."""
    scores = jax.random.uniform(key, (capacity,))
    scores = jnp.where(jnp.arange(capacity) < window, scores, -1.0)
    return jax.lax.top_k(scores, m)[1]


@jax.jit
def _take_slots(data: Transition, slots: jax.Array) -> Transition:
    """The buffer slots [m] of every agent: leaves [N, capacity, ...] -> [N, m, ...] (one
    program, compiled ahead by `precompile_draws`; indexing outside a jit compiles a gather per
    leaf in every process, 0.4 s at a run's first rebuild)."""
    return jax.tree.map(lambda x: x[:, slots], data)


@jax.jit
def _mixture_seed(key: jax.Array) -> jax.Array:
    """[] int32 the mixture step's scikit-learn seed drawn from `key` (jitted so that
    `precompile_draws` can compile it ahead)."""
    return jax.random.randint(key, (), 0, 2**31 - 1)


def recent_transitions(buffer: ReplayBuffer, m: int, window: int, key: jax.Array, oldest: int = 0):
    """m transitions per agent drawn without replacement from its last `window` steps, as
    X [N*m, obs+act] = (obs, action), Y [N*m, obs+1] = (obs' - obs, reward), agent ids [N*m].
    (Random rather than the last m, which are m consecutive steps of one trajectory.)
    oldest > 0: m // 2 of them among the window's oldest `oldest` steps (a run's warm-up), the
    rest among the steps after those; all from the whole window while fewer steps than
    either half needs are on either side."""
    window = max(m, min(window, int(np.min(to_host(buffer.fill)))))
    old, rest = m // 2, m - m // 2
    oldest = min(oldest, window)
    if oldest >= old > 0 and window - oldest >= rest:
        k_old, k_rest = jax.random.split(key)
        ages = np.concatenate(
            [
                window - oldest + np.asarray(_distinct_ages(k_old, oldest, buffer.capacity, old)),
                np.asarray(_distinct_ages(k_rest, window - oldest, buffer.capacity, rest)),
            ]
        )
    else:
        ages = np.asarray(_distinct_ages(key, window, buffer.capacity, m))
    slots = ((int(buffer.ptr) - 1 - ages) % buffer.capacity).astype(np.int32)
    data = to_host(_take_slots(buffer.data, slots))  # [N, m, ...]
    n_agents = data.reward.shape[0]
    x, y = mechanism_data(data)
    agent_ids = np.repeat(np.arange(n_agents), m)
    return x.reshape(n_agents * m, -1), y.reshape(n_agents * m, -1), agent_ids


def _mesh_of(x: jax.Array) -> NamedSharding | None:
    return x.sharding if isinstance(x.sharding, NamedSharding) else None


def _in_background(compile_ahead, name: str) -> threading.Thread:
    """compile_ahead() started in a daemon thread. Such a thread only compiles, runs nothing:
    a fit run on stand-in data beside a chunk split over host devices once stalled one
    device's part of the chunk until XLA aborted the run (a collective's 40 s rendezvous
    timeout)."""
    thread = threading.Thread(target=compile_ahead, name=name, daemon=True)
    thread.start()
    return thread


def precompile_fit(config, obs_dim: int, act_dim: int) -> threading.Thread:
    """A started thread that compiles the rebuild's mechanism fit (if its method has a
    `compile`; for the replicas' batch where it has a `fit_many`) for the rebuild's shapes,
    from when a run starts, so that the first rebuild finds it compiled; join it before
    that rebuild. A compile that fails leaves it to the rebuild."""
    method = get_mechanism(config.mechanism)
    runs = config.seeds if method.fit_many is not None else 1  # as `rebuild_sharings` fits
    shapes = (config.n_agents, config.rebuild_samples, obs_dim + act_dim, obs_dim + 1)

    def compile_ahead() -> None:
        if method.compile is None:
            return
        try:  # nothing runs, so only a refused config (a ValueError) can stop it
            method.compile(*shapes, config.rebuild_fit_steps, runs)
        except ValueError:
            pass

    return _in_background(compile_ahead, "precompile-fit")


def precompile_draws(config, buffer: ReplayBuffer) -> threading.Thread:
    """A started thread that compiles the rebuild's draw of sample ages, the gather of the
    slots at them from `buffer` and the mixture's seed, while the first chunks run; join it
    before the first rebuild."""
    m, capacity = config.rebuild_samples, buffer.capacity
    # the buffer's shapes and mesh shardings (one device: none, as the chunks' outputs have),
    # read here: the chunks donate its arrays
    data = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=_mesh_of(x)), buffer.data
    )

    def compile_ahead() -> None:
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        for size in {m, m // 2, m - m // 2} - {0}:  # the whole draw and its two halves
            _distinct_ages.lower(key, size, capacity, size).compile()
        _take_slots.lower(data, jax.ShapeDtypeStruct((m,), jnp.int32)).compile()
        _mixture_seed.lower(key).compile()

    return _in_background(compile_ahead, "precompile-draws")


def rebuild_sharings(
    runs: list[RebuildInput], config, episode: int, window: int, warmup: int = 0
) -> list[Rebuild | None]:
    """New Ps for the runs of one program (one run, or a multi-seed run's replicas: one config,
    buffers of one shape). Each
    from `rebuild_samples` transitions per agent among its last `window` steps (half among
    the window's oldest `warmup` steps, if > 0: `recent_transitions`), fitted with
    `config.mechanism` from its carry (the previous rebuild's), the runs' fits in one batched
    program where the method has a `fit_many`. Returns per run a Rebuild, or None (with a
    warning) if its fit failed; a record's seconds: its mixture step plus an equal share of
    the rest."""
    start = time.perf_counter()
    method = get_mechanism(config.mechanism)
    keys = [jax.random.split(run.key, 3) for run in runs]  # data, fit, mixture
    data = [
        recent_transitions(run.buffer, config.rebuild_samples, window, k[0], warmup)
        for run, k in zip(runs, keys, strict=True)
    ]
    n_agents = runs[0].labels.shape[0]
    carries = [run.carry for run in runs]
    fits = _fits(method, data, n_agents, [k[1] for k in keys], config, carries)
    shared = (time.perf_counter() - start) / len(runs)
    rebuilds = []
    for run, k, (x, y, agent_ids), fit in zip(runs, keys, data, fits, strict=True):
        t0 = time.perf_counter()
        rebuild = _clustered(fit, run, x, y, agent_ids, k[2], config, method, episode)
        if rebuild is not None:
            rebuild.record["seconds"] = shared + time.perf_counter() - t0
        rebuilds.append(rebuild)
    return rebuilds


_FIT_ERRORS = (ValueError, FloatingPointError, np.linalg.LinAlgError)


def _fits(method, data, n_agents: int, keys, config, carries) -> list:
    """Each run's MechanismFit, or the error that stopped it: with `fit_many` all at once (if
    the batch fails, run by run, so that one run's bad data fail only that run)."""
    steps = config.rebuild_fit_steps
    if method.fit_many is not None and len(data) > 1:
        xs, ys, ids = (np.stack(part) for part in zip(*data, strict=True))
        try:
            return method.fit_many(xs, ys, ids, n_agents, np.stack(keys), steps, carries)
        except _FIT_ERRORS:
            pass
    fits = []
    for (x, y, agent_ids), key, carry in zip(data, keys, carries, strict=True):
        try:
            fits.append(method.fit(x, y, agent_ids, n_agents, key, steps, carry))
        except _FIT_ERRORS as err:
            fits.append(err)
    return fits


def _clustered(fit, run: RebuildInput, x, y, agent_ids, key, config, method, episode):
    """The Rebuild of one run's fit (or None, with a warning, if it failed): the mixture over
    its latents, aligned with the run's current labels, and its record."""
    try:
        if isinstance(fit, Exception):
            raise fit
        if not np.all(np.isfinite(fit.theta)):
            raise FloatingPointError("non-finite theta")
        clusters = cluster_agents(
            fit.theta,
            fit.point_agents,
            run.labels.shape[0],
            config.n_clusters,
            config.max_clusters,
            int(_mixture_seed(key)),
            criterion=method.criterion,
            previous_k=len(np.unique(run.labels)),  # the clusters the agents are in now
        )
    except _FIT_ERRORS as err:
        warnings.warn(
            f"episode {episode}: {config.mechanism} rebuild failed ({err}); keeping the "
            "previous sharing matrix",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    clusters = align_mixture(clusters, run.labels)
    record = {
        "episode": episode,
        "seconds": 0.0,
        "mechanism": config.mechanism,
        "n_clusters": clusters.n_components,
        "ari": adjusted_rand_index(run.groups, clusters.agent_labels),
        "labels": clusters.agent_labels.tolist(),
        "assignments": np.round(clusters.V, 6).tolist(),
        "skipped_steps": fit.n_skipped,
    }
    model = MechanismModel(config.mechanism, fit.encoder, clusters.gmm, clusters.V, x, y, agent_ids)
    return Rebuild(clusters.P, clusters.agent_labels, record, model, fit.carry)
