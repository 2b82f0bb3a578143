"""Sharing rebuilt every K episodes (c3rl and the sysid ablation) inside the training loop."""

import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax import train
from c3rl_jax.causal import methods
from c3rl_jax.replay import Transition, add, init_buffer
from c3rl_jax.sharing.adaptive import recent_transitions


def adaptive_config(tiny_config, sharing):
    return dataclasses.replace(
        tiny_config,
        sharing=sharing,
        episodes=4,
        episodes_per_chunk=3,
        rebuild_every=2,
        rebuild_samples=8,
        n_clusters=2,
    )


@pytest.mark.parametrize("sharing", ["c3rl", "sysid"])
def test_p_is_identity_until_the_first_rebuild_then_rebuilt_every_k(tiny_config, sharing):
    results = train(adaptive_config(tiny_config, sharing))
    p = results.sharing  # [E, N, N]
    np.testing.assert_array_equal(p[0], np.eye(3))
    np.testing.assert_array_equal(p[1], np.eye(3))
    rebuilds = results.extra["rebuilds"]
    assert [r["episode"] for r in rebuilds] == [2, 4]
    assert all("ari" in r and -1 <= r["ari"] <= 1 and len(r["labels"]) == 3 for r in rebuilds)
    np.testing.assert_allclose(p[2:].sum(axis=2), 1.0, rtol=1e-5)
    v = np.array(rebuilds[0]["assignments"])  # [N, K]
    np.testing.assert_allclose(v.sum(axis=1), 1.0, atol=1e-5)
    s = v @ v.T
    np.testing.assert_allclose(p[2], s / s.sum(axis=1, keepdims=True), atol=1e-4)
    assert results.sharing_index.tolist() == [0, 0, 1, 1]


def test_a_failed_fit_keeps_the_previous_p_and_warns(tiny_config, monkeypatch):
    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("singular")

    method = dataclasses.replace(methods.get_mechanism("anm_mm"), fit=broken)
    monkeypatch.setitem(methods._MECHANISMS._entries, "anm_mm", method)
    config = dataclasses.replace(adaptive_config(tiny_config, "c3rl"), mechanism="anm_mm")
    with pytest.warns(RuntimeWarning, match="anm_mm rebuild failed .*singular.* keeping"):
        results = train(config)
    np.testing.assert_array_equal(results.sharing, np.broadcast_to(np.eye(3), (4, 3, 3)))
    assert results.extra["rebuilds"] == [
        {"episode": 2, "failed": True},
        {"episode": 4, "failed": True},
    ]


def test_recent_transitions_draws_distinct_recent_steps_of_every_agent():
    buffer = init_buffer(2, 50, obs_dim=1, act_dim=1)
    for t in range(30):
        v = jnp.array([t, 100 + t], jnp.float32)
        buffer = add(
            buffer,
            Transition(
                v[:, None], v[:, None], v, v[:, None] + 1, jnp.zeros(2, bool), jnp.zeros(2, bool)
            ),
        )
    x, y, ids = recent_transitions(buffer, m=5, window=10, key=jax.random.PRNGKey(0))
    assert x.shape == (10, 2) and y.shape == (10, 2) and ids.tolist() == [0] * 5 + [1] * 5
    steps = x[:5, 0]
    assert len(set(steps)) == 5 and steps.min() >= 20 and steps.max() <= 29
    np.testing.assert_array_equal(x[5:, 0], steps + 100)  # the same slots for every agent
    np.testing.assert_array_equal(y[:, 0], 1.0)  # obs' - obs
    np.testing.assert_array_equal(y[:, 1], x[:, 0])  # reward
    # half among the window's oldest steps (a warm-up of 10), half among the steps after them
    x, _, _ = recent_transitions(buffer, m=6, window=30, key=jax.random.PRNGKey(1), oldest=10)
    steps = x[:6, 0]
    assert len(set(steps)) == 6 and np.sum(steps < 10) == 3
    # too few steps after the warm-up for their half (2 < 3), or a warm-up shorter than its
    # half: the whole window, as without one
    for window, oldest in [(12, 10), (30, 2)]:
        key = jax.random.PRNGKey(2)
        got = recent_transitions(buffer, m=6, window=window, key=key, oldest=oldest)[0]
        np.testing.assert_array_equal(got, recent_transitions(buffer, 6, window, key)[0])


