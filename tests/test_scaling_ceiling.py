"""The scaling benchmark's FLOP count of a learner update against a hand count."""

from benchmarks.scaling import update_flops
from c3rl_jax.learners import make_learner
from c3rl_jax.learners.ddpg import DDPGConfig


def matmul_flops(obs_dim: int, act_dim: int, hidden: tuple, batch: int) -> int:
    """FLOPs of the matrix products in one DDPG update, counted by hand per batch row: target
    actor and target critic forward; critic forward, weight gradients and input gradients
    (none into the data of its first layer); actor forward, critic forward and its input
    gradients down to the action, actor weight gradients and input gradients (none into obs)."""

    def macs(widths):
        return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))

    actor = macs((obs_dim, *hidden, act_dim))
    critic = macs((obs_dim + act_dim, *hidden, 1))
    first_actor, first_critic = obs_dim * hidden[0], (obs_dim + act_dim) * hidden[0]
    per_row = 4 * actor + 6 * critic - first_actor - first_critic
    return 2 * batch * per_row


def test_update_flops_are_the_networks_matrix_products_plus_a_little():
    learner = make_learner("ddpg", DDPGConfig(batch_size=64, hidden=(64, 64)), 3, 1)
    counted = update_flops(learner, n_agents=4)
    by_hand = matmul_flops(3, 1, (64, 64), 64)
    assert by_hand <= counted <= 1.1 * by_hand  # the rest: Adam, activations, losses
