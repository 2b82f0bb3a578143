"""Agent-level sparse GP: the collapsed bound against a dense NumPy/SciPy computation,
masking, recovery of known groups, determinism, warm starts, outlier weighting, encoding a
new agent, skipped steps and input validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from c3rl_jax.causal import (
    AgentGPConfig,
    AgentGPParams,
    agent_gp_bound,
    encode_agent_gp,
    fit_agent_gp,
    outlier_weights,
    predict_agent_gp,
)
from c3rl_jax.causal import agent_gp as AG
from c3rl_jax.errors import ConfigError

# One data shape and one static config for every fit below, so the fit compiles once
# (and the encoder once) per session: 12 agents in 3 groups, 30 rows each, y = sin(a_g x).
N_AGENTS, PER_AGENT = 12, 30
GROUPS = np.repeat(np.arange(3), N_AGENTS // 3)
SLOPES = np.array([0.5, 1.5, 2.5])
FAST = AgentGPConfig(n_inducing=16, n_steps=100, encode_steps=60)


def _group_data(seed=0, n_agents=N_AGENTS, per_agent=PER_AGENT, groups=GROUPS, noise=0.1):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n_agents), per_agent)
    x = rng.uniform(-2, 2, size=(n_agents * per_agent, 1))
    a = SLOPES[groups][ids]
    y = np.sin(a * x[:, 0])[:, None] + noise * rng.normal(size=(x.shape[0], 1))
    return x, y, ids


def _ari(theta, k=3):
    labels = GaussianMixture(k, n_init=5, random_state=0).fit_predict(np.asarray(theta))
    return adjusted_rand_score(GROUPS, labels)


@pytest.fixture(scope="module")
def data():
    return _group_data()


@pytest.fixture(scope="module")
def fit(data):
    x, y, ids = data
    return fit_agent_gp(x, y, ids, jax.random.key(0), FAST)


# ----------------------------------------------------------------------------- the bound


def _rbf(a, b, ls):
    d = (a[:, None, :] - b[None, :, :]) / ls
    return np.exp(-0.5 * np.sum(d * d, axis=-1))


def _dense_bound(p, xs, ys, ids, noise_floor, jitter):
    """The collapsed bound written out densely: explicit Kff, Kuu^-1, SciPy's Gaussian."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), p)
    dx = xs.shape[1]
    r = 1.0 / (1.0 + math.exp(-float(p.rho)))
    ls0, ls1 = np.exp(p.log_ls0), np.exp(p.log_ls1)
    t = p.theta[ids]
    zx, zt = p.Z[:, :dx], p.Z[:, dx:]

    def k(xa, ta, xb, tb):
        return (1 - r) * _rbf(xa, xb, ls0) + r * _rbf(xa, xb, ls1) * _rbf(ta, tb, 1.0)

    Kff = k(xs, t, xs, t)
    Kfu = k(xs, t, zx, zt)
    Kuu = k(zx, zt, zx, zt) + jitter * np.eye(len(zx))
    Qff = Kfu @ np.linalg.inv(Kuu) @ Kfu.T
    out = []
    for j in range(ys.shape[1]):
        s2 = math.exp(p.log_amp[j])
        sig2 = math.exp(p.log_noise[j]) + noise_floor
        cov = s2 * Qff + sig2 * np.eye(len(xs))
        logp = multivariate_normal(np.zeros(len(xs)), cov).logpdf(ys[:, j])
        out.append(logp - s2 / (2 * sig2) * np.trace(Kff - Qff))
    return np.array(out)


def _tiny_problem(seed=1, n=12, M=5, dx=2, dy=2, n_agents=3):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(n, dx))
    ys = rng.normal(size=(n, dy))
    ids = np.repeat(np.arange(n_agents), n // n_agents)
    p = AgentGPParams(
        theta=rng.normal(size=(n_agents, 1)),
        Z=rng.normal(size=(M, dx + 1)),
        log_ls0=np.log([0.7, 1.6]),
        log_ls1=np.log([1.3, 0.5]),
        rho=np.asarray(0.4),
        log_amp=np.log([0.5, 2.0]),  # different amplitudes ...
        log_noise=np.log([0.3, 0.05]),  # ... and noises per column
    )
    return p, xs, ys, ids


def test_bound_matches_dense_computation():
    p, xs, ys, ids = _tiny_problem()
    floor, jitter = 1e-4, 1e-4
    want = _dense_bound(p, xs, ys, ids, floor, jitter)
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p)
        got = agent_gp_bound(p64, jnp.asarray(xs), jnp.asarray(ys), ids, np.ones(12), floor, jitter)
        got = np.asarray(got)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # float32 (the default precision) agrees to float32 accuracy
    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), p)
    got32 = agent_gp_bound(
        p32,
        jnp.asarray(xs, jnp.float32),
        jnp.asarray(ys, jnp.float32),
        ids,
        np.ones(12, np.float32),
        floor,
        jitter,
    )
    np.testing.assert_allclose(np.asarray(got32), want, rtol=2e-4, atol=2e-3)


