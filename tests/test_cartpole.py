import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from c3rl_jax import ConfigError, custom_population, get_task
from c3rl_jax.envs.cartpole_swingup import (
    CartPoleParams,
    CartPoleState,
    CartPoleSwingUp,
    swingup_reward,
    tolerance,
    validate_cartpole_params,
)

ENV = CartPoleSwingUp("dense")
step = jax.jit(ENV.step_env)


def state_of(x=0.0, x_dot=0.0, theta=0.0, theta_dot=0.0):
    f = jnp.float32
    return CartPoleState(x=f(x), x_dot=f(x_dot), theta=f(theta), theta_dot=f(theta_dot), time=0)


def rollout(state, u, params, n_steps, env=ENV):
    """States after each of `n_steps` steps under the constant action `u`."""

    def body(s, key):
        _, s, *_ = env.step_env(key, s, jnp.array([u]), params)
        return s, s

    keys = jax.random.split(jax.random.PRNGKey(0), n_steps)
    return jax.jit(lambda s: jax.lax.scan(body, s, keys)[1])(state)


def lagrangian_accelerations(x_dot, th, th_dot, force, p):
    """(x_acc, theta_acc) from the Lagrangian of a cart and a uniform rod (theta = 0 up), with
    viscous friction on both joints: solve the 2x2 mass-matrix system in float64."""
    mc, mp, ll, g = p.masscart, p.masspole, p.half_length, p.gravity
    mass = np.array(
        [[mc + mp, mp * ll * np.cos(th)], [mp * ll * np.cos(th), 4.0 / 3.0 * mp * ll**2]]
    )
    rhs = np.array(
        [
            force - p.cart_friction * x_dot + mp * ll * np.sin(th) * th_dot**2,
            mp * g * ll * np.sin(th) - p.pole_friction * th_dot,
        ]
    )
    return np.linalg.solve(mass, rhs)


def energy(traj, p):
    """Kinetic plus potential energy of cart and rod, float64."""
    x_dot, th, th_dot = (
        np.asarray(a, np.float64) for a in (traj.x_dot, traj.theta, traj.theta_dot)
    )
    mc, mp, ll, g = p.masscart, p.masspole, p.half_length, p.gravity
    kinetic = (
        0.5 * (mc + mp) * x_dot**2
        + mp * ll * np.cos(th) * x_dot * th_dot
        + 2.0 / 3.0 * mp * ll**2 * th_dot**2
    )
    return kinetic + mp * g * ll * np.cos(th)


@pytest.mark.parametrize(
    ("x_dot", "theta", "theta_dot", "u"),
    [(0.0, 0.3, 0.0, 0.0), (0.5, 2.0, -1.5, 0.7), (-1.2, -0.8, 3.0, -1.0), (0.3, np.pi, 0.2, 0.4)],
)
def test_one_step_matches_the_equations_of_motion(x_dot, theta, theta_dot, u):
    params = CartPoleParams(masspole=0.3, half_length=0.7, cart_friction=0.2, pole_friction=0.05)
    _, new, *_ = step(
        jax.random.PRNGKey(0), state_of(0.1, x_dot, theta, theta_dot), jnp.array([u]), params
    )
    x_acc, th_acc = lagrangian_accelerations(x_dot, theta, theta_dot, 10.0 * u, params)
    dt = params.dt
    # semi-implicit Euler: velocities first, then positions from the new velocities
    np.testing.assert_allclose(float(new.x_dot), x_dot + dt * x_acc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(new.theta_dot), theta_dot + dt * th_acc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(new.x), 0.1 + dt * float(new.x_dot), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(new.theta), theta + dt * float(new.theta_dot), rtol=1e-5)


