"""Soft clustering on theta, agent-level assignments, the similarity and sharing matrices."""

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from c3rl_jax.causal import (
    adjusted_rand_index,
    agent_labels,
    agent_soft_assignments,
    cluster_agents,
    fit_gmm,
    sharing_from_theta,
    sharing_matrix,
    similarity_matrix,
    soft_assignments,
)
from c3rl_jax.causal.clustering import K_MARGIN, MIN_SILHOUETTE, align_mixture
from c3rl_jax.errors import ConfigError


def _grouped_theta(seed=0, per_agent=15, groups=(0, 0, 1, 1, 1, 2, 2), spread=0.3):
    """theta [n, 1] for agents whose samples sit around their group's centre."""
    rng = np.random.default_rng(seed)
    centres = np.array([-3.0, 0.0, 3.0])
    ids = np.repeat(np.arange(len(groups)), per_agent)
    theta = centres[np.asarray(groups)[ids]] + spread * rng.normal(size=ids.size)
    return theta[:, None], ids, np.asarray(groups)


def test_soft_assignments_sum_to_one_and_bic_finds_the_groups():
    theta, _, _ = _grouped_theta()
    gmm = fit_gmm(theta, range(1, 6), seed=0)
    assert gmm.n_components == 3
    resp = soft_assignments(gmm, theta)
    assert resp.shape == (theta.shape[0], 3)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(resp >= 0)
    # a fixed count is respected
    assert fit_gmm(theta, 2, seed=0).n_components == 2


