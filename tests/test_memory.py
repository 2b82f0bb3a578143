import jax
import pytest

from c3rl_jax import ConfigError, TrainConfig, train
from c3rl_jax.agents.ddpg import DDPG, DDPGConfig
from c3rl_jax.memory import check_fits, learner_bytes_per_agent, replay_bytes_per_agent
from c3rl_jax.replay import init_buffer


def tree_bytes(tree) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(tree))


def test_estimates_match_the_bytes_actually_allocated():
    n, capacity, obs_dim, act_dim, hidden = 3, 50, 5, 2, (16, 8)
    buffer = init_buffer(n, capacity, obs_dim, act_dim)
    assert replay_bytes_per_agent(capacity, obs_dim, act_dim) * n == tree_bytes(buffer.data)
    agents = DDPG(DDPGConfig(hidden=hidden, prior_scale=1.0), obs_dim, act_dim).init(
        jax.random.PRNGKey(0), n
    )
    counts = [x.size for x in jax.tree.leaves(agents.actor_opt)]
    assert sum(counts) > 0
    # Adam keeps two moments plus a step count per agent: the estimate covers the moments
    step_counts = sum(x.nbytes for x in jax.tree.leaves(agents.actor_opt) if x.ndim == 1)
    step_counts += sum(x.nbytes for x in jax.tree.leaves(agents.critic_opt) if x.ndim == 1)
    assert learner_bytes_per_agent(hidden, obs_dim, act_dim) * n == tree_bytes(agents) - step_counts


def test_a_run_too_large_for_memory_is_refused_before_allocation():
    with pytest.raises(ConfigError, match=r"n_agents=20 is invalid: the run needs about .* GiB"):
        check_fits(20, 2**50, jax.devices()[0])
    with pytest.raises(ConfigError, match="lower n_agents or buffer_size"):
        train(TrainConfig(n_agents=20, buffer_size=10**9, episodes=1, progress=False))
