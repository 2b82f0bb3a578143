"""The DDPG update against a hand computation on linear networks.

With no hidden layers the actor is a = tanh(s W + b) and the critic Q(s, a) = [s, a] w + c, so
TD targets, losses and gradients have closed forms (NumPy, float64 below). Adam's first step
moves every parameter by lr * g / (|g| + eps), which makes each step checkable as well.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax.learners.ddpg import DDPG, DDPGConfig, DDPGState, datum_noise
from c3rl_jax.learners.seed_sampling import SeededState, SeedSampling
from c3rl_jax.replay import Transition

LR, TAU, GAMMA = 0.01, 0.1, 0.9
ADAM_EPS = 1e-8

RNG = np.random.default_rng(0)
S = RNG.normal(size=(4, 2))  # [B, obs_dim]
A = RNG.uniform(-1, 1, size=(4, 1))  # [B, act_dim]
R = RNG.normal(size=4)
S2 = RNG.normal(size=(4, 2))
TERMINATED = np.array([0.0, 1.0, 0.0, 1.0])
ACTOR = (np.array([[0.3], [-0.2]]), np.array([0.1]))  # (W [2, 1], b [1])
TARGET_ACTOR = (np.array([[-0.4], [0.5]]), np.array([-0.2]))
CRITIC = (np.array([[0.5], [-1.0], [0.8]]), np.array([0.2]))  # (w [3, 1], c [1])
TARGET_CRITIC = (np.array([[0.1], [0.7], [-0.6]]), np.array([-0.3]))
PRIORS = [  # one prior critic per agent (seed sampling)
    (np.array([[1.0], [0.5], [-2.0]]), np.array([0.4])),
    (np.array([[-0.7], [0.2], [1.5]]), np.array([-0.1])),
]


def linear(*per_agent) -> dict:
    """Flax parameters of a no-hidden-layer network, one (kernel, bias) per agent."""
    kernel = jnp.asarray(np.stack([k for k, _ in per_agent]), jnp.float32)
    bias = jnp.asarray(np.stack([b for _, b in per_agent]), jnp.float32)
    return {"params": {"Dense_0": {"kernel": kernel, "bias": bias}}}


def unpack(params: dict, agent: int = 0) -> tuple[np.ndarray, np.ndarray]:
    layer = params["params"]["Dense_0"]
    return np.asarray(layer["kernel"][agent], np.float64), np.asarray(layer["bias"][agent])


def make_state(ddpg: DDPG, n_agents: int = 1) -> DDPGState:
    actor, critic = linear(*[ACTOR] * n_agents), linear(*[CRITIC] * n_agents)
    return DDPGState(
        actor=actor,
        critic=critic,
        target_actor=linear(*[TARGET_ACTOR] * n_agents),
        target_critic=linear(*[TARGET_CRITIC] * n_agents),
        actor_opt=jax.vmap(ddpg.actor_tx.init)(actor),
        critic_opt=jax.vmap(ddpg.critic_tx.init)(critic),
    )


def batch_of(n_agents: int = 1, terminated=TERMINATED, truncated=None) -> Transition:
    tile = lambda x: jnp.asarray(np.broadcast_to(x, (n_agents, *np.shape(x))), jnp.float32)  # noqa: E731
    truncated = np.zeros(4) if truncated is None else truncated
    return Transition(
        obs=tile(S),
        action=tile(A),
        reward=tile(R),
        next_obs=tile(S2),
        terminated=tile(terminated).astype(bool),
        truncated=tile(truncated).astype(bool),
    )


def q(critic, s, a):
    w, c = critic
    return np.concatenate([s, a], axis=1) @ w[:, 0] + c[0]


def pi(actor, s):
    W, b = actor
    return np.tanh(s @ W + b)


def adam_first_step(param: np.ndarray, grad: np.ndarray) -> np.ndarray:
    return param - LR * grad / (np.abs(grad) + ADAM_EPS)


def td_target(terminated, reward=R, prior=None, scale=0.0):
    next_a = pi(TARGET_ACTOR, S2)
    next_q = q(TARGET_CRITIC, S2, next_a)
    if prior is not None:
        next_q = next_q + scale * q(prior, S2, next_a)
    return reward + GAMMA * (1.0 - terminated) * next_q


def ddpg_of(**options) -> DDPG:
    config = DDPGConfig(hidden=(), actor_lr=LR, critic_lr=LR, gamma=GAMMA, tau=TAU, **options)
    return DDPG(config, obs_dim=2, act_dim=1)


def run_update(ddpg, state, batch, datum=None):
    n_agents = batch.reward.shape[0]
    datum = jnp.zeros((n_agents, 4), jnp.int32) if datum is None else datum
    return jax.jit(ddpg.update)(state, batch, datum)


@pytest.mark.parametrize("terminated", [np.zeros(4), np.ones(4), TERMINATED])
def test_critic_loss_and_step_use_the_td_target_masked_by_terminated(terminated):
    ddpg = ddpg_of()
    new, metrics = run_update(ddpg, make_state(ddpg), batch_of(terminated=terminated))
    residual = q(CRITIC, S, A) - td_target(terminated)
    np.testing.assert_allclose(metrics["critic_loss"][0], np.mean(residual**2), rtol=1e-5)
    features = np.concatenate([S, A], axis=1)
    grad_w = np.mean(2 * residual[:, None] * features, axis=0)[:, None]
    grad_c = np.array([np.mean(2 * residual)])
    w, c = unpack(new.critic)
    np.testing.assert_allclose(w, adam_first_step(CRITIC[0], grad_w), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, adam_first_step(CRITIC[1], grad_c), rtol=1e-5, atol=1e-6)


def test_truncated_has_no_effect_on_the_update():
    ddpg = ddpg_of()
    state = make_state(ddpg)
    a = run_update(ddpg, state, batch_of(truncated=np.zeros(4)))
    b = run_update(ddpg, state, batch_of(truncated=np.ones(4)))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_actor_step_climbs_the_updated_critic():
    ddpg = ddpg_of()
    new, metrics = run_update(ddpg, make_state(ddpg), batch_of())
    critic = unpack(new.critic)
    a = pi(ACTOR, S)
    np.testing.assert_allclose(metrics["actor_loss"][0], -np.mean(q(critic, S, a)), rtol=1e-5)
    # d(-mean Q(s, tanh(s W + b))) / d(W, b) with dQ/da = w_a of the updated critic
    dq_da = critic[0][2, 0]
    local = -dq_da * (1 - a[:, 0] ** 2)  # [B]
    grad_W = np.mean(local[:, None] * S, axis=0)[:, None]
    grad_b = np.array([np.mean(local)])
    W, b = unpack(new.actor)
    np.testing.assert_allclose(W, adam_first_step(ACTOR[0], grad_W), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, adam_first_step(ACTOR[1], grad_b), rtol=1e-5, atol=1e-6)
    assert np.mean(q(critic, S, pi((W, b), S))) > np.mean(q(critic, S, a))


def test_targets_move_by_exact_polyak_averaging():
    ddpg = ddpg_of()
    new, _ = run_update(ddpg, make_state(ddpg), batch_of())
    for target, online, old in (
        (new.target_critic, new.critic, TARGET_CRITIC),
        (new.target_actor, new.actor, TARGET_ACTOR),
    ):
        for t, o, prev in zip(unpack(target), unpack(online), old, strict=True):
            np.testing.assert_allclose(t, (1 - TAU) * prev + TAU * o, rtol=1e-5, atol=1e-7)


def test_seed_sampling_prior_enters_value_and_target_and_noise_enters_the_target():
    scale, noise = 2.0, 0.5
    ddpg = ddpg_of()
    seeded = SeedSampling(ddpg, scale, noise)
    seeds = jax.random.split(jax.random.PRNGKey(7), 2)
    state = SeededState(make_state(ddpg, 2), linear(*PRIORS), seeds)
    datum = jnp.array([[3, 17, 40, 41], [3, 17, 40, 41]], jnp.int32)
    _, metrics = run_update(seeded, state, batch_of(2), datum)
    for agent, prior in enumerate(PRIORS):
        eps = np.asarray(datum_noise(seeds[agent], datum[agent]), np.float64)
        target = td_target(TERMINATED, R + noise * eps, prior, scale)
        value = q(CRITIC, S, A) + scale * q(prior, S, A)
        np.testing.assert_allclose(
            metrics["critic_loss"][agent], np.mean((value - target) ** 2), rtol=1e-5
        )
    assert not np.isclose(metrics["critic_loss"][0], metrics["critic_loss"][1])
