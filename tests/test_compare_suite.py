"""benchmarks.compare's aggregation on hand-made run summaries (no training)."""

import numpy as np
import pytest

from benchmarks.compare import aggregate, suite_throughput


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
