"""The trained policies of a saved run, ready to act and to be evaluated.

policy = c3rl_jax.load_policy("runs/pendulum-dense-c3rl-s0")
actions = policy.act(obs)           # obs [N, obs_dim], one row per agent -> [N, act_dim]
actions = policy.act(obs, agent=3)  # obs [..., obs_dim], all acted by agent 3
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax.analysis.evaluation import own_returns
from c3rl_jax.analysis.transfer import new_env_params
from c3rl_jax.errors import check, check_int
from c3rl_jax.runtime.results import group_summary
from c3rl_jax.training import SavedRun, load_run


class Policy:
    """The greedy policies of a run's N agents (the latest checkpoint) and their environments:
    `config`, `env`, `learner`, `env_params` (leaves [N]), `groups` [N], `n_agents`."""

    def __init__(self, run: SavedRun):
        self.run = run
        self.config, self.env, self.learner = run.config, run.env, run.learner
        self.env_params, self.groups = run.env_params, np.asarray(run.groups)
        self.n_agents = len(self.groups)
        self._actors = run.state.agents.actor
        act_dim = self.learner.act_dim

        def high(params):
            return jnp.broadcast_to(jnp.asarray(self.env.action_space(params).high), (act_dim,))

        self._high = jax.vmap(high)(self.env_params)  # [N, act_dim]
        apply = self.learner.actor.apply  # actors and bounds are arguments, not constants
        self._all = jax.jit(lambda actors, high, obs: jax.vmap(apply)(actors, obs) * high)
        self._one = jax.jit(lambda actor, high, obs: apply(actor, obs) * high)

    def act(self, obs, agent: int | None = None) -> np.ndarray:
        """Greedy actions in the environment's units: agent None, obs [N, obs_dim] (row n
        for agent n) -> [N, act_dim]; agent n, obs [..., obs_dim] -> [..., act_dim]."""
        obs = jnp.asarray(obs, jnp.float32)
        if agent is None:
            check(
                obs.ndim == 2 and obs.shape[0] == self.n_agents,
                "obs shape",
                tuple(obs.shape),
                f"[{self.n_agents}, obs_dim] (one row per agent) when agent is None",
            )
            return np.asarray(self._all(self._actors, self._high, obs))
        check(
            isinstance(agent, int | np.integer) and 0 <= agent < self.n_agents,
            "agent",
            agent,
            f"None or an agent index in [0, {self.n_agents})",
        )
        actor = jax.tree.map(lambda leaf: leaf[int(agent)], self._actors)
        return np.asarray(self._one(actor, self._high[int(agent)], obs))

    def evaluate(
        self, episodes: int = 10, seed: int = 0, params: Mapping[str, float] | None = None
    ) -> dict:
        """Greedy returns per agent ([N], mean over `episodes`) and per true group, each agent on
        its own environment, or every agent on one new environment with `params` set (e.g.
        {"w": 0.8}; the others keep the task's defaults)."""
        check_int("episodes", episodes, 1)
        env_params = self.env_params
        if params:
            new = new_env_params(self.run, params)
            env_params = jax.tree.map(lambda leaf: jnp.repeat(leaf, self.n_agents, 0), new)
        key = jax.random.PRNGKey(seed)
        returns = np.asarray(
            own_returns(self.env, self.learner, self._actors, env_params, key, episodes)
        )
        return {
            "episodes": episodes,
            "seed": seed,
            "params": dict(params or {}),
            "mean": float(returns.mean()),
            "returns": returns.tolist(),
            "groups": group_summary(returns, self.groups),
        }


def load_policy(run_dir: str) -> Policy:
    """The policies of the run saved in `run_dir` (its latest checkpoint), on one device."""
    return Policy(load_run(str(run_dir)))