def test_agent_assignments_similarity_and_sharing():
    rng = np.random.default_rng(1)
    resp = rng.dirichlet(np.ones(3), size=40)
    ids = rng.integers(0, 5, size=40)
    ids[ids == 4] = 3  # agent 4 has no samples
    V = agent_soft_assignments(resp, ids, n_agents=5)
    assert V.shape == (5, 3)
    np.testing.assert_allclose(V.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(V[0], resp[ids == 0].mean(axis=0))
    np.testing.assert_allclose(V[4], [1 / 3] * 3)  # no evidence: uniform
    S = similarity_matrix(V)
    np.testing.assert_allclose(S, S.T)
    assert np.all(S >= 0)
    np.testing.assert_allclose(S, V @ V.T)
    P = sharing_matrix(S)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(P, S / S.sum(axis=1, keepdims=True))
    assert np.array_equal(agent_labels(V), np.argmax(V, axis=1))
    # an all-zero row becomes uniform instead of NaN
    P0 = sharing_matrix(np.array([[0.0, 0.0], [1.0, 3.0]]))
    np.testing.assert_allclose(P0, [[0.5, 0.5], [0.25, 0.75]])


def test_sharing_from_theta_recovers_agent_groups():
    theta, ids, groups = _grouped_theta(seed=2)
    result = sharing_from_theta(theta, ids, n_agents=len(groups), n_components=range(1, 6), seed=0)
    assert result.n_components == 3
    assert result.P.shape == (7, 7) and result.P.dtype == np.float32
    np.testing.assert_allclose(result.P.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(result.S, result.S.T)
    assert adjusted_rand_index(groups, result.agent_labels) == pytest.approx(1.0)
    # agents of the same group share with each other, not across groups
    same = groups[:, None] == groups[None, :]
    assert result.P[same].min() > 0.2 and result.P[~same].max() < 0.01
    # the training loop's entry point: the BIC / fixed choice
    auto = cluster_agents(theta, ids, 7, n_components=None, max_components=5, seed=0)
    np.testing.assert_array_equal(auto.P, result.P)
    assert auto.V.shape == (7, 3) and auto.agent_labels.shape == (7,)
    assert cluster_agents(theta, ids, 7, n_components=2, seed=0).n_components == 2


def test_same_seed_same_result():
    theta, ids, _ = _grouped_theta(seed=3, spread=1.2)  # overlapping groups
    a = sharing_from_theta(theta, ids, 7, range(1, 5), seed=5)
    b = sharing_from_theta(theta, ids, 7, range(1, 5), seed=5)
    np.testing.assert_array_equal(a.P, b.P)


def test_adjusted_rand_index():
    assert adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    chance = adjusted_rand_index(rng.integers(0, 3, 3000), rng.integers(0, 3, 3000))
    assert abs(chance) < 0.01


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fit_gmm(np.full((5, 1), np.nan)), "theta non-finite entries=5"),
        (lambda: fit_gmm(np.zeros((5, 1, 1))), "theta.shape"),
        (lambda: fit_gmm(np.zeros((5, 1)), n_components=0), "n_components=0"),
        (lambda: fit_gmm(np.zeros((3, 1)), n_components=[4, 5]), "n_components"),
        (lambda: fit_gmm(np.zeros((5, 1)), covariance_type="round"), "covariance_type"),
        (lambda: agent_soft_assignments(np.ones((3, 2)) / 2, [0, 1, 5], 3), "agent_ids range"),
        (lambda: agent_soft_assignments(np.ones((3, 2)) / 2, [0, 1], 3), "agent_ids.shape"),
        (lambda: agent_soft_assignments(np.ones((2, 2)) / 2, [0.0, 1.0], 3), "agent_ids.dtype"),
        (lambda: sharing_matrix(-np.eye(2)), "S.min"),
        (lambda: sharing_from_theta(np.zeros((4, 1)), [0, 1, 2], 3), "agent_ids.shape"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_align_mixture_renames_components_after_the_previous_labels():
    rng = np.random.default_rng(0)
    centres = np.array([-3.0, 0.0, 3.0])
    groups = np.repeat([0, 1, 2], 5)
    theta = centres[groups][:, None] + 0.1 * rng.normal(size=(15, 1))
    result = sharing_from_theta(theta, np.arange(15), 15, n_components=3, seed=1)
    previous = np.array([2, 0, 1])[groups]  # the last rebuild named the same groups otherwise
    aligned = align_mixture(result, previous)
    np.testing.assert_array_equal(aligned.agent_labels, previous)
    np.testing.assert_allclose(aligned.P, result.P)  # only names change
    # the permuted mixture still gives the permuted soft assignments, the input's its own
    np.testing.assert_allclose(soft_assignments(aligned.gmm, theta), aligned.V, atol=1e-9)
    np.testing.assert_allclose(soft_assignments(result.gmm, theta), result.V, atol=1e-9)
    # a new cluster that did not exist before takes a fresh name after the matched ones
    two = align_mixture(result, np.where(groups == 2, 0, groups))
    assert sorted(set(two.agent_labels.tolist())) == [0, 1, 2]
    assert len(set(two.agent_labels[groups == 0])) == 1


def test_silhouette_rule_finds_the_groups_among_few_agent_points_or_none():
    rng = np.random.default_rng(3)
    groups = np.repeat([0, 1, 2], [7, 7, 6])
    theta = np.array([-2.0, 0.0, 2.0])[groups][:, None] + 0.2 * rng.normal(size=(20, 1))
    gmm = fit_gmm(theta, range(1, 7), seed=0, criterion="silhouette")
    assert gmm.n_components == 3
    labels = soft_assignments(gmm, theta).argmax(axis=1)
    assert adjusted_rand_index(groups, labels) == 1.0
    # no K >= 2 above the threshold: the smallest candidate (a 1-D blob reaches about 0.6)
    blob = rng.normal(size=(20, 1))
    one = fit_gmm(blob, range(1, 7), seed=0, criterion="silhouette", min_silhouette=0.8)
    assert one.n_components == 1 and MIN_SILHOUETTE < 0.8
    with pytest.raises(ConfigError, match="criterion='aic' is invalid"):
        fit_gmm(theta, range(1, 3), criterion="aic")


def _groups_with_gap(gap: float) -> np.ndarray:
    """1-D latents of 20 agents: groups of 7 at 0 and 6, and 6 at 6 + gap (sd 0.3)."""
    rng = np.random.default_rng(0)
    parts = [rng.normal(0, 0.3, 7), rng.normal(6, 0.3, 7), rng.normal(6 + gap, 0.3, 6)]
    return np.concatenate(parts)[:, None]


def _silhouette(theta: np.ndarray, k: int) -> float:
    gmm = fit_gmm(theta, k)
    z = (theta - gmm.theta_mean_) / gmm.theta_scale_
    return silhouette_score(z, gmm.predict(z))


@pytest.mark.parametrize("gap", [1.0, 2.0, 2.5, 3.0])
def test_silhouette_rule_keeps_the_previous_k_unless_another_wins_by_the_margin(gap):
    theta = _groups_with_gap(gap)
    scores = {k: _silhouette(theta, k) for k in (2, 3)}
    best = max(scores, key=scores.get)
    other = 5 - best  # the other of 2 and 3
    fresh = fit_gmm(theta, range(1, 7), criterion="silhouette").n_components
    assert fresh == best  # K = 4..6 score lower on three groups
    kept = fit_gmm(theta, range(1, 7), criterion="silhouette", previous_k=other).n_components
    assert kept == (other if scores[best] <= scores[other] + K_MARGIN else best)
    same = fit_gmm(theta, range(1, 7), criterion="silhouette", previous_k=best).n_components
    assert same == best


def test_cluster_agents_uses_the_criterion_it_is_given():
    """On 20 evenly spread 1-D latents BIC picks one component and the silhouette rule two;
    cluster_agents must follow the criterion asked for."""
    theta = np.linspace(0.0, 1.0, 20)[:, None]
    ids = np.arange(20)
    chosen = {}
    for criterion in ("bic", "silhouette"):
        chosen[criterion] = fit_gmm(theta, range(1, 7), criterion=criterion).n_components
        found = cluster_agents(theta, ids, 20, None, 6, criterion=criterion).n_components
        assert found == chosen[criterion], criterion
    assert chosen == {"bic": 1, "silhouette": 2}
