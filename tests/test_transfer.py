"""Transportability: the saved mechanism model, greedy evaluation, `transfer` and warm starts."""

import dataclasses
import io
import json

import jax
import numpy as np
import pytest
from conftest import TINY

from c3rl_jax import ConfigError, Results, TrainConfig, custom_population, train
from c3rl_jax.analysis.evaluation import greedy_returns
from c3rl_jax.analysis.transfer import load_model, seeded_buffer, transfer, warm_start
from c3rl_jax.causal import fit_gppom, sharing_from_theta, two_mechanism_data
from c3rl_jax.causal.mechanisms import MechanismModel
from c3rl_jax.causal.methods import GPPOMEncoder
from c3rl_jax.cli import main
from c3rl_jax.envs.ar import ACTION_COST, AutoregressiveControl
from c3rl_jax.envs.pendulum import WindyPendulum
from c3rl_jax.learners.ddpg import DDPG, DDPGConfig
from c3rl_jax.population import broadcast_params
from c3rl_jax.replay import Transition
from c3rl_jax.training import load_run


@pytest.fixture(scope="module")
def c3rl_run(tmp_path_factory):
    """A tiny c3rl run with a saved model and checkpoint: 6 pendulum agents, 2 rebuilds."""
    out = tmp_path_factory.mktemp("c3rl_run")
    config = dict(TINY, n_agents=6, episodes=4, episodes_per_chunk=2, rebuild_every=2)
    train(TrainConfig(**config, sharing="c3rl", out_dir=str(out)))
    return out


def test_saved_model_places_new_data_of_each_mechanism_on_its_own_component():
    data = two_mechanism_data(jax.random.key(0), n_per=50)
    x, y, labels = map(np.asarray, data)
    fit = fit_gppom(x, y, jax.random.key(0))
    ids = np.arange(x.shape[0])  # every sample its own "agent"
    clusters = sharing_from_theta(fit.theta, ids, ids.size, n_components=2, seed=0)
    file = io.BytesIO()
    MechanismModel("anm_mm", GPPOMEncoder(fit), clusters.gmm, clusters.V, x, y, ids).save(file)
    file.seek(0)
    model = MechanismModel.load(file)
    # the loaded encoder reproduces the fitted theta from the saved training data
    assert model.method == "anm_mm"
    np.testing.assert_allclose(model.encoder.encode(model.x, model.y), fit.theta, atol=1e-5)
    new_x, new_y, new_labels = map(np.asarray, two_mechanism_data(jax.random.key(1), n_per=50))
    for mechanism in (0, 1):
        component = np.bincount(clusters.agent_labels[labels == mechanism]).argmax()
        mine = new_labels == mechanism
        posterior = model.posterior(new_x[mine], new_y[mine])
        assert posterior.shape == (2,)
        np.testing.assert_allclose(posterior.sum(), 1.0, rtol=1e-6)
        assert posterior[component] > 0.8