def test_float32_bound_holds_at_the_noise_floor():
    # noise at the floor (gamma = s^2 / sigma^2 = 1e4), 1,920 rows on 32 inducing inputs, y
    # in the inducing functions' span: B = I + gamma A A^T formed in float32 and the
    # difference y^T y - gamma c^T c lost about 3 nats here (thousands on real rebuild data)
    rng = np.random.default_rng(0)
    M, reps, n_agents = 32, 60, 4
    zx, zid = rng.uniform(-2, 2, size=(M, 2)), rng.integers(0, n_agents, M)
    theta = rng.normal(size=(n_agents, 1))
    xs, ids = np.repeat(zx, reps, 0), np.repeat(zid, reps)
    ones = np.log([1.0, 1.0])
    p = AgentGPParams(theta, np.concatenate([zx, theta[zid]], 1), ones, ones, np.asarray(0.0),
                      ones, np.log([1e-7, 1e-7]))  # fmt: skip
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p)
        kfu = np.asarray(AG._kfu(p64, jnp.asarray(xs), ids))
        ys = kfu @ rng.normal(size=(M, 2)) * 0.3 + 1e-2 * rng.normal(size=(len(xs), 2))
        want = np.asarray(
            agent_gp_bound(p64, jnp.asarray(xs), jnp.asarray(ys), ids, np.ones(len(xs)))
        )
    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), p)
    f32 = [jnp.asarray(a, jnp.float32) for a in (xs, ys, np.ones(len(xs)))]
    got = np.asarray(agent_gp_bound(p32, f32[0], f32[1], ids, f32[2]))
    np.testing.assert_allclose(got, want, atol=1.0)  # of about 5,000 nats


def test_weight_zero_row_equals_deleting_it():
    p, xs, ys, ids = _tiny_problem(seed=2)
    drop = 5
    keep = np.arange(12) != drop
    w = keep.astype(np.float64)
    ys_bad = ys.copy()
    ys_bad[drop] = 1e3  # whatever sits in a weight-0 row must not matter
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p)
        masked = agent_gp_bound(p64, jnp.asarray(xs), jnp.asarray(ys_bad), ids, w)
        deleted = agent_gp_bound(
            p64, jnp.asarray(xs[keep]), jnp.asarray(ys[keep]), ids[keep], np.ones(11)
        )
        masked, deleted = np.asarray(masked), np.asarray(deleted)
    np.testing.assert_allclose(masked, deleted, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        deleted, _dense_bound(p, xs[keep], ys[keep], ids[keep], 1e-4, 1e-4), rtol=1e-9, atol=1e-9
    )


# ----------------------------------------------------------------------------- fitting


def test_recovers_known_groups(fit):
    assert fit.theta.shape == (N_AGENTS, 1)
    assert fit.final_loss.shape == (FAST.n_restarts,)
    assert fit.loss_history.shape == (FAST.n_restarts, FAST.n_steps)
    assert int(np.sum(fit.n_skipped)) == 0
    assert np.all(np.asarray(fit.weights) == 1)  # no outliers in clean data
    assert fit.config.n_inducing == 16
    assert _ari(fit.theta) == 1.0
    assert float(fit.objective) == float(np.min(fit.final_loss))
    # a better objective than where the chosen restart started
    assert float(fit.objective) < float(fit.loss_history[int(fit.best_restart), 0])