def test_the_warmup_counts_while_the_buffer_holds_it(tiny_config):
    from c3rl_jax.training import _warmup_held

    config = dataclasses.replace(tiny_config, sharing="c3rl").resolved()  # warm-up 100 steps
    assert _warmup_held(config, 512, 512) == 100
    assert _warmup_held(config, 513, 512) == 0  # overwritten
    assert _warmup_held(dataclasses.replace(config, rebuild_window=2), 300, 512) == 0
    assert _warmup_held(dataclasses.replace(config, rebuild_warmup=False), 300, 512) == 0


def test_sysid_recovers_linear_mechanisms():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    ids = np.repeat(np.arange(3), 20)
    slopes = np.array([1.0, 1.0, -2.0])[ids]
    y = (slopes * x[:, 0])[:, None]
    fit = methods.fit_sysid(x, y, ids, 3, None, None, {})
    theta = fit.theta  # [3, (2 + 1) * 1], standardised per coefficient
    assert theta.shape == (3, 3) and fit.point_agents.tolist() == [0, 1, 2]
    np.testing.assert_allclose(theta[0], theta[1], atol=1e-6)
    assert np.abs(theta[0] - theta[2]).max() > 1
    # a new environment's coefficients, standardised as the fitted agents' were
    np.testing.assert_allclose(fit.encoder.encode(x[ids == 2], y[ids == 2])[0], theta[2], atol=1e-6)


@pytest.mark.parametrize("window, episodes", [(None, 6), (1, 6), (None, 5)])
def test_rebuild_samples_come_from_the_window(tiny_config, tmp_path, window, episodes):
    """window None: anywhere in the buffer, half from the warm-up (the first 100 steps) while
    the buffer holds it (5 episodes of ar's 100 steps in 512 slots), not after it wrapped (6);
    1: the last episode only."""
    from c3rl_jax.training import load_run

    seen = []
    base = methods.get_mechanism("sysid")

    def recording(x, y, ids, n, key, steps, carry):
        seen.append((x, ids))
        return base.fit(x, y, ids, n, key, steps, carry)

    methods.register_mechanism(dataclasses.replace(base, name="sysid_recorded", fit=recording))
    config = dataclasses.replace(
        adaptive_config(tiny_config, "c3rl"), task="ar", episodes=episodes,
        rebuild_every=episodes, rebuild_window=window, mechanism="sysid_recorded",
        out_dir=str(tmp_path), checkpoint_every=episodes, rebuild_samples=30,
    )  # fmt: skip
    train(config)
    buffer = load_run(str(tmp_path)).state.buffer  # 512 slots, 100 steps per episode
    ((x, ids),) = seen
    stored = np.concatenate([buffer.data.obs, buffer.data.action], axis=-1)  # [N, 512, d]
    ages = []
    for row, agent in zip(x, ids, strict=True):
        slot = np.flatnonzero(np.all(stored[agent] == row, axis=1))[0]
        ages.append((int(buffer.ptr) - 1 - slot) % 512)
    ages = np.array(ages)
    if window == 1:
        assert ages.max() < 100
    elif episodes == 5:  # slots 0-99, the warm-up, are ages 400-499
        assert np.sum(ages >= 400) == len(ages) // 2 and ages.max() < 500  # 15 per agent
    else:
        assert ages.max() >= 100 and ages.max() < 512