def test_energy_is_conserved_without_friction_or_force():
    # pole released horizontal, swings through the bottom to the other side within 1 s
    params = CartPoleParams(masspole=0.3, cart_friction=0.0, pole_friction=0.0, dt=1e-3)
    traj = rollout(state_of(theta=np.pi / 2), 0.0, params, 1000)
    scale = params.masspole * params.gravity * params.half_length  # a quarter swing's energy
    e = energy(traj, params)  # starts at exactly 0: at rest, centre of mass at pivot height
    assert np.max(np.abs(e)) < 0.01 * scale  # stated tolerance: 1% of m_p g l over 1 s
    assert np.min(np.asarray(traj.theta)) > 1.5 and np.max(np.asarray(traj.theta)) > 4.5
    # no horizontal external force: the horizontal momentum stays zero as well
    momentum = (params.masscart + params.masspole) * np.asarray(traj.x_dot) + (
        params.masspole * params.half_length * np.cos(traj.theta) * np.asarray(traj.theta_dot)
    )
    assert np.max(np.abs(momentum)) < 0.01


def test_friction_dissipates_energy():
    params = CartPoleParams(masspole=0.3, cart_friction=0.5, pole_friction=0.05, dt=1e-3)
    e = energy(rollout(state_of(theta=np.pi / 2), 0.0, params, 2000), params)
    # it loses far more than the frictionless integrator's 1% error (energy starts at 0)
    assert e[-1] < -0.1 * params.masspole * params.gravity * params.half_length


def test_balanced_upright_pole_stays_in_equilibrium():
    traj = rollout(state_of(theta=0.0), 0.0, ENV.default_params, 500)
    for name in ("x", "x_dot", "theta", "theta_dot"):
        np.testing.assert_array_equal(np.asarray(getattr(traj, name)), 0.0)
    # hanging straight down is an equilibrium too
    traj = rollout(state_of(theta=np.pi), 0.0, ENV.default_params, 500)
    np.testing.assert_allclose(np.asarray(traj.theta), np.pi, atol=1e-6)
    np.testing.assert_allclose(np.asarray(traj.x), 0.0, atol=1e-6)


def test_upright_is_unstable_and_the_cart_recoils():
    traj = rollout(state_of(theta=0.01), 0.0, ENV.default_params, 50)
    theta, x = np.asarray(traj.theta), np.asarray(traj.x)
    assert theta[-1] > 0.1 and np.all(np.diff(theta) > 0)  # falls the way it leans
    assert x[-1] < 0  # the cart moves the other way


def test_force_pushes_the_cart_in_its_direction():
    for u in (1.0, -1.0):
        _, new, *_ = step(
            jax.random.PRNGKey(0), state_of(theta=np.pi), jnp.array([u]), CartPoleParams()
        )
        assert np.sign(float(new.x_dot)) == u


def test_rails_stop_the_cart_without_ending_the_episode():
    params = ENV.default_params
    traj = rollout(state_of(theta=np.pi), 1.0, params, 300)
    x, x_dot = np.asarray(traj.x), np.asarray(traj.x_dot)
    assert np.all(x <= params.x_limit)
    at_rail = x == np.float32(params.x_limit)
    assert at_rail[-50:].all()  # pushed into the rail, it stays there ...
    np.testing.assert_array_equal(x_dot[at_rail], 0.0)  # ... at rest
    _, _, _, terminated, _ = step(
        jax.random.PRNGKey(0), state_of(x=2.4, theta=np.pi), jnp.array([1.0]), params
    )
    assert not bool(terminated)
    # pushing away from the rail moves the cart off it
    back = rollout(state_of(x=2.4, theta=np.pi), -1.0, params, 5)
    assert np.all(np.diff(np.asarray(back.x)) < 0) and np.all(np.asarray(back.x_dot) < 0)
    # the left rail too
    left = rollout(state_of(x=-2.3, x_dot=-3.0, theta=np.pi), -1.0, params, 20)
    assert np.asarray(left.x).min() == np.float32(-params.x_limit)


def test_rail_impulse_keeps_the_poles_generalised_momentum():
    # dt tiny: the step's smooth dynamics are negligible, the stop is instantaneous
    params = CartPoleParams(dt=1e-7, half_length=0.6)
    theta = 0.3
    _, new, *_ = step(
        jax.random.PRNGKey(0), state_of(x=2.4, x_dot=1.5, theta=theta), jnp.zeros(1), params
    )
    assert float(new.x_dot) == 0.0 and float(new.x) == np.float32(2.4)
    # m l cos(th) x_dot + (4/3) m l^2 th_dot before = (4/3) m l^2 th_dot' after
    expected = 1.5 * np.cos(theta) / (4.0 / 3.0 * 0.6)
    np.testing.assert_allclose(float(new.theta_dot), expected, rtol=1e-4)


