"""Transportability: place a new environment among a c3rl run's learned mechanisms, predict how
each trained policy would do there, and warm-start a learner from the best candidate.

`transfer` collects a few transitions of the new environment (by default with the trained
policies, the kind of data the model was fitted to; or with random actions), maps them to
latents with the run's mechanism encoder (agent_gp: the new environment's own latent, fitted
against the frozen GP; anm_mm: one theta per transition; sysid: its least-squares
coefficients) and takes the Gaussian mixture's posterior P(k | e*) [K].
Each trained policy n is evaluated greedily on every trained agent's environment, R [N, N]; its
return on mechanism k is the mean over agents weighted by their soft assignment V [N, K],
R_k[n] = sum_m V[m, k] R[n, m] / sum_m V[m, k]; its predicted return on the new environment is
sum_k P(k | e*) R_k[n]; the recommended policy maximises it.

`warm_start` trains one new agent on the new environment from the recommended agent's networks,
its replay buffer seeded with the transitions collected for placement (and, optionally, the
recent data of the agents of the new environment's most likely mechanism).
"""

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax import replay
from c3rl_jax.analysis.evaluation import BEHAVIOURS, greedy_returns, policy_transitions
from c3rl_jax.causal.mechanisms import MechanismModel
from c3rl_jax.errors import ConfigError, check
from c3rl_jax.population import Population, broadcast_params
from c3rl_jax.replay import ReplayBuffer, Transition
from c3rl_jax.runtime.results import Results
from c3rl_jax.sharing.adaptive import MODEL_FILE, mechanism_data
from c3rl_jax.tasks import get_task
from c3rl_jax.training import SavedRun, load_run, train

BEHAVIOUR_NOISE = 0.1  # std of the action noise of the trained policies when collecting


class TransferResult(NamedTuple):
    """posterior: P(k | new env) [K]; mechanism_returns: R_k [N, K], each trained policy's
    return on each mechanism's agents; predicted_returns: [N]; recommended: the policy (agent
    index) with the highest prediction; mechanism: the most likely k; actual_returns: [N]
    greedy returns on the new environment (only with evaluate=True, else None);
    transitions: the collected transitions (leaves [n_transitions, ...]); behaviour: how
    they were collected (see BEHAVIOURS)."""

    params: dict
    posterior: np.ndarray
    mechanism_returns: np.ndarray
    predicted_returns: np.ndarray
    recommended: int
    mechanism: int
    actual_returns: np.ndarray | None
    transitions: Transition
    behaviour: str

    def to_dict(self) -> dict:
        """Everything but the transitions, as JSON-serialisable values."""
        actual = self.actual_returns
        return {
            "params": self.params,
            "behaviour": self.behaviour,
            "n_transitions": len(self.transitions.reward),
            "posterior": self.posterior.tolist(),
            "mechanism": self.mechanism,
            "recommended": self.recommended,
            "predicted_return": float(self.predicted_returns[self.recommended]),
            "predicted_returns": self.predicted_returns.tolist(),
            "mechanism_returns": self.mechanism_returns.tolist(),
            "actual_returns": None if actual is None else actual.tolist(),
        }


def run_directory(run: str | Path | Results) -> Path:
    """The directory of a run given as a path or as its `Results` (which name their out_dir)."""
    if isinstance(run, Results):
        out_dir = run.config.get("out_dir")
        check(out_dir is not None, "results.config.out_dir", out_dir, "the run's directory")
        return Path(out_dir)
    return Path(run)


def load_model(run_dir: str | Path) -> MechanismModel:
    """The run's latest fitted ANM-MM + GMM (ConfigError if it has none)."""
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(
            f"run={str(run_dir)!r} is invalid: it has no fitted mechanism model ({MODEL_FILE}); "
            "only c3rl and sysid runs with an out_dir save one, at their first rebuild"
        )
    return MechanismModel.load(path)


