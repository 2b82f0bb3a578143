import jax
import numpy as np
import pytest

from c3rl_jax import ConfigError, custom_population, get_task
from c3rl_jax.envs.pendulum import PendulumParams
from c3rl_jax.population import split_sizes


def test_default_pendulum_population_has_three_wind_groups_of_7_7_6():
    pop = get_task("pendulum").make_population(jax.random.PRNGKey(0), 20)
    groups = np.asarray(pop.groups)
    assert np.bincount(groups).tolist() == [7, 7, 6]
    w = np.asarray(pop.params.w)
    assert w.shape == (20,)
    for g, wind in enumerate([-1.0, 0.0, 1.0]):
        np.testing.assert_array_equal(w[groups == g], wind)
    for name in ("m", "l"):
        value = np.asarray(getattr(pop.params, name))
        assert value.shape == (20,)
        assert 0 < value.std() < 0.1 and np.all(np.abs(value - 1.0) < 0.5)  # jittered, small
    # unjittered fields are broadcast to the agent axis unchanged
    np.testing.assert_array_equal(np.asarray(pop.params.g), 10.0)
    assert pop.params.max_steps_in_episode == 200


def test_population_depends_on_the_key_only():
    task = get_task("pendulum")
    a, b = (task.make_population(jax.random.PRNGKey(3), 20) for _ in range(2))
    c = task.make_population(jax.random.PRNGKey(4), 20)
    np.testing.assert_array_equal(a.params.m, b.params.m)
    assert not np.array_equal(a.params.m, c.params.m)


def test_split_sizes():
    assert split_sizes(20, 3) == [7, 7, 6]
    assert split_sizes(3, 3) == [1, 1, 1]
    with pytest.raises(ConfigError, match="n_agents=2"):
        split_sizes(2, 3)


def test_custom_population_from_user_arrays():
    pop = custom_population(
        PendulumParams(), {"w": [0.0, 0.5, 1.0], "m": [1.0, 1.1, 1.2]}, groups=[0, 0, 1]
    )
    assert pop.n_agents == 3
    np.testing.assert_allclose(pop.params.w, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(pop.params.l, [1.0, 1.0, 1.0])
    assert np.asarray(pop.groups).tolist() == [0, 0, 1]


@pytest.mark.parametrize(
    ("arrays", "groups", "message"),
    [
        ({"wind": [0.0]}, None, "population field='wind'"),
        ({"w": [0.0, 1.0], "m": [1.0]}, None, "population sizes"),
        ({"w": [[0.0]]}, None, "population.w"),
        ({"w": [0.0, 1.0]}, [0], "groups"),
    ],
)
def test_custom_population_rejects_bad_arrays(arrays, groups, message):
    with pytest.raises(ConfigError, match=message):
        custom_population(PendulumParams(), arrays, groups)


@pytest.mark.parametrize(
    ("field", "value"), [("m", 0.0), ("l", -1.0), ("w", np.nan), ("dt", np.inf)]
)
def test_non_physical_parameters_are_refused(field, value):
    pop = custom_population(PendulumParams(), {field: [1.0, value]})
    with pytest.raises(ConfigError, match=f"params.{field}"):
        get_task("pendulum").validate_params(pop.params)