def dm_control_dense(x, cos_theta, theta_dot, u):
    """dm_control's swingup reward in closed form: its gaussian tolerance with value 0.1 at the
    margin is 0.1 ** ((d / margin) ** 2); its quadratic with value 0 at margin 1 is 1 - u^2."""
    upright = (cos_theta + 1) / 2
    centered = (1 + 0.1 ** ((x / 2) ** 2)) / 2
    small_control = (4 + max(0.0, 1 - u**2)) / 5
    small_velocity = (1 + 0.1 ** ((theta_dot / 5) ** 2)) / 2
    return upright * centered * small_control * small_velocity


@pytest.mark.parametrize(
    ("x", "theta", "theta_dot", "u"),
    [
        (0.0, 0.0, 0.0, 0.0),  # the best state: reward 1
        (0.0, np.pi, 0.0, 0.0),  # hanging down: reward 0
        (2.0, 0.0, 0.0, 0.0),  # centered at its margin: (1 + 0.1) / 2
        (0.0, 0.0, 5.0, 1.0),  # velocity at its margin, full control
        (-1.3, 2.1, -2.7, -0.6),
        (0.4, -0.5, 7.5, 0.2),
    ],
)
def test_dense_reward_equals_dm_controls_formula(x, theta, theta_dot, u):
    expected = dm_control_dense(x, math.cos(theta), theta_dot, u)
    got = swingup_reward(
        jnp.float32(x), jnp.cos(jnp.float32(theta)), jnp.float32(theta_dot), jnp.float32(u), False
    )
    np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=1e-7)


def test_named_dense_reward_values():
    assert float(swingup_reward(0.0, 1.0, 0.0, 0.0, False)) == 1.0
    assert float(swingup_reward(0.0, -1.0, 0.0, 0.0, False)) == 0.0
    np.testing.assert_allclose(float(swingup_reward(2.0, 1.0, 0.0, 0.0, False)), 0.55, rtol=1e-6)
    np.testing.assert_allclose(float(swingup_reward(0.0, 1.0, 0.0, 1.0, False)), 0.8, rtol=1e-6)
    np.testing.assert_allclose(float(swingup_reward(0.0, 1.0, 5.0, 0.0, False)), 0.55, rtol=1e-6)


@pytest.mark.parametrize("reward", ["dense", "sparse"])
def test_step_reward_scores_the_state_after_the_step(reward):
    env = CartPoleSwingUp(reward)
    state = state_of(x=0.2, x_dot=0.5, theta=0.05, theta_dot=0.4)
    obs, new, r, *_ = jax.jit(env.step_env)(
        jax.random.PRNGKey(0), state, jnp.array([0.5]), env.default_params
    )
    x, x_dot, cos, sin, th_dot = (float(v) for v in obs)
    np.testing.assert_allclose([cos, sin], [math.cos(new.theta), math.sin(new.theta)], rtol=1e-6)
    assert (x, x_dot, th_dot) == (float(new.x), float(new.x_dot), float(new.theta_dot))
    if reward == "dense":
        np.testing.assert_allclose(float(r), dm_control_dense(x, cos, th_dot, 0.5), rtol=1e-5)
    else:
        assert float(r) == float(abs(x) <= 0.25 and cos >= 0.995)


def test_sparse_reward_boundaries_are_inclusive():
    f = np.float32
    cos_in = f(0.995)
    cos_out = np.nextafter(cos_in, f(0))
    cases = [
        (0.0, 1.0, 1.0),
        (0.25, 1.0, 1.0),
        (-0.25, cos_in, 1.0),
        (0.2501, 1.0, 0.0),
        (-0.2501, 1.0, 0.0),
        (0.0, cos_out, 0.0),
        (0.0, -1.0, 0.0),
    ]
    for x, cos, expected in cases:
        assert float(swingup_reward(f(x), f(cos), f(9.0), f(1.0), True)) == expected, (x, cos)