def new_env_params(run: SavedRun, values: Mapping[str, float]):
    """Environment parameters [1] of the run's task with the named fields set (ConfigError on
    an unknown name or a non-physical value)."""
    base = run.env.default_params
    fields = sorted(  # the numeric parameters (not static ones such as the episode length)
        f.name for f in dataclasses.fields(base) if f.metadata.get("pytree_node", True)
    )
    for name, value in values.items():
        check(name in fields, "param name", name, f"a parameter of {run.config.task}: {fields}")
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        check(ok and np.isfinite(value), f"param {name}", value, "a finite number")
    params = broadcast_params(base, 1, {k: [v] for k, v in values.items()})
    get_task(run.config.task).validate_params(params)
    return params


def new_population(run: SavedRun, values: Mapping[str, float]) -> Population:
    """A one-agent population of the new environment (`new_env_params`), in group 0."""
    return Population(new_env_params(run, values), jnp.zeros((1,), jnp.int32))


def collect(run: SavedRun, params, key: jax.Array, n: int, behaviour: str) -> Transition:
    """n transitions (leaves [n, ...]) of one new environment (params leaves [1]), drawn
    uniformly from one episode of each trained policy with N(0, 0.1^2) action noise
    ("policies"), or from as many episodes of uniform random actions ("random")."""
    k_run, k_pick = jax.random.split(key)
    data, alive = policy_transitions(
        run.env,
        run.learner,
        run.state.agents.actor,
        params,
        k_run,
        noise_std=BEHAVIOUR_NOISE,
        random=behaviour == "random",
    )
    alive = np.asarray(alive).ravel()
    check(n <= alive.sum(), "n_transitions", n, f"at most the {int(alive.sum())} collected")
    rows = np.asarray(
        jax.random.choice(k_pick, alive.size, (n,), replace=False, p=alive / alive.sum())
    )
    return jax.tree.map(lambda a: np.asarray(a).reshape(alive.size, *a.shape[2:])[rows], data)


def transfer(
    run: str | Path | Results,
    params: Mapping[str, float],
    n_transitions: int = 100,
    seed: int = 0,
    eval_episodes: int = 5,
    evaluate: bool = False,
    behaviour: str = "policies",
) -> TransferResult:
    """Place a new environment (the run's task with `params` set, e.g. {"w": 0.8}) among the
    mechanisms of a c3rl run (its directory, or its `Results`) and recommend a trained policy.

    n_transitions: transitions of the new environment that place it (see `collect`).
    behaviour: "policies" (default) collects them with the trained policies, the data the
        model was fitted to; "random" with uniform random actions, on which the fitted
        encoder was never trained (it places every pendulum wind alike: see docs/results.md).
    evaluate: also measure every trained policy's greedy return on the new environment (a
        check of the prediction; it needs a simulator of the new environment).
    """
    check(
        isinstance(n_transitions, int) and n_transitions >= 1,
        "n_transitions",
        n_transitions,
        "a positive integer",
    )
    check(behaviour in BEHAVIOURS, "behaviour", behaviour, f"one of {BEHAVIOURS}")
    check(
        isinstance(eval_episodes, int) and eval_episodes >= 1,
        "eval_episodes",
        eval_episodes,
        "a positive integer",
    )
    run_dir = run_directory(run)
    model = load_model(run_dir)
    saved = load_run(str(run_dir))
    new = new_env_params(saved, params)
    k_collect, k_eval = jax.random.split(jax.random.PRNGKey(seed))
    data = collect(saved, new, k_collect, n_transitions, behaviour)
    posterior = model.posterior(*mechanism_data(data))
    actors = saved.state.agents.actor
    trained = greedy_returns(
        saved.env, saved.learner, actors, saved.env_params, k_eval, eval_episodes
    )
    weights = model.assignments / model.assignments.sum(axis=0, keepdims=True)  # [N, K]
    mechanism_returns = np.asarray(trained) @ weights  # [N, K]
    predicted = mechanism_returns @ posterior
    actual = None
    if evaluate:
        actual = np.asarray(
            greedy_returns(saved.env, saved.learner, actors, new, k_eval, eval_episodes)
        )
        actual = actual[:, 0]
    return TransferResult(
        params=dict(params),
        posterior=posterior,
        mechanism_returns=mechanism_returns,
        predicted_returns=predicted,
        recommended=int(np.argmax(predicted)),
        mechanism=int(np.argmax(posterior)),
        actual_returns=actual,
        transitions=data,
        behaviour=behaviour,
    )


