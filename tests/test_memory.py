import jax
import pytest

from c3rl_jax import ConfigError, TrainConfig, train
from c3rl_jax.learners import make_learner
from c3rl_jax.learners.td3 import TD3Config
from c3rl_jax.replay import init_buffer
from c3rl_jax.runtime.memory import check_fits, learner_bytes_per_agent, replay_bytes_per_agent


def tree_bytes(tree) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(tree))


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int) -> int:
    widths = [n_in, *hidden, n_out]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True))


@pytest.mark.parametrize("name", ["ddpg", "td3"])
def test_estimates_match_the_bytes_actually_allocated_and_a_hand_count(name):
    n, capacity, obs_dim, act_dim, hidden = 3, 50, 5, 2, (16, 8)
    buffer = init_buffer(n, capacity, obs_dim, act_dim)
    assert replay_bytes_per_agent(capacity, obs_dim, act_dim) * n == tree_bytes(buffer.data)
    config = TD3Config(hidden=hidden)
    learner = make_learner(name, config, obs_dim, act_dim, seed_sampling=(1.0, 0.1))
    agents = learner.init(jax.random.PRNGKey(0), n)
    assert learner_bytes_per_agent(learner) * n == tree_bytes(agents)
    # by hand: actor x4 (online, target, Adam's two moments), critic x4 per twin, one prior
    # critic, a PRNG key (2 uint32) for the reward noise, Adam's step counts (2 int32); TD3
    # adds a step counter and a key for its smoothing noise
    actor, critic = _mlp(obs_dim, hidden, act_dim), _mlp(obs_dim + act_dim, hidden, 1)
    twins = 2 if name == "td3" else 1
    floats = 4 * actor + 4 * twins * critic + critic
    extra = 2 + 2 + (3 if name == "td3" else 0)
    assert learner_bytes_per_agent(learner) == 4 * (floats + extra)


def test_a_run_too_large_for_memory_is_refused_before_allocation():
    with pytest.raises(ConfigError, match=r"n_agents=20 is invalid: the run needs about .* GiB"):
        check_fits(20, 2**50, jax.devices()[0])
    with pytest.raises(ConfigError, match="lower n_agents or buffer_size"):
        train(TrainConfig(n_agents=20, buffer_size=10**9, episodes=1, progress=False))