def test_rebuild_draws_are_distinct_uniform_and_compile_once_for_every_window():
    from c3rl_jax.sharing.adaptive import _distinct_ages

    counts, compiled = np.zeros(40), _distinct_ages._cache_size()
    for i, window in enumerate([40, 39, 25, 40, 33] * 40):
        ages = np.asarray(_distinct_ages(jax.random.PRNGKey(i), window, 64, 10))
        assert len(set(ages.tolist())) == 10 and ages.min() >= 0 and ages.max() < window
        if window == 40:
            counts += np.bincount(ages, minlength=40)
    assert _distinct_ages._cache_size() <= compiled + 1  # one program for these shapes
    # 80 draws of 10 among 40: each age expected 20 times; a chi-square far beyond chance fails
    chi2 = np.sum((counts - 20) ** 2 / 20)
    assert chi2 < 80  # 39 degrees of freedom: p < 1e-4 above about 80


@pytest.mark.parametrize(
    "mechanism, module, program, name, samples, seeds",
    [
        ("agent_gp", "agent_gp", "_fit_jit", "_fit_core", 7, 1),
        ("agent_gp", "agent_gp", "_fit_batch_jit", "_fit_core", 11, 2),  # the replicas' batch
        ("anm_mm", "gppom", "_fit_jit", "fit_gppom_arrays", 9, 1),
    ],
)
def test_the_first_rebuild_finds_its_fit_compiled_by_the_precompile_thread(
    tiny_config, caplog, mechanism, module, program, name, samples, seeds
):
    import importlib

    from c3rl_jax.sharing.adaptive import precompile_draws, precompile_fit

    fit_jit = getattr(importlib.import_module(f"c3rl_jax.causal.{module}"), program)
    # shapes no other test uses (7, 9 or 11 samples per agent), so the compiles are this
    # test's own
    config = dataclasses.replace(
        tiny_config, sharing="c3rl", mechanism=mechanism, rebuild_every=1, rebuild_samples=samples,
        rebuild_fit_steps=5, episodes=1, seeds=seeds,
    ).resolved()  # fmt: skip

    def compiles(fn):  # JAX's "Compiling jit(FN) ..." log lines so far
        return sum(r.getMessage().startswith(f"Compiling jit({fn})") for r in caplog.records)

    size = fit_jit._cache_size()
    buffer = init_buffer(config.n_agents, config.buffer_size, 3, 1)  # a run's, before its chunks
    drawing = ("_distinct_ages", "_take_slots", "_mixture_seed")
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            precompile_fit(config, 3, 1).join()
            precompile_draws(config, buffer).join()
            ahead = [compiles(fn) for fn in (name, *drawing)]
            called = fit_jit._cache_size() - size  # a call (not a compile) fills this cache
            caplog.clear()
            results = train(config)
            results = results[0] if seeds > 1 else results
            during = [compiles(fn) for fn in (name, *drawing)]
    finally:
        jax.config.update("jax_log_compiles", False)
    # the thread compiled the fit, the draws (the whole and its halves), the gather of the
    # drawn slots and the mixture's seed (those perhaps by an earlier test), and ran none
    assert ahead[0] == 1 and called == 0
    assert "labels" in results.extra["rebuilds"][0]  # the rebuild ran its fit
    assert during == [0] * 4, dict(zip((name, *drawing), during, strict=True))  # and compiled none
    assert fit_jit._cache_size() == size + 1  # one program


@pytest.mark.parametrize("sharing, want", [("c3rl", ["fit", "build"]), ("oracle", ["build"])])
def test_the_fit_starts_compiling_before_the_run_is_built(tiny_config, monkeypatch, sharing, want):
    """A run that will rebuild starts its fit's compile first (building the agents takes
    seconds; the first rebuild waits for that compile), and only such a run."""
    from c3rl_jax import training

    order = []
    fit, build = training.precompile_fit, training._build
    monkeypatch.setattr(training, "precompile_fit", lambda *a: order.append("fit") or fit(*a))
    monkeypatch.setattr(training, "_build", lambda *a: order.append("build") or build(*a))
    train(adaptive_config(tiny_config, sharing))
    assert order == want
