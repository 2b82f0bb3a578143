"""The TD3 update against a hand computation on linear networks (as test_ddpg_update): twin
critics with the smaller target value, clipped target-action noise, delayed actor and
target updates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_ddpg_update import (
    ACTOR,
    CRITIC,
    GAMMA,
    LR,
    S2,
    TARGET_ACTOR,
    TARGET_CRITIC,
    TAU,
    TERMINATED,
    A,
    R,
    S,
    adam_first_step,
    batch_of,
    linear,
    pi,
    q,
    unpack,
)

from c3rl_jax.learners.td3 import TD3, TD3Config, TD3State

CRITIC_2 = (np.array([[-0.3], [0.4], [0.2]]), np.array([0.5]))
TARGET_CRITIC_2 = (np.array([[0.6], [-0.2], [0.9]]), np.array([0.1]))
NOISE, CLIP = 0.5, 0.1  # wide noise, tight clip: the clip binds on most rows


def twins(first, second) -> dict:
    """Twin critics of one agent: leaves [1, 2, ...]."""
    return jax.tree.map(lambda a, b: jnp.stack([a, b], axis=1), linear(first), linear(second))


def td3_of(delay=2) -> TD3:
    config = TD3Config(
        hidden=(), actor_lr=LR, critic_lr=LR, gamma=GAMMA, tau=TAU, policy_noise=NOISE,
        noise_clip=CLIP, policy_delay=delay,
    )  # fmt: skip
    return TD3(config, obs_dim=2, act_dim=1)


def make_state(td3: TD3, step=0) -> TD3State:
    actor, critic = linear(ACTOR), twins(CRITIC, CRITIC_2)
    return TD3State(
        actor=actor,
        critic=critic,
        target_actor=linear(TARGET_ACTOR),
        target_critic=twins(TARGET_CRITIC, TARGET_CRITIC_2),
        actor_opt=jax.vmap(td3.actor_tx.init)(actor),
        critic_opt=jax.vmap(td3.critic_tx.init)(critic),
        step=jnp.array([step], jnp.int32),
        key=jax.random.PRNGKey(7)[None],
    )


def twin(params, i):
    layer = params["params"]["Dense_0"]
    return np.asarray(layer["kernel"][0, i], np.float64), np.asarray(layer["bias"][0, i])


def run(td3, state):
    return jax.jit(td3.update)(state, batch_of(), jnp.zeros((1, 4), jnp.int32))


def smoothing_noise(step):
    """The noise the update draws: N(0, 1) from the agent's key folded with the step."""
    key = jax.random.fold_in(jax.random.PRNGKey(7), step)
    return np.asarray(jax.random.normal(key, (4, 1)), np.float64)


def test_target_takes_the_smaller_twin_at_a_clipped_noisy_target_action():
    td3 = td3_of()
    new, metrics = run(td3, make_state(td3, step=3))
    noise = np.clip(NOISE * smoothing_noise(3), -CLIP, CLIP)
    assert np.mean(np.abs(noise) == CLIP) >= 0.5  # the clip is exercised
    next_a = np.clip(pi(TARGET_ACTOR, S2) + noise, -1.0, 1.0)
    next_q = np.minimum(q(TARGET_CRITIC, S2, next_a), q(TARGET_CRITIC_2, S2, next_a))
    target = R + GAMMA * (1.0 - TERMINATED) * next_q
    features = np.concatenate([S, A], axis=1)
    loss = 0.0
    for i, critic in enumerate((CRITIC, CRITIC_2)):
        residual = q(critic, S, A) - target
        loss += np.mean(residual**2)
        grad_w = np.mean(2 * residual[:, None] * features, axis=0)[:, None]
        grad_c = np.array([np.mean(2 * residual)])
        w, c = twin(new.critic, i)
        np.testing.assert_allclose(w, adam_first_step(critic[0], grad_w), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c, adam_first_step(critic[1], grad_c), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["critic_loss"][0], loss, rtol=1e-5)


def test_actor_and_targets_move_every_policy_delay_steps_only():
    td3 = td3_of(delay=2)
    state = make_state(td3, step=0)
    after_0, _ = run(td3, state)  # step 0: due
    after_1, _ = run(td3, after_0)  # step 1: critics only
    after_2, _ = run(td3, after_1)  # step 2: due again
    assert [int(s.step[0]) for s in (after_0, after_1, after_2)] == [1, 2, 3]
    # step 0: the actor climbs critic 1 after its update (by hand, as for DDPG)
    critic_1 = twin(after_0.critic, 0)
    a = pi(ACTOR, S)
    local = -critic_1[0][2, 0] * (1 - a[:, 0] ** 2)
    grad_W = np.mean(local[:, None] * S, axis=0)[:, None]
    W, b = unpack(after_0.actor)
    np.testing.assert_allclose(W, adam_first_step(ACTOR[0], grad_W), rtol=1e-5, atol=1e-6)
    # targets: exact Polyak averages toward the new actor and both new critics
    W_t, _ = unpack(after_0.target_actor)
    np.testing.assert_allclose(W_t, (1 - TAU) * TARGET_ACTOR[0] + TAU * W, rtol=1e-5, atol=1e-7)
    for i, target in enumerate((TARGET_CRITIC, TARGET_CRITIC_2)):
        w_t, _ = twin(after_0.target_critic, i)
        w, _ = twin(after_0.critic, i)
        np.testing.assert_allclose(w_t, (1 - TAU) * target[0] + TAU * w, rtol=1e-5, atol=1e-7)
    # step 1: the critics moved, the actor, its optimiser and every target did not
    assert not np.allclose(twin(after_1.critic, 0)[0], twin(after_0.critic, 0)[0])
    for name in ("actor", "actor_opt", "target_actor", "target_critic"):
        for x, y in zip(
            jax.tree.leaves(getattr(after_1, name)),
            jax.tree.leaves(getattr(after_0, name)),
            strict=True,
        ):
            np.testing.assert_array_equal(x, y)
    # step 2: they move again
    assert not np.allclose(unpack(after_2.actor)[0], unpack(after_1.actor)[0])
    assert not np.allclose(unpack(after_2.target_actor)[0], unpack(after_1.target_actor)[0])


@pytest.mark.parametrize("delay", [1, 3])
def test_delay_one_updates_the_actor_every_step(delay):
    td3 = td3_of(delay=delay)
    after_0, _ = run(td3, make_state(td3, step=1))  # step 1: due only when delay is 1
    moved = not np.allclose(unpack(after_0.actor)[0], ACTOR[0])
    assert moved == (delay == 1)