def test_same_key_same_fit_and_keys_differ(data, fit):
    x, y, ids = data
    again = fit_agent_gp(x, y, ids, jax.random.key(0), FAST)
    for a, b in zip(jax.tree_util.tree_leaves(fit), jax.tree_util.tree_leaves(again), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = fit_agent_gp(x, y, ids, jax.random.key(1), FAST)
    assert not np.array_equal(np.asarray(other.final_loss), np.asarray(fit.final_loss))
    # the restarts of one fit start from different points
    assert fit.final_loss[0] != fit.final_loss[1]


def test_warm_start_keeps_labels_and_does_not_recompile(data, fit):
    x, y, ids = data
    size = AG._fit_jit._cache_size()
    warm = fit_agent_gp(x, y, ids, jax.random.key(5), FAST, init=fit)
    assert AG._fit_jit._cache_size() == size  # warm and cold starts share one program
    assert float(warm.objective) <= float(fit.objective) + 1e-3 * abs(float(fit.objective))
    corr = np.corrcoef(np.asarray(fit.theta)[:, 0], np.asarray(warm.theta)[:, 0])[0, 1]
    assert corr > 0.9  # aligned in sign and order
    assert _ari(warm.theta) == 1.0
    # a rebuild on fresh data from the same environments, warm-started, stays aligned
    x2, y2, ids2 = _group_data(seed=7)
    rebuild = fit_agent_gp(x2, y2, ids2, jax.random.key(6), FAST, init=warm.params)
    assert AG._fit_jit._cache_size() == size
    corr = np.corrcoef(np.asarray(warm.theta)[:, 0], np.asarray(rebuild.theta)[:, 0])[0, 1]
    assert corr > 0.9
    assert _ari(rebuild.theta) == 1.0


def test_cold_and_warm_fits_run_their_own_step_and_restart_budgets(data, fit):
    x, y, ids = data
    ran = lambda f: np.sum(np.isfinite(np.asarray(f.loss_history)), axis=1)  # noqa: E731
    np.testing.assert_array_equal(ran(fit), [FAST.n_steps] * FAST.n_restarts)
    assert np.all(np.isfinite(np.asarray(fit.final_loss)))
    config = FAST.replace(warm_steps=30, warm_restarts=1)
    warm = fit_agent_gp(x, y, ids, jax.random.key(5), config, init=fit)
    np.testing.assert_array_equal(ran(warm), [30, 0])
    assert np.isinf(np.asarray(warm.final_loss)[1]) and int(warm.best_restart) == 0
    # more warm restarts than cold ones: the arrays grow to hold them, the extra start fresh
    config = FAST.replace(warm_steps=120, warm_restarts=3)
    warm = fit_agent_gp(x, y, ids, jax.random.key(5), config, init=fit)
    np.testing.assert_array_equal(ran(warm), [120, 120, 120])
    assert len(set(np.asarray(warm.final_loss).tolist())) == 3


def _aligned_distance(theta, ref):
    theta, ref = np.asarray(theta)[:, 0], np.asarray(ref)[:, 0]
    sign = 1.0 if theta @ ref >= 0 else -1.0
    return float(np.max(np.abs(sign * theta - ref)))


def test_outlier_is_down_weighted(data):
    x, y, ids = data
    row = 3  # agent 0, group 0
    y_bad = y.copy()
    y_bad[row] = 40.0  # about 50 robust standard deviations
    key = jax.random.key(2)
    ref_mask = np.arange(len(y)) != row
    ref = fit_agent_gp(x, y, ids, key, FAST, mask=ref_mask)  # the row left out by hand
    weighted = fit_agent_gp(x, y_bad, ids, key, FAST)
    raw = fit_agent_gp(x, y_bad, ids, key, FAST.replace(outlier_z=math.inf))
    w = np.asarray(weighted.weights)
    assert w[row] == 0 and np.sum(w == 0) == 1
    assert np.all(np.asarray(raw.weights) == 1)
    d_weighted = _aligned_distance(weighted.theta, ref.theta)
    d_raw = _aligned_distance(raw.theta, ref.theta)
    assert d_weighted < 1e-3 * max(1.0, float(np.ptp(np.asarray(ref.theta))))
    assert d_raw > 100 * max(d_weighted, 1e-6)
    assert _ari(weighted.theta) == 1.0


def test_outlier_weights_rule():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 3))
    y[:, 2] = (rng.uniform(size=200) < 0.05).astype(float)  # a rare binary (sparse) reward
    y[10, 0] = 17.0  # a rail impulse
    w = np.asarray(outlier_weights(y, 8.0))
    assert w[10] == 0 and np.sum(w == 0) == 1  # the binary column is not screened
    assert np.all(np.asarray(outlier_weights(y, math.inf)) == 1)
    mask = np.ones(200, bool)
    mask[0] = False
    assert np.asarray(outlier_weights(y, 8.0, mask))[0] == 0


