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
    program, compiled ahead by `precompile`; indexing outside a jit compiles a gather per
    leaf in every process, 0.4 s at a run's first rebuild)."""
    return jax.tree.map(lambda x: x[:, slots], data)


@jax.jit
def _mixture_seed(key: jax.Array) -> jax.Array:
    """[] int32 the mixture step's scikit-learn seed drawn from `key` (jitted so that
    `precompile` can compile it ahead)."""
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


def precompile(config, buffer: ReplayBuffer, obs_dim: int, act_dim: int):
    """A started thread that compiles the rebuild's programs (the draw of sample ages and
    of the slots at them from `buffer`, the mixture's seed, the mechanism fit, if its method
    has a `compile`) for the rebuild's shapes while the first chunks run, so that the first
    rebuild finds them compiled; join it before that rebuild.
    It only compiles, runs nothing: a fit run on stand-in data beside a chunk split over
    host devices once stalled one device's part of the chunk until XLA aborted the run (a
    collective's 40 s rendezvous timeout). A compile that fails leaves it to the rebuild."""
    m, capacity = config.rebuild_samples, buffer.capacity
    n_agents = buffer.data.reward.shape[0]
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
        method = get_mechanism(config.mechanism)
        if method.compile is None:
            return
        try:  # nothing runs, so only a refused config (a ValueError) can stop it
            method.compile(n_agents, m, obs_dim + act_dim, obs_dim + 1, config.rebuild_fit_steps)
        except ValueError:
            pass

    thread = threading.Thread(target=compile_ahead, name="precompile-rebuild", daemon=True)
    thread.start()
    return thread


def rebuild_sharing(
    buffer: ReplayBuffer,
    config,
    key: jax.Array,
    groups,
    previous_labels: np.ndarray,
    carry: dict,
    episode: int,
    window: int,
    warmup: int = 0,
) -> Rebuild | None:
    """A new P from `rebuild_samples` transitions per agent among its last `window` steps
    (half among the window's oldest `warmup` steps, if > 0: `recent_transitions`), fitted
    with `config.mechanism` from `carry` (the previous rebuild's), or None (with a warning)
    if the fit failed."""
    start = time.perf_counter()
    n_agents = previous_labels.shape[0]
    method = get_mechanism(config.mechanism)
    k_data, k_fit, k_gmm = jax.random.split(key, 3)
    x, y, agent_ids = recent_transitions(buffer, config.rebuild_samples, window, k_data, warmup)
    try:
        fit = method.fit(x, y, agent_ids, n_agents, k_fit, config.rebuild_fit_steps, carry)
        if not np.all(np.isfinite(fit.theta)):
            raise FloatingPointError("non-finite theta")
        seed = int(_mixture_seed(k_gmm))
        clusters = cluster_agents(
            fit.theta,
            fit.point_agents,
            n_agents,
            config.n_clusters,
            config.max_clusters,
            seed,
            criterion=method.criterion,
            previous_k=len(np.unique(previous_labels)),  # the clusters the agents are in now
        )
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
        warnings.warn(
            f"episode {episode}: {config.mechanism} rebuild failed ({err}); keeping the "
            "previous sharing matrix",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    clusters = align_mixture(clusters, previous_labels)
    record = {
        "episode": episode,
        "seconds": time.perf_counter() - start,
        "mechanism": config.mechanism,
        "n_clusters": clusters.n_components,
        "ari": adjusted_rand_index(groups, clusters.agent_labels),
        "labels": clusters.agent_labels.tolist(),
        "assignments": np.round(clusters.V, 6).tolist(),
        "skipped_steps": fit.n_skipped,
    }
    model = MechanismModel(config.mechanism, fit.encoder, clusters.gmm, clusters.V, x, y, agent_ids)
    return Rebuild(clusters.P, clusters.agent_labels, record, model, fit.carry)
