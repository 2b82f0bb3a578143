import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY
from flax import struct
from gymnax.environments import environment, spaces

from c3rl_jax import (
    ConfigError,
    Task,
    TrainConfig,
    custom_population,
    get_task,
    register_task,
    task_names,
    train,
)
from c3rl_jax.config import TUNABLE_DEFAULTS
from c3rl_jax.envs.ar import ARParams
from c3rl_jax.envs.cartpole_swingup import CartPoleParams
from c3rl_jax.errors import check
from c3rl_jax.population import grouped_population

NEW_TASKS = ("ar", "cartpole_swingup")
EVERY = [(name, reward) for name in ("pendulum", *NEW_TASKS) for reward in ("dense", "sparse")]


def test_the_registry_holds_every_task():
    assert {"pendulum", "ar", "cartpole_swingup"} <= set(task_names())


def test_unknown_task_is_a_clear_error_listing_the_tasks():
    with pytest.raises(ConfigError, match="task='cartpole'.*cartpole_swingup"):
        get_task("cartpole")
    with pytest.raises(ConfigError, match="task='cartpole'"):
        TrainConfig(task="cartpole").resolved()


@pytest.mark.parametrize("name", NEW_TASKS)
def test_unknown_reward_mode_is_a_clear_error(name):
    with pytest.raises(ConfigError, match="reward='shaped'.*dense"):
        TrainConfig(task=name, reward="shaped").resolved()
    with pytest.raises(ConfigError, match="reward='shaped'"):
        get_task(name).make_env("shaped")


@pytest.mark.parametrize("name", NEW_TASKS)
def test_task_defaults_fill_unset_settings_and_the_user_overrides_them(name):
    task = get_task(name)
    assert set(task.defaults) <= set(TUNABLE_DEFAULTS)
    assert {"episodes", "hidden", "actor_lr", "critic_lr"} <= set(task.defaults)
    config = TrainConfig(task=name, reward="sparse").resolved()
    for key, value in task.defaults.items():
        expected = tuple(value) if key == "hidden" else value
        assert getattr(config, key) == expected, key
    config = TrainConfig(task=name, episodes=3, hidden=(8, 8), actor_lr=1e-5).resolved()
    assert (config.episodes, config.hidden, config.actor_lr) == (3, (8, 8), 1e-5)


@pytest.mark.parametrize(("name", "reward"), EVERY)
def test_every_task_steps_its_default_population_with_one_vmap(name, reward):
    task = get_task(name)
    env = task.make_env(reward)
    assert env.reward_mode == reward
    pop = task.make_population(jax.random.PRNGKey(0), 20)
    task.validate_params(pop.params)
    assert all(leaf.shape == (20,) for leaf in jax.tree.leaves(pop.params))
    obs_dim = env.observation_space(env.default_params).shape[0]
    high = jax.vmap(lambda p: jnp.asarray(env.action_space(p).high))(pop.params)
    keys = jax.random.split(jax.random.PRNGKey(1), 20)
    obs, state = jax.vmap(env.reset_env)(keys, pop.params)
    assert obs.shape == (20, obs_dim)
    actions = jax.random.uniform(jax.random.PRNGKey(2), (20, 1), minval=-1, maxval=1)
    obs, state, reward_, terminated, _ = jax.vmap(env.step_env)(
        keys, state, actions * high.reshape(20, -1), pop.params
    )
    assert obs.shape == (20, obs_dim) and reward_.shape == (20,)
    assert np.all(np.isfinite(np.asarray(obs))) and np.all(np.isfinite(np.asarray(reward_)))
    assert not np.any(np.asarray(terminated))
    if reward == "sparse":
        assert set(np.unique(np.asarray(reward_))) <= {0.0, 1.0}


def test_default_populations_differ_between_groups_in_the_promised_fields():
    ar = get_task("ar").make_population(jax.random.PRNGKey(0), 20)
    cp = get_task("cartpole_swingup").make_population(jax.random.PRNGKey(0), 20)
    for pop, fields in ((ar, ("phi1", "phi2", "beta", "omega")), (cp, ("half_length", "masspole"))):
        groups = np.asarray(pop.groups)
        for field in fields:
            value = np.asarray(getattr(pop.params, field))
            between = np.std([value[groups == g].mean() for g in range(3)])
            within = max(value[groups == g].std() for g in range(3))
            assert between > 2 * within, field


