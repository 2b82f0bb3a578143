"""Learners behind one interface, batched over a leading agent axis, found by name.

A learner is built as `Learner(config, obs_dim, act_dim)` and offers what the rest of the
package uses: `init(key, n_agents)` -> a state whose leaves have a leading axis [N] and whose
`.actor` holds the policy parameters; `act(state, obs [N, obs_dim])` -> actions [N, act_dim]
in [-1, 1]; `update(state, batch, datum)` -> (state, {"critic_loss": [N], "actor_loss": [N]});
`actor` (the policy network, applied to one agent's `.actor` parameters), `config.batch_size`,
`obs_dim`, `act_dim`. Registered: "ddpg" (`ddpg.DDPG`) and "td3" (`td3.TD3`); either may be
wrapped by seed sampling (`seed_sampling.SeedSampling`), which needs `agent_keys`, `critic` and
`update_one(state, batch, q_prior)` of it.
"""

from typing import Any, Protocol

import jax

from c3rl_jax.errors import check
from c3rl_jax.learners.ddpg import DDPG, DDPGConfig, DDPGState
from c3rl_jax.learners.seed_sampling import SeededState, SeedSampling
from c3rl_jax.learners.td3 import TD3, TD3Config, TD3State
from c3rl_jax.replay import Transition

LearnerState = DDPGState | TD3State | SeededState
LEARNERS = {"ddpg": (DDPG, DDPGConfig), "td3": (TD3, TD3Config)}


class Learner(Protocol):
    config: DDPGConfig
    obs_dim: int
    act_dim: int
    actor: Any  # the policy network (flax module)

    def init(self, key: jax.Array, n_agents: int) -> LearnerState: ...

    def act(self, state: LearnerState, obs: jax.Array) -> jax.Array: ...

    def update(
        self, state: LearnerState, batch: Transition, datum: jax.Array
    ) -> tuple[LearnerState, dict]: ...


def learner_names() -> list[str]:
    return sorted(LEARNERS)


def make_learner(
    name: str, config, obs_dim: int, act_dim: int, seed_sampling: tuple[float, float] | None = None
):
    """The learner `name` with its config (a `DDPGConfig` or `TD3Config`), wrapped by seed
    sampling when given its (prior weight, reward-noise std)."""
    check(name in LEARNERS, "learner", name, f"one of {learner_names()}")
    learner = LEARNERS[name][0](config, obs_dim, act_dim)
    return learner if seed_sampling is None else SeedSampling(learner, *seed_sampling)