def test_a_column_of_rare_events_is_left_out(data, fit):
    x, y, ids = data
    rare = np.zeros((len(y), 1))
    rare[[5, 200]] = 1.0  # a sparse reward seen twice in 360 rows: its 5-95% range is zero
    y2 = np.concatenate([y, rare], axis=1)
    f64 = FAST.replace(precision="float64")  # float32 rounding differs with dy; float64: none
    without = fit_agent_gp(x, y, ids, jax.random.key(0), f64)
    assert (
        _aligned_distance(fit_agent_gp(x, y2, ids, jax.random.key(0), f64).theta, without.theta)
        < 1e-9
    )
    with_rare = fit_agent_gp(x, y2, ids, jax.random.key(0), FAST)
    kernel = with_rare.kernel_params
    assert float(kernel["amplitude"][-1]) == 1.0  # never fitted: the initial values
    assert float(kernel["noise"][-1]) == pytest.approx(FAST.init_noise + FAST.noise_floor)
    # a warm start whose noise for the column had fallen to the floor (while the column was
    # all zero) starts the column afresh, as if its values had stayed at the initial ones
    p = with_rare.params
    shrunk = p._replace(
        log_amp=p.log_amp.at[-1].set(-20.0), log_noise=p.log_noise.at[-1].set(-20.0)
    )
    warm = fit_agent_gp(x, y2, ids, jax.random.key(5), FAST, init=shrunk)
    same = fit_agent_gp(x, y2, ids, jax.random.key(5), FAST, init=p)
    np.testing.assert_array_equal(np.asarray(warm.theta), np.asarray(same.theta))
    # encoding and prediction ignore it: the column's values do not move a new latent
    x_new, y_new, _ = _group_data(seed=21, n_agents=1, groups=np.full(1, 1))
    quiet = np.concatenate([y_new, np.zeros((len(y_new), 1))], axis=1)
    loud = quiet.copy()
    loud[:3, -1] = 1.0
    np.testing.assert_allclose(
        encode_agent_gp(with_rare, x_new, quiet), encode_agent_gp(with_rare, x_new, loud), atol=1e-6
    )
    mean, _ = predict_agent_gp(with_rare, x_new, np.asarray(with_rare.theta)[0])
    np.testing.assert_allclose(np.asarray(mean)[:, -1], float(with_rare.y_mean[-1]), atol=1e-6)


def test_encode_places_new_agent_in_its_group(fit):
    theta = np.asarray(fit.theta)[:, 0]
    centres = np.array([theta[GROUPS == g].mean() for g in range(3)])
    for g in range(3):
        groups = np.full(1, g)
        x_new, y_new, _ = _group_data(seed=20 + g, n_agents=1, groups=groups)
        t = np.asarray(encode_agent_gp(fit, x_new, y_new))
        assert t.shape == (1,)
        assert int(np.argmin(np.abs(centres - t[0]))) == g
    # the predictive at the new latent fits the new data
    mean, var = predict_agent_gp(fit, x_new, t)
    assert mean.shape == var.shape == y_new.shape
    assert np.all(np.asarray(var) > 0)
    assert float(np.sqrt(np.mean((np.asarray(mean) - y_new) ** 2))) < 0.3


def test_non_finite_steps_are_skipped_and_counted():
    def loss(p):  # finite below 1, NaN above: Adam heads for 3 and must stop short
        return jnp.where(p < 1.0, (p - 3.0) ** 2, jnp.nan)

    best, best_loss, history, skipped = AG._adam_best(loss, jnp.asarray(0.0), 50, 50, 0.3, jnp.inf)
    assert int(skipped) > 0
    assert np.sum(np.isnan(np.asarray(history))) == int(skipped)
    assert float(best) < 1.0 and np.isfinite(float(best_loss))