def warm_start(
    run: str | Path | Results,
    params: Mapping[str, float],
    result: TransferResult | None = None,
    episodes: int = 30,
    mechanism_replay: bool = False,
    seed: int = 0,
    out_dir: str | None = None,
    progress: bool = True,
) -> Results:
    """Train one agent on the new environment starting from the recommended trained agent.

    result: a `transfer` result for the same `params` (computed here if None).
    mechanism_replay: also copy the recent replay data of the agents whose most likely
        mechanism is the new environment's into the new agent's buffer.
    The new agent uses the run's settings with plain OU exploration, no random warm-up, and a
    buffer seeded with the transitions `transfer` collected.
    """
    run_dir = run_directory(run)
    result = result or transfer(run_dir, params, seed=seed)
    check(result.params == dict(params), "result", result.params, f"a transfer result for {params}")
    saved = load_run(str(run_dir))
    config = scratch_config(saved, episodes, seed, out_dir, progress)
    config = dataclasses.replace(config, warmup_steps=0)
    agents = jax.tree.map(lambda a: a[result.recommended][None], saved.state.agents)
    sources = [result.transitions]
    if mechanism_replay:
        model = load_model(run_dir)
        members = np.flatnonzero(model.assignments.argmax(axis=1) == result.mechanism)
        sources.append(recent_data(saved.state.buffer, members, config.buffer_size))
    buffer = seeded_buffer(config.buffer_size, sources)
    return train(
        config, new_population(saved, params), initial_agents=agents, initial_buffer=buffer
    )


def scratch_config(run: SavedRun, episodes: int, seed: int, out_dir: str | None, progress: bool):
    """The run's settings for one new agent learning alone with plain OU exploration."""
    check(isinstance(episodes, int) and episodes >= 1, "episodes", episodes, "a positive integer")
    return dataclasses.replace(
        run.config,
        n_agents=1,
        sharing="individual",
        mechanism=None,
        exploration="ou",
        episodes=episodes,
        seed=seed,
        out_dir=out_dir,
        progress=progress,
        devices=1,
        distributed=False,
        overwrite=True,  # a warm start's folder belongs to it: running it again replaces it
    )


def recent_data(buffer: ReplayBuffer, agents: np.ndarray, capacity: int) -> Transition:
    """Up to `capacity` most recent transitions of the given agents, leaves [k, ...] (an equal
    share per agent, oldest first)."""
    per_agent = min(capacity // max(len(agents), 1), int(np.min(buffer.fill[agents])))
    slots = (int(buffer.ptr) - per_agent + np.arange(per_agent)) % buffer.capacity
    rows = jax.tree.map(lambda a: np.asarray(a)[agents][:, slots], buffer.data)
    return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), rows)


def seeded_buffer(capacity: int, sources: list[Transition]) -> ReplayBuffer:
    """A one-agent buffer [1, capacity, ...] holding the given transitions (the last
    `capacity` of them if there are more)."""
    data = jax.tree.map(lambda *a: np.concatenate(a)[-capacity:], *sources)
    n = data.reward.shape[0]
    obs_dim, act_dim = data.obs.shape[1], data.action.shape[1]
    buffer = replay.init_buffer(1, capacity, obs_dim, act_dim)
    filled = jax.tree.map(lambda buf, a: buf.at[0, :n].set(a), buffer.data, data)
    return ReplayBuffer(filled, jnp.array(n % capacity, jnp.int32), jnp.array([n], jnp.int32))
