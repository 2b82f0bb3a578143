import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax import ConfigError, custom_population, get_task
from c3rl_jax.envs.ar import ARParams, ARState, AutoregressiveControl, validate_ar_params

dense_step = jax.jit(AutoregressiveControl("dense").step_env)
sparse_step = jax.jit(AutoregressiveControl("sparse").step_env)


def state_of(s, s_prev):
    return ARState(s=jnp.float32(s), s_prev=jnp.float32(s_prev), time=jnp.array(0))


def test_one_step_equals_the_recurrence_computed_by_hand():
    params = ARParams(phi1=0.7, phi2=-0.3, beta=0.8, sigma=0.0, omega=0.4)
    s, s_prev, a = 0.5, -0.2, 0.25
    obs, new, reward, terminated, _ = dense_step(
        jax.random.PRNGKey(0), state_of(s, s_prev), jnp.array([a]), params
    )
    expected = 0.7 * s - 0.3 * s_prev + 0.8 * a  # 0.35 + 0.06 + 0.2
    np.testing.assert_allclose(float(new.s), 0.61, rtol=1e-6)
    np.testing.assert_allclose(float(new.s), expected, rtol=1e-6)
    assert float(new.s_prev) == s  # the old s_t becomes s_{t-1}
    np.testing.assert_allclose(np.asarray(obs), [expected, s], rtol=1e-6)
    # dense reward scores the state the action led to
    np.testing.assert_allclose(float(reward), -((expected - 0.4) ** 2) - 0.01 * a**2, rtol=1e-5)
    assert int(new.time) == 1 and not bool(terminated)


def test_transition_noise_has_the_stated_scale():
    params = ARParams(phi1=0.5, phi2=0.1, beta=1.0, sigma=0.3, omega=0.0)
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    step = jax.vmap(dense_step, in_axes=(0, None, None, None))
    _, new, *_ = step(keys, state_of(1.0, 2.0), jnp.array([-0.5]), params)
    s_next = np.asarray(new.s)
    mean = 0.5 * 1.0 + 0.1 * 2.0 - 0.5
    assert abs(s_next.mean() - mean) < 4 * 0.3 / np.sqrt(4000)
    assert abs(s_next.std() / 0.3 - 1) < 0.05


def test_states_and_actions_are_clipped():
    params = ARParams(phi1=1.0, phi2=1.0, beta=1.0, sigma=0.0, state_bound=5.0)
    _, new, *_ = dense_step(jax.random.PRNGKey(0), state_of(4.0, 3.0), jnp.array([0.0]), params)
    assert float(new.s) == 5.0
    _, new, *_ = dense_step(jax.random.PRNGKey(0), state_of(-4.0, -3.0), jnp.array([0.0]), params)
    assert float(new.s) == -5.0
    # an action beyond [-1, 1] acts (and is charged) as the nearest bound
    params = ARParams(phi1=0.0, phi2=0.0, beta=1.0, sigma=0.0, omega=0.0)
    _, new, reward, *_ = dense_step(
        jax.random.PRNGKey(0), state_of(0.0, 0.0), jnp.array([3.0]), params
    )
    assert float(new.s) == 1.0
    np.testing.assert_allclose(float(reward), -1.0 - 0.01, rtol=1e-6)


def test_sparse_reward_at_the_band_boundary():
    # phi1 = 1 and nothing else: s_{t+1} = s_t exactly, so the error is the one given
    params = ARParams(phi1=1.0, phi2=0.0, beta=1.0, sigma=0.0, omega=0.0)
    band = np.float32(0.1)
    below = np.nextafter(band, np.float32(0))
    cases = {0.0: 1.0, float(below): 1.0, -float(below): 1.0, float(band): 0.0, -float(band): 0.0}
    cases[0.3] = 0.0
    for s, expected in cases.items():
        _, new, reward, *_ = sparse_step(
            jax.random.PRNGKey(0), state_of(s, 0.0), jnp.zeros(1), params
        )
        assert float(new.s) == np.float32(s)
        assert float(reward) == expected, s
    # the band is around omega, not zero
    params = params.replace(omega=-2.0)
    _, _, reward, *_ = sparse_step(
        jax.random.PRNGKey(0), state_of(-1.95, 0.0), jnp.zeros(1), params
    )
    assert float(reward) == 1.0