def _reference_adam(grad, p, n_steps, lr, clip):
    """Adam (optax defaults) on gradients scaled to global norm <= clip, cosine-decayed as
    _adam_best documents; plain NumPy, float64."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for i in range(n_steps):
        g = grad(p)
        g = g * min(1.0, clip / np.linalg.norm(g))
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        m_hat, v_hat = m / (1 - 0.9 ** (i + 1)), v / (1 - 0.999 ** (i + 1))
        cosine = 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * i / n_steps))
        p = p - lr * cosine * m_hat / (np.sqrt(v_hat) + 1e-8)
    return p


def test_steps_follow_adam_on_clipped_gradients():
    # a loss whose gradient falls from ~4000 to ~1 along the way: clipping changes the path
    scale = np.array([1.0, 3.0])
    loss = lambda p: jnp.sum(scale * p**4)  # noqa: E731
    grad = lambda p: 4 * scale * p**3  # noqa: E731
    p0 = np.array([-7.0, 5.0])
    with jax.enable_x64(True):
        best, *_ = AG._adam_best(loss, jnp.asarray(p0), 30, 30, 0.5, 10.0)
    np.testing.assert_allclose(
        np.asarray(best), _reference_adam(grad, p0, 30, 0.5, 10.0), rtol=1e-9
    )
    unclipped = _reference_adam(grad, p0, 30, 0.5, np.inf)
    assert np.max(np.abs(np.asarray(best) - unclipped)) > 0.1


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda x, y, i: (x[:-1], y, i), "Y.shape"),
        (lambda x, y, i: (x, y, i[:-1]), "agent_ids.shape"),
        (
            lambda x, y, i: (np.where(np.arange(len(x))[:, None] == 4, np.nan, x), y, i),
            "X non-finite",
        ),
        (lambda x, y, i: (x, np.full_like(y, np.inf), i), "Y non-finite"),
        (lambda x, y, i: (x, y, i.astype(float)), "agent_ids.dtype"),
        (lambda x, y, i: (x, y, np.where(i == 1, 2, i)), "agent_ids"),  # agent 1 has no rows
        (lambda x, y, i: (x, y, i - 1), "agent_ids"),  # negative ids
        (lambda x, y, i: (x[:, :, None], y, i), "X.shape"),
    ],
)
def test_bad_data_names_the_field(data, change, field):
    x, y, ids = change(*data)
    with pytest.raises(ConfigError, match=field):
        fit_agent_gp(x, y, ids, jax.random.key(0), FAST)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_steps": 0}, "AgentGPConfig.n_steps"),
        ({"n_restarts": 0}, "AgentGPConfig.n_restarts"),
        ({"d_theta": 1.5}, "AgentGPConfig.d_theta"),
        ({"n_inducing": 0}, "AgentGPConfig.n_inducing"),
        ({"precision": "float16"}, "AgentGPConfig.precision"),
        ({"noise_floor": 0.0}, "AgentGPConfig.noise_floor"),
        ({"learning_rate": math.nan}, "AgentGPConfig.learning_rate"),
        ({"outlier_z": -1.0}, "AgentGPConfig.outlier_z"),
        ({"clip_norm": 0.0}, "AgentGPConfig.clip_norm"),
    ],
)
def test_bad_config_names_the_field(data, kwargs, field):
    x, y, ids = data
    with pytest.raises(ConfigError, match=field):
        fit_agent_gp(x, y, ids, jax.random.key(0), AgentGPConfig(**kwargs))


def test_bad_init_mask_and_new_data(data, fit):
    x, y, ids = data
    short = fit.params._replace(theta=fit.params.theta[:-1])
    with pytest.raises(ConfigError, match="init.theta.shape"):
        fit_agent_gp(x, y, ids, jax.random.key(0), FAST, init=short)
    with pytest.raises(ConfigError, match="init"):
        fit_agent_gp(x, y, ids, jax.random.key(0), FAST, init={"theta": 1})
    with pytest.raises(ConfigError, match="mask.shape"):
        fit_agent_gp(x, y, ids, jax.random.key(0), FAST, mask=np.ones(3, bool))
    with pytest.raises(ConfigError, match="X_new.shape"):
        encode_agent_gp(fit, np.zeros((5, 2)), np.zeros((5, 1)))
    with pytest.raises(ConfigError, match="Y_new.shape"):
        encode_agent_gp(fit, np.zeros((5, 1)), np.zeros((4, 1)))
    with pytest.raises(ConfigError, match="Y_new non-finite"):
        encode_agent_gp(fit, np.zeros((5, 1)), np.full((5, 1), np.nan))


def test_a_batch_of_fits_is_each_fit_alone(data, fit):
    """fit_agent_gp_batch: run r is fit_agent_gp of run r's data, key and init (one warm,
    one cold here) up to float rounding; runs of other shapes or counts are refused."""
    x, y, ids = data
    x2, y2, ids2 = _group_data(seed=3)
    keys = [jax.random.key(2), jax.random.key(3)]
    batch = AG.fit_agent_gp_batch([x, x2], [y, y2], [ids, ids2], keys, FAST, inits=[fit, None])
    alone = [
        fit_agent_gp(x, y, ids, keys[0], FAST, init=fit),
        fit_agent_gp(x2, y2, ids2, keys[1], FAST),
    ]
    # float32, 100 Adam steps: rounding apart by up to 0.4% of theta when measured
    for got, want in zip(batch, alone, strict=True):
        np.testing.assert_allclose(got.theta, want.theta, rtol=0.02, atol=0.02)
        np.testing.assert_allclose(got.final_loss, want.final_loss, rtol=1e-3)
        assert int(got.best_restart) == int(want.best_restart)
        assert _ari(got.theta) == 1.0
    with pytest.raises(ConfigError, match="runs' shapes"):
        AG.fit_agent_gp_batch([x, x2[:-30]], [y, y2[:-30]], [ids, ids2[:-30]], keys, FAST)
    with pytest.raises(ConfigError, match="runs"):
        AG.fit_agent_gp_batch([x, x2], [y], [ids, ids2], keys, FAST)