def test_greedy_returns_match_the_closed_form_of_constant_actions():
    # ar with phi1 = phi2 = sigma = 0: s_{t+1} = beta * c under the constant action c, so each
    # of the 100 steps earns -(beta c - omega)^2 - ACTION_COST c^2 whatever the reset.
    env = AutoregressiveControl()
    base = env.default_params.replace(phi1=0.0, phi2=0.0, sigma=0.0)
    betas, omegas, actions = np.array([0.5, -1.0]), np.array([1.0, 0.3]), np.array([0.2, -0.7])
    params = broadcast_params(base, 2, {"beta": betas, "omega": omegas})
    ddpg = DDPG(DDPGConfig(hidden=(4,)), obs_dim=2, act_dim=1)
    actors = ddpg.init(jax.random.key(0), 2).actor
    actors = jax.tree.map(np.zeros_like, actors)  # zero weights: the output is tanh(last bias)
    last = sorted(actors["params"])[-1]
    actors["params"][last]["bias"] = np.arctanh(actions)[:, None].astype(np.float32)
    got = greedy_returns(env, ddpg, actors, params, jax.random.key(1), episodes=3)
    c, b, w = actions[:, None], betas[None, :], omegas[None, :]
    want = 100 * (-((b * c - w) ** 2) - ACTION_COST * c**2)  # [policy, environment]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_transfer_returns_a_posterior_predictions_and_the_best_predicted_policy(c3rl_run):
    model = load_model(c3rl_run)
    assert model.method == "agent_gp"  # c3rl's default
    result = transfer(c3rl_run, {"w": 0.5}, n_transitions=30, evaluate=True)
    k = model.n_components
    assert result.posterior.shape == (k,)
    np.testing.assert_allclose(result.posterior.sum(), 1.0, rtol=1e-6)
    assert result.mechanism_returns.shape == (6, k)
    np.testing.assert_allclose(
        result.predicted_returns, result.mechanism_returns @ result.posterior
    )
    assert result.recommended == int(np.argmax(result.predicted_returns))
    assert result.actual_returns.shape == (6,)
    assert result.transitions.obs.shape == (30, 3)
    again = transfer(Results.load(c3rl_run), {"w": 0.5}, n_transitions=30)  # a run's Results
    np.testing.assert_array_equal(again.posterior, result.posterior)  # same seed, same result
    json.dumps(result.to_dict())


@pytest.mark.parametrize("mechanism", ["agent_gp", "anm_mm", "sysid"])
def test_every_mechanism_method_saves_a_model_that_transfer_uses(mechanism, tmp_path):
    config = dict(TINY, n_agents=6, episodes=2, episodes_per_chunk=2, rebuild_every=2)
    sharing = "sysid" if mechanism == "sysid" else "c3rl"
    train(TrainConfig(**config, sharing=sharing, mechanism=mechanism, out_dir=str(tmp_path)))
    model = load_model(tmp_path)
    assert model.method == mechanism
    # an agent's own transitions, placed again, land where the fit put that agent: exactly for
    # anm_mm and sysid; agent_gp refits the new latent, which must come out nearest the agent's
    # own fitted latent (the mixture's components can be narrower than that difference), up to
    # 1% of the latents' range: two agents may sit 0.004 apart
    for n in range(6):
        mine = model.agent_ids == n
        if mechanism == "agent_gp":
            placed = model.encoder.encode(model.x[mine], model.y[mine])[0]
            fitted = np.asarray(model.encoder.fit.theta)
            dist = np.linalg.norm(fitted - placed, axis=1)
            assert dist[n] <= np.delete(dist, n).min() + 0.01 * np.ptp(fitted)
        else:
            posterior = model.posterior(model.x[mine], model.y[mine])
            np.testing.assert_allclose(posterior, model.assignments[n], atol=1e-5)
    result = transfer(tmp_path, {"w": 0.5}, n_transitions=30)
    assert result.posterior.shape == (model.n_components,)
    np.testing.assert_allclose(result.posterior.sum(), 1.0, rtol=1e-6)


def test_warm_start_trains_one_agent_from_the_recommended_policy(c3rl_run):
    result = transfer(c3rl_run, {"w": -1.0}, n_transitions=20)
    results = warm_start(
        c3rl_run, {"w": -1.0}, result, episodes=2, mechanism_replay=True, progress=False
    )
    assert results.returns.shape == (1, 2)
    assert results.config["warmup_steps"] == 0 and results.config["n_agents"] == 1
    with pytest.raises(ConfigError, match="result=.*a transfer result for"):
        warm_start(c3rl_run, {"w": 1.0}, result, episodes=2, progress=False)


