"""benchmarks.compare's aggregation on hand-made run summaries (no training)."""

import numpy as np
import pytest

from benchmarks.compare import aggregate, markdown, suite_throughput


def _summary(wall, steps, one_program, curve):
    return {
        "curve": curve,
        "wall_time_s": wall,
        "one_program": one_program,
        "agent_steps": steps,
        "rebuilds": [],
    }


def test_suite_throughput_counts_one_program_once_and_each_process():
    curve = [-500.0, -300.0, -300.0, -300.0, -300.0, -300.0]
    runs = {
        # two seeds in one program: both carry the program's 30 s
        "oracle": [_summary(30.0, 1000, True, curve), _summary(30.0, 1000, True, curve)],
        # two seeds, one process each: 10 s + 14 s
        "individual": [_summary(10.0, 1000, False, curve), _summary(14.0, 1000, False, curve)],
        "global": [_summary(20.0, 500, True, curve)],
    }
    table, _, _ = aggregate(runs, threshold=-400.0)
    assert table["oracle"]["run_seconds"] == 30.0
    assert table["individual"]["run_seconds"] == 24.0
    assert table["individual"]["agent_steps"] == 2000
    suite = suite_throughput({"pendulum-dense": {"methods": table}})
    assert suite["suite_run_seconds"] == pytest.approx(30 + 24 + 20)
    assert suite["suite_agent_steps"] == 4500
    assert suite["suite_agent_steps_per_s"] == pytest.approx(4500 / 74)
    assert np.isnan(suite_throughput({})["suite_agent_steps_per_s"])


@pytest.mark.parametrize("oracle_first", [3, 6])
def test_headroom_line_says_when_the_oracle_gains_nothing(oracle_first):
    """Curves that step up at a chosen episode, so the episodes to threshold differ by the
    steps' offsets: individual at 5, global never, c3rl at 4, the oracle at `oracle_first`.
    Oracle at 3: c3rl captures (5 - 4) / (5 - 3) = 0.5; oracle at 6, one episode behind
    individual: no headroom, said so instead of "nan"."""

    def curve(first):
        return [0.0] * first + [10.0] * (12 - first)

    steps = {"individual": 5, "c3rl": 4, "oracle": oracle_first}
    runs = {name: [_summary(1.0, 10, True, curve(first))] * 3 for name, first in steps.items()}
    runs["global"] = [_summary(1.0, 10, True, [0.0] * 12)] * 3
    table, shares, _ = aggregate(runs, threshold=5.0)
    text = markdown({"t": {"threshold": 5.0, "methods": table, "headroom": shares}})
    if oracle_first == 3:
        assert "c3rl: 0.50 of the oracle's headroom" in text
        assert "the oracle is 2.0 episodes ahead of individual" in text
    else:
        assert "c3rl: no headroom to capture (the oracle is 1.0 episodes behind individual" in text
        assert "nan of" not in text