def test_reset_draws_both_states_in_the_initial_range():
    env = AutoregressiveControl()
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(keys, env.default_params)
    s, s_prev = np.asarray(state.s), np.asarray(state.s_prev)
    np.testing.assert_array_equal(np.asarray(obs), np.stack([s, s_prev], axis=1))
    assert np.all(np.abs(s) <= 1) and np.all(np.abs(s_prev) <= 1)
    assert s.std() > 0.4 and abs(np.corrcoef(s, s_prev)[0, 1]) < 0.2  # spread, independent
    assert np.all(np.asarray(state.time) == 0)


def test_a_population_steps_with_one_vmap_agent_by_agent():
    env = AutoregressiveControl("dense")
    pop = custom_population(
        env.default_params,
        {"phi1": [0.9, 0.2], "beta": [0.5, -1.0], "omega": [1.0, -1.0], "sigma": [0.0, 0.0]},
    )
    states = ARState(s=jnp.array([0.3, -0.4]), s_prev=jnp.array([0.1, 0.2]), time=jnp.zeros(2))
    actions = jnp.array([[0.5], [-0.25]])
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    _, new, reward, *_ = jax.vmap(env.step_env)(keys, states, actions, pop.params)
    phi2 = env.default_params.phi2
    expected = [0.9 * 0.3 + phi2 * 0.1 + 0.5 * 0.5, 0.2 * -0.4 + phi2 * 0.2 + -1.0 * -0.25]
    np.testing.assert_allclose(np.asarray(new.s), expected, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(reward),
        [-((expected[0] - 1) ** 2) - 0.01 * 0.25, -((expected[1] + 1) ** 2) - 0.01 * 0.0625],
        rtol=1e-5,
    )


def test_unknown_reward_mode_is_a_clear_error():
    with pytest.raises(ConfigError, match="reward='shaped'.*dense"):
        AutoregressiveControl("shaped")


@pytest.mark.parametrize(
    ("field", "value"),
    [("phi1", np.nan), ("beta", 0.0), ("sigma", -0.1), ("omega", 7.0), ("state_bound", 0.0)],
)
def test_meaningless_parameters_are_refused(field, value):
    pop = custom_population(ARParams(), {field: [getattr(ARParams(), field), value]})
    with pytest.raises(ConfigError, match=f"params.{field}"):
        validate_ar_params(pop.params)


def test_default_population_has_three_groups_differing_in_dynamics_and_target():
    pop = get_task("ar").make_population(jax.random.PRNGKey(0), 20)
    groups = np.asarray(pop.groups)
    assert np.bincount(groups).tolist() == [7, 7, 6]
    validate_ar_params(pop.params)
    means = {
        name: [float(np.asarray(getattr(pop.params, name))[groups == g].mean()) for g in range(3)]
        for name in ("phi1", "phi2", "beta", "omega")
    }
    for name, values in means.items():
        assert len({round(v, 1) for v in values}) == 3, (name, values)  # all three differ
    for name in ("phi1", "phi2", "beta", "omega"):
        value = np.asarray(getattr(pop.params, name))
        for g in range(3):
            within = value[groups == g]
            spread = within.std() / abs(within.mean())
            assert 0 < spread < 0.15, (name, g)  # jittered, but only a little
            assert np.all(np.sign(within) == np.sign(within.mean()))  # jitter keeps signs
    # every group's AR(2) part is stable: both roots of z^2 - phi1 z - phi2 inside the unit disc
    for g in range(3):
        roots = np.roots([1.0, -means["phi1"][g], -means["phi2"][g]])
        assert np.all(np.abs(roots) < 1)
    np.testing.assert_array_equal(np.asarray(pop.params.sigma), np.float32(ARParams().sigma))
    assert pop.params.max_steps_in_episode == 100