def test_train_starts_from_the_given_agents_and_buffer(tiny_config, tmp_path):
    # learning rates of 1e-30 leave the networks as they were: the checkpoint shows the start
    config = dataclasses.replace(
        tiny_config,
        n_agents=1,
        episodes=1,
        warmup_steps=0,
        actor_lr=1e-30,
        critic_lr=1e-30,
        out_dir=str(tmp_path),
    )
    population = custom_population(WindyPendulum().default_params, {"w": [0.5]})
    ddpg = DDPG(config.resolved().learner_config, obs_dim=3, act_dim=1)
    agents = ddpg.init(jax.random.key(5), 1)
    ones = np.ones((10,), np.float32)
    seed_data = Transition(
        7 * ones[:, None].repeat(3, 1),
        0 * ones[:, None],
        ones,
        ones[:, None].repeat(3, 1),
        ones.astype(bool),
        ~ones.astype(bool),
    )
    train(config, population, initial_agents=agents, initial_buffer=seeded_buffer(512, [seed_data]))
    saved = load_run(str(tmp_path)).state
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-20), saved.agents.actor, agents.actor
    )
    np.testing.assert_array_equal(saved.buffer.data.obs[0, :10], 7.0)
    assert int(saved.buffer.fill[0]) == 10 + 200  # the seeded rows, then one pendulum episode
    with pytest.raises(ConfigError, match="initial_agents=.*structure, shapes and dtypes"):
        train(config, population, initial_agents=ddpg.init(jax.random.key(5), 2))


def test_bad_transfer_inputs_are_clear_errors(c3rl_run, tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="param name='wind' is invalid: a parameter of pendulum"):
        transfer(c3rl_run, {"wind": 0.5})
    with pytest.raises(ConfigError, match="param name='max_steps_in_episode' is invalid"):
        transfer(c3rl_run, {"max_steps_in_episode": 10})  # static, not a physics parameter
    with pytest.raises(ConfigError, match="param w=nan is invalid"):
        transfer(c3rl_run, {"w": float("nan")})
    with pytest.raises(ConfigError, match="behaviour='greedy' is invalid"):
        transfer(c3rl_run, {"w": 0.5}, behaviour="greedy")
    plain = tmp_path / "individual"
    train(dataclasses.replace(tiny_config, out_dir=str(plain)))
    with pytest.raises(ConfigError, match="no fitted mechanism model"):
        transfer(plain, {"w": 0.5})
    unsaved = Results.load(plain)
    unsaved = dataclasses.replace(unsaved, config={**unsaved.config, "out_dir": None})
    with pytest.raises(ConfigError, match="results.config.out_dir=None is invalid"):
        transfer(unsaved, {"w": 0.5})


def test_transfer_cli_writes_json_and_reports_bad_params(c3rl_run, tmp_path, capsys):
    out = tmp_path / "placed"
    argv = ["transfer", "--run", str(c3rl_run), "--param", "w=0.8", "--transitions", "20"]
    assert main([*argv, "--evaluate", "--out", str(out)]) == 0
    saved = json.loads((out / "transfer.json").read_text())
    assert saved["params"] == {"w": 0.8} and len(saved["actual_returns"]) == 6
    assert saved["behaviour"] == "policies" and saved["n_transitions"] == 20
    assert f"recommended policy: agent {saved['recommended']}" in capsys.readouterr().out
    assert main([*argv, "--behaviour", "random", "--out", str(out)]) == 0
    assert json.loads((out / "transfer.json").read_text())["behaviour"] == "random"
    assert main([*argv, "--behaviour", "walk"]) == 2
    assert "behaviour='walk' is invalid: one of ('policies', 'random')" in capsys.readouterr().err
    assert main(["transfer", "--run", str(c3rl_run), "--param", "w"]) == 2
    assert "param='w' is invalid: expected NAME=NUMBER" in capsys.readouterr().err
    assert main(["transfer", "--run", str(c3rl_run), "--task", "ar", "--param", "w=1"]) == 2
    assert "task='ar' is invalid: the run in" in capsys.readouterr().err
