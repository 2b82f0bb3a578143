"""Episodes to threshold, t-intervals and the headroom share, on hand-made numbers."""

import jax
import numpy as np
import pytest
from scipy import stats

from c3rl_jax.analysis.comparison import (
    episodes_to_threshold,
    headroom,
    interval,
    rebuild_stability,
)


def test_episodes_to_threshold_is_the_end_of_the_first_window_whose_mean_reaches_it():
    curve = np.array([0, 0, 0, 10, 10, 10, 10, 10, 0, 0], float)
    # windows of 5 end after episode 5..10: means 4, 6, 8, 10, 8, 6
    assert episodes_to_threshold(curve, 6.0) == 6.0
    assert episodes_to_threshold(curve, 9.0) == 8.0
    assert np.isnan(episodes_to_threshold(curve, 10.5))
    assert episodes_to_threshold(curve, 10.0, window=2) == 5.0


def test_the_interval_is_the_95_percent_t_interval_of_the_finite_values():
    mean, half = interval(np.array([1.0, 2.0, 3.0, np.nan]))
    assert mean == 2.0 and half == pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3))
    assert interval(np.array([4.0])) == (4.0, 0.0)
    assert all(np.isnan(interval(np.array([np.nan]))))


def test_headroom_by_hand_with_the_better_naive_choice_and_not_reached_as_the_budget():
    episodes = {
        "individual": np.array([60.0, 70.0, np.nan]),  # mean (60 + 70 + 100) / 3 = 76.67
        "global": np.array([50.0, 40.0, 45.0]),  # mean 45: the better naive choice
        "oracle": np.array([20.0, 30.0, 25.0]),  # mean 25: 20 episodes of headroom
        "c3rl": np.array([30.0, 30.0, 30.0]),  # mean 30: captures (45 - 30) / 20 = 0.75
    }
    h = headroom(episodes, budget=100)
    assert h["naive"] == "global" and h["oracle_gain"] == pytest.approx(20.0)
    assert h["headroom"] == pytest.approx(0.75)
    assert h["low"] <= 0.75 <= h["high"]
    # a resampling of seeds that picks seed 0 three times: (50 - 30) / (50 - 20) = 2/3
    assert h["low"] <= 2 / 3 <= h["high"]
    assert headroom(episodes, 100, key=jax.random.PRNGKey(0)) == h  # same key, same interval


def test_no_headroom_where_the_oracle_is_not_ahead():
    same = np.array([30.0, 40.0])
    h = headroom({"individual": same, "global": same, "oracle": same, "c3rl": same}, 100)
    assert np.isnan(h["headroom"]) and np.isnan(h["low"]) and h["oracle_gain"] == 0.0


def test_rebuild_stability_by_hand():
    seeds = [
        {"rebuilds": [{"episode": 10, "ari": 1.0}, {"episode": 20, "ari": 0.5}]},
        {"rebuilds": [{"episode": 10, "ari": 0.5}, {"episode": 25, "ari": 0.7}]},
        {"rebuilds": [{"episode": 30, "ari": 0.9}, {"episode": 35, "ari": 0.8}]},
    ]
    s = rebuild_stability(seeds)
    assert s["ari_episode_10"] == 0.75 and s["ari_episode_20"] == 0.5
    # after episode 20: 0.7, 0.9, 0.8; only 0.7 is below 0.8 (0.8 itself is not)
    assert (s["later_below"], s["later"], s["later_lowest"]) == (1, 3, 0.7)
    empty = rebuild_stability([{"rebuilds": []}])
    assert np.isnan(empty["ari_episode_10"]) and empty["later"] == 0
    assert np.isnan(empty["later_lowest"])