@pytest.mark.parametrize(
    "sigmoid",
    [
        "gaussian",
        "long_tail",
        "reciprocal",
        "hyperbolic",
        "tanh_squared",
        "linear",
        "quadratic",
        "cosine",
    ],
)
def test_tolerance_shapes(sigmoid):
    xs = jnp.array([-0.5, 0.0, 1.0, 1.5, 2.0, 3.0])  # bounds (-0.5, 1), margin 2
    value = np.asarray(
        tolerance(xs, bounds=(-0.5, 1.0), margin=2.0, sigmoid=sigmoid, value_at_margin=0.3)
    )
    np.testing.assert_allclose(value[:3], 1.0)  # inside the inclusive bounds
    assert 1.0 > value[3] > value[4] > 0.0  # decreasing with the distance outside
    np.testing.assert_allclose(value[5], 0.3, rtol=1e-5)  # value_at_margin at distance = margin
    np.testing.assert_allclose(  # symmetric on either side
        float(tolerance(jnp.float32(-2.5), (-0.5, 1.0), 2.0, sigmoid, 0.3)), value[5], rtol=1e-5
    )


def test_tolerance_without_margin_is_an_indicator():
    xs = jnp.array([-1.01, -1.0, 0.0, 2.0, 2.01])
    np.testing.assert_array_equal(np.asarray(tolerance(xs, bounds=(-1.0, 2.0))), [0, 1, 1, 1, 0])
    with pytest.raises(ValueError, match="value_at_margin"):
        tolerance(xs, margin=1.0, sigmoid="gaussian", value_at_margin=0.0)


def test_reset_hangs_the_pole_down_with_a_small_perturbation():
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    obs, state = jax.vmap(ENV.reset_env, in_axes=(0, None))(keys, ENV.default_params)
    dtheta = np.asarray(state.theta) - np.pi
    assert 0.005 < dtheta.std() < 0.02 and np.all(np.abs(dtheta) < 0.06)
    for name in ("x", "x_dot", "theta_dot"):
        value = np.asarray(getattr(state, name))
        assert 0.005 < value.std() < 0.02 and np.all(np.abs(value) < 0.06)
    obs = np.asarray(obs)
    assert obs.shape == (500, 5) and np.all(obs[:, 2] < -0.998)  # cos(theta) ~ -1
    np.testing.assert_allclose(obs[:, 3], np.sin(np.asarray(state.theta)), atol=1e-6)


def test_unknown_reward_mode_is_a_clear_error():
    with pytest.raises(ConfigError, match="reward='shaped'.*dense"):
        CartPoleSwingUp("shaped")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("masspole", 0.0),
        ("masscart", -1.0),
        ("half_length", 0.0),
        ("half_length", np.nan),
        ("gravity", np.inf),
        ("cart_friction", -0.1),
        ("dt", 0.0),
    ],
)
def test_non_physical_parameters_are_refused(field, value):
    pop = custom_population(CartPoleParams(), {field: [getattr(CartPoleParams(), field), value]})
    with pytest.raises(ConfigError, match=f"params.{field}"):
        validate_cartpole_params(pop.params)


def test_default_population_has_three_pole_groups():
    pop = get_task("cartpole_swingup").make_population(jax.random.PRNGKey(0), 20)
    groups = np.asarray(pop.groups)
    assert np.bincount(groups).tolist() == [7, 7, 6]
    validate_cartpole_params(pop.params)
    length, mass = np.asarray(pop.params.half_length), np.asarray(pop.params.masspole)
    group_length = [length[groups == g].mean() for g in range(3)]
    group_mass = [mass[groups == g].mean() for g in range(3)]
    assert np.all(np.diff(group_length) > 0.1) and np.all(np.diff(group_mass) > 0.03)
    for value in (length, mass, np.asarray(pop.params.masscart)):
        for g in range(3):
            within = value[groups == g]
            assert 0 < within.std() / within.mean() < 0.15  # small within-group jitter
    # the groups do not overlap: every pole of a group is longer than all of the previous group's
    for g in (1, 2):
        assert length[groups == g].min() > length[groups == g - 1].max()
    np.testing.assert_array_equal(np.asarray(pop.params.gravity), np.float32(9.8))
    assert pop.params.max_steps_in_episode == 500
