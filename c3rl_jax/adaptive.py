"""Sharing rebuilt from data (the c3rl method and its system-identification ablation).

Every `rebuild_every` episodes the host takes the `rebuild_samples` most recent transitions of
every agent, maps them to a mechanism parameter theta (ANM-MM / GPPOM for "c3rl", per-agent
least-squares coefficients for "sysid"), clusters theta with a Gaussian mixture, and turns the
agents' soft assignments into P. A failed or degenerate fit keeps the previous P with a warning.
True group labels are used only to score the clustering (ARI), never to build P.
"""

import time
import warnings
from typing import NamedTuple

import jax
import numpy as np

from c3rl_jax.agent_mesh import to_host
from c3rl_jax.causal import GPPOMConfig, adjusted_rand_index, cluster_agents, fit_gppom
from c3rl_jax.causal.mechanisms import MechanismModel
from c3rl_jax.replay import ReplayBuffer, Transition

MODEL_FILE = "mechanisms.npz"  # the latest c3rl fit, saved in the run directory


class Rebuild(NamedTuple):
    """One rebuild: P [N, N], soft assignments V [N, K], agent labels [N], its record, and the
    fitted mechanism model (c3rl; None for sysid)."""

    sharing: np.ndarray
    assignments: np.ndarray
    labels: np.ndarray
    record: dict
    model: MechanismModel | None


def mechanism_data(data: Transition) -> tuple[np.ndarray, np.ndarray]:
    """ANM-MM's cause and effect of transitions with leaves [..., d]: X [..., obs+act] =
    (obs, action), Y [..., obs+1] = (obs' - obs, reward)."""
    x = np.concatenate([data.obs, data.action], axis=-1)
    y = np.concatenate([data.next_obs - data.obs, np.asarray(data.reward)[..., None]], axis=-1)
    return x, y


def recent_transitions(buffer: ReplayBuffer, m: int, window: int, key: jax.Array):
    """m transitions per agent drawn without replacement from its last `window` steps, as
    X [N*m, obs+act] = (obs, action), Y [N*m, obs+1] = (obs' - obs, reward), agent ids [N*m].
    (Random rather than the last m, which are m consecutive steps of one trajectory.)"""
    window = max(m, min(window, int(np.min(to_host(buffer.fill)))))
    ages = np.asarray(jax.random.choice(key, window, (m,), replace=False))
    slots = (int(buffer.ptr) - 1 - ages) % buffer.capacity
    data = to_host(jax.tree.map(lambda x: x[:, slots], buffer.data))  # [N, m, ...]
    n_agents = data.reward.shape[0]
    x, y = mechanism_data(data)
    agent_ids = np.repeat(np.arange(n_agents), m)
    return x.reshape(n_agents * m, -1), y.reshape(n_agents * m, -1), agent_ids


def sysid_theta(x: np.ndarray, y: np.ndarray, agent_ids: np.ndarray) -> np.ndarray:
    """Per-agent least-squares fit of y on [x, 1]; theta [N, (dx+1)*dy], standardised."""
    rows = []
    for n in np.unique(agent_ids):
        xn = np.column_stack([x[agent_ids == n], np.ones((agent_ids == n).sum())])
        coef, *_ = np.linalg.lstsq(xn, y[agent_ids == n], rcond=None)
        rows.append(coef.ravel())
    theta = np.stack(rows)
    return (theta - theta.mean(axis=0)) / (theta.std(axis=0) + 1e-8)


def rebuild_sharing(
    method: str,
    buffer: ReplayBuffer,
    config,
    key: jax.Array,
    groups,
    previous: np.ndarray,
    episode: int,
    window: int,
) -> Rebuild | None:
    """A new P from `rebuild_samples` transitions per agent among its last `window` steps, or
    None (with a warning) if the fit failed."""

    start = time.perf_counter()
    n_agents = previous.shape[0]
    k_data, k_fit, k_gmm = jax.random.split(key, 3)
    x, y, agent_ids = recent_transitions(buffer, config.rebuild_samples, window, k_data)
    try:
        fit = None
        if method == "c3rl":
            fit = fit_gppom(x, y, k_fit, GPPOMConfig(n_steps=config.rebuild_fit_steps))
            theta = np.asarray(fit.theta)
            ids = agent_ids
        else:
            theta = sysid_theta(x, y, agent_ids)
            ids = np.arange(n_agents)
        if not np.all(np.isfinite(theta)):
            raise FloatingPointError("non-finite theta")
        seed = int(jax.random.randint(k_gmm, (), 0, 2**31 - 1))
        clusters = cluster_agents(
            theta, ids, n_agents, config.n_clusters, config.max_clusters, seed=seed
        )
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
        warnings.warn(
            f"episode {episode}: {method} rebuild failed ({err}); keeping the "
            "previous sharing matrix",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    record = {
        "episode": episode,
        "seconds": time.perf_counter() - start,
        "n_clusters": clusters.n_components,
        "ari": adjusted_rand_index(groups, clusters.agent_labels),
        "labels": clusters.agent_labels.tolist(),
        "assignments": np.round(clusters.V, 6).tolist(),
    }
    model = None if fit is None else MechanismModel(fit, clusters.gmm, clusters.V, x, y, ids)
    return Rebuild(clusters.P, clusters.V, clusters.agent_labels, record, model)