@pytest.mark.parametrize(
    ("name", "base", "field", "bad"),
    [
        ("cartpole_swingup", CartPoleParams(), "masspole", 0.0),
        ("cartpole_swingup", CartPoleParams(), "half_length", -0.5),
        ("cartpole_swingup", CartPoleParams(), "masscart", np.nan),
        ("ar", ARParams(), "beta", 0.0),
        ("ar", ARParams(), "phi1", np.nan),
    ],
)
def test_a_user_population_is_validated_before_training(name, base, field, bad):
    population = custom_population(base, {field: [getattr(base, field), bad]})
    config = TrainConfig(task=name, **{**TINY, "n_agents": 2})
    with pytest.raises(ConfigError, match=f"params.{field}"):
        train(config, population=population)


@pytest.mark.parametrize(("name", "reward"), [("ar", "sparse"), ("cartpole_swingup", "dense")])
def test_training_runs_on_the_new_tasks(name, reward):
    results = train(TrainConfig(task=name, reward=reward, **TINY))
    assert results.returns.shape == (TINY["n_agents"], TINY["episodes"])
    assert np.all(np.isfinite(results.returns))
    assert (
        results.episode_length
        == get_task(name).make_env(reward).default_params.max_steps_in_episode
    )


# A user's own environment, defined and registered outside the package.


@struct.dataclass
class DriftState(environment.EnvState):
    s: jax.Array
    time: jax.Array


@struct.dataclass
class DriftParams(environment.EnvParams):
    gain: float = 1.0
    target: float = 0.0
    max_steps_in_episode: int = struct.field(pytree_node=False, default=20)


class Drift(environment.Environment[DriftState, DriftParams]):
    """s' = s + 0.1 * gain * a; dense reward -(s' - target)^2, sparse 1[|s' - target| < 0.1]."""

    def __init__(self, reward: str = "dense"):
        super().__init__()
        check(reward in ("dense", "sparse"), "reward", reward, "dense or sparse")
        self.reward_mode = reward

    @property
    def default_params(self):
        return DriftParams()

    def step_env(self, key, state, action, params):
        s = state.s + 0.1 * params.gain * jnp.reshape(action, ())
        error = s - params.target
        reward = -(error**2) if self.reward_mode == "dense" else (jnp.abs(error) < 0.1) * 1.0
        state = DriftState(s=s, time=state.time + 1)
        return s[None], state, reward, jnp.array(False), {}

    def reset_env(self, key, params):
        state = DriftState(s=jax.random.uniform(key, minval=-1, maxval=1), time=jnp.array(0))
        return state.s[None], state

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (1,), jnp.float32)


def drift_population(key, n_agents):
    return grouped_population(
        key, DriftParams(), {"target": [-0.5, 0.5]}, n_agents, jitter={"gain": 0.1}
    )


def validate_drift(params):
    check(bool(np.all(np.asarray(params.gain) > 0)), "params.gain", params.gain, "positive")


def test_a_user_registers_their_own_environment_and_trains_on_it():
    register_task(
        Task(
            name="user-drift",
            make_env=Drift,
            make_population=drift_population,
            validate_params=validate_drift,
            defaults={"episodes": 3, "hidden": (8,)},
        )
    )
    assert "user-drift" in task_names()
    config = TrainConfig(
        task="user-drift",
        reward="sparse",
        **{**TINY, "episodes": None, "hidden": None, "warmup_steps": 20},
    )
    assert config.resolved().episodes == 3 and config.resolved().hidden == (8,)
    results = train(config)
    assert results.returns.shape == (3, 3) and results.episode_length == 20
    assert np.asarray(results.groups).tolist() == [0, 0, 1]
    bad = custom_population(DriftParams(), {"gain": [1.0, -1.0, 1.0]})
    with pytest.raises(ConfigError, match="params.gain"):
        train(TrainConfig(task="user-drift", **TINY), population=bad)
