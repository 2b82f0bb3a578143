import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax.exploration import (
    ExplorationConfig,
    draw_means,
    mean_scale,
    noise_step,
    stratified_quantiles,
)


def test_mean_scale_decays_geometrically_to_its_floor():
    cfg = ExplorationConfig(mean_sigma=0.5, mean_decay=0.9, mean_floor=0.1)
    scales = np.asarray(mean_scale(jnp.arange(30), cfg))
    np.testing.assert_allclose(scales[:3], [0.5, 0.45, 0.405], rtol=1e-6)
    assert np.all(np.diff(scales) <= 0) and scales.min() == np.float32(0.1)
    # 0.5 * 0.9^k < 0.1 first at k = 16
    assert np.argmax(scales == np.float32(0.1)) == 16


CLUSTERS = jnp.array([0, 1, 0, 0, 2, 1, 0, 3, 3, 3])  # sizes 4, 2, 1 and 3


def test_stratified_levels_hold_one_agent_per_stratum_of_each_cluster():
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    levels = np.asarray(jax.vmap(stratified_quantiles, in_axes=(0, None))(keys, CLUSTERS))
    assert np.all((levels > 0) & (levels < 1))
    clusters = np.asarray(CLUSTERS)
    for c in np.unique(clusters):
        members = levels[:, clusters == c]  # [draws, size]
        strata = np.sort(np.floor(members * members.shape[1]), axis=1)
        np.testing.assert_array_equal(strata, np.tile(np.arange(members.shape[1]), (200, 1)))
    # jittered within strata, not fixed quantiles: the levels vary from draw to draw
    assert np.all(levels.std(axis=0) > 0.1)


def test_stratified_means_are_n_0_sigma_k_squared_for_every_agent():
    """Marginal law of the method: mean_n ~ N(0, sigma_k^2), clusters of one included."""
    cfg = ExplorationConfig(
        mode="coordinated", mean_draws="stratified", mean_sigma=0.4, mean_decay=0.5, mean_floor=0.0
    )
    draw = jax.jit(jax.vmap(lambda k: draw_means(k, jnp.array(1), CLUSTERS, 2, cfg)))
    means = np.asarray(draw(jax.random.split(jax.random.PRNGKey(3), 20_000)))  # [D, N, A]
    sigma_k = 0.2  # 0.4 * 0.5^1
    variance = means.var(axis=0)  # [N, A]
    # 20,000 draws: the variance's relative standard error is sqrt(2 / 20,000) = 1%
    np.testing.assert_allclose(variance, sigma_k**2, rtol=0.05)
    np.testing.assert_allclose(means.mean(axis=0), 0.0, atol=0.01)
    assert abs(float(np.mean(np.abs(means[:, 4]))) - sigma_k * np.sqrt(2 / np.pi)) < 0.005
    # within a cluster the means are anti-correlated (spread out), never alike by chance
    pairs = np.corrcoef(means[:, 0, 0], means[:, 2, 0])[0, 1]
    assert pairs < -0.2


def test_independent_means_have_the_annealed_spread():
    cfg = ExplorationConfig(mode="coordinated", mean_draws="independent", mean_sigma=0.3)
    means = np.asarray(
        draw_means(jax.random.PRNGKey(0), jnp.array(0), jnp.zeros(4000, jnp.int32), 1, cfg)
    )
    assert abs(means.std() - 0.3) < 0.02 and abs(means.mean()) < 0.02


def test_only_coordinated_exploration_has_nonzero_means():
    clusters = jnp.zeros(5, jnp.int32)
    for mode in ("ou", "gaussian", "none"):
        cfg = ExplorationConfig(mode=mode)
        assert not np.any(np.asarray(draw_means(jax.random.PRNGKey(0), 0, clusters, 2, cfg)))


def test_ou_noise_reverts_to_its_mean_and_gaussian_noise_is_memoryless():
    key = jax.random.PRNGKey(0)
    mean = jnp.full((2000, 1), 0.7)
    cfg = ExplorationConfig(mode="coordinated", theta=0.15, sigma=0.2, dt=1e-2)
    noise = jnp.zeros((2000, 1))
    step = jax.jit(lambda k, x: noise_step(k, x, mean, cfg))
    for k in jax.random.split(key, 3000):  # 3000 steps = 30 time units = 4.5 / theta
        noise = step(k, noise)
    # mean relaxes as 1 - exp(-theta t); stationary std sigma / sqrt(2 theta)
    assert abs(float(noise.mean()) - 0.7 * (1 - np.exp(-0.15 * 30))) < 0.02
    assert abs(float(noise.std()) - 0.2 / np.sqrt(0.3) * np.sqrt(1 - np.exp(-0.3 * 30))) < 0.03
    gauss = ExplorationConfig(mode="gaussian", sigma=0.3)
    g = noise_step(key, jnp.full((4000, 1), 5.0), mean, gauss)
    assert abs(float(g.mean())) < 0.03 and abs(float(g.std()) - 0.3) < 0.02
    assert not np.any(np.asarray(noise_step(key, noise, mean, ExplorationConfig(mode="none"))))
