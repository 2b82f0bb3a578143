"""The chosen heterogeneous populations are what benchmarks.heterogeneous says (no training)."""

import json

import numpy as np
import pytest

import benchmarks.heterogeneous as H
from benchmarks.heterogeneous import (
    HETEROGENEOUS,
    METHODS,
    evaluate,
    make_populations,
    split,
    table,
)
from benchmarks.mechanisms import JITTER

KEYS = sorted(HETEROGENEOUS)


def test_every_entry_is_documented():
    assert KEYS, "no chosen population"
    for key in KEYS:
        entry = HETEROGENEOUS[key]
        assert set(entry) >= {"spec", "threshold", "why"}
        sizes = entry["spec"]["sizes"]
        for values in entry["spec"]["values"].values():
            assert len(values) == len(sizes)


@pytest.mark.parametrize("key", KEYS)
def test_groups_and_values(key):
    task, _ = split(key)
    spec = HETEROGENEOUS[key]["spec"]
    pops = make_populations(key, 2)
    for pop in pops:
        groups = np.asarray(pop.groups)
        assert np.bincount(groups).tolist() == spec["sizes"]
        for name, values in spec["values"].items():
            got = np.asarray(getattr(pop.params, name))
            want = np.asarray(values, np.float32)[groups]
            if name in JITTER[task]:  # 5% jitter: within 5 standard deviations, centred
                ratio = got[want != 0] / want[want != 0]
                assert np.all(np.abs(ratio - 1) < 0.25)
                assert abs(ratio.mean() - 1) < 0.05
                assert np.all(got[want == 0] == 0)
            else:
                np.testing.assert_array_equal(got, want)
    name = JITTER[task][0]
    a, b = (np.asarray(getattr(p.params, name)) for p in pops)
    assert not np.allclose(a, b), "seeds 0 and 1 drew the same jitter"


def _row(reach: dict, spec: dict, threshold: float, episodes: int) -> dict:
    methods = {m: {"episodes_to_threshold": list(v)} for m, v in reach.items()}
    return {"spec": spec, "threshold": threshold, "episodes": episodes, "methods": methods}


def test_evaluate_keeps_an_earlier_sweeps_methods_and_adds_the_headroom():
    task, reward = split("pendulum-sparse")
    entry = HETEROGENEOUS["pendulum-sparse"]
    reach = {
        "individual": [30.0, 32.0, 34.0],
        "global": [40.0, float("nan"), 44.0],
        "oracle": [20.0, 22.0, 24.0],
        "c3rl": [22.0, 24.0, 26.0],
    }
    done = _row(reach, entry["spec"], entry["threshold"], 100)
    row = evaluate(task, reward, entry, (*METHODS, "c3rl"), done)  # runs nothing
    assert row["methods"] == done["methods"]
    assert row["criterion"]["naive"] == "individual"
    assert row["criterion"]["gain"] == pytest.approx(1 - 22 / 32)
    assert row["headroom"]["headroom"] == pytest.approx((32 - 24) / (32 - 22))
    for method in row["methods"].values():  # what the table prints beside the numbers
        method |= {"interval_budget": (1.0, 0.5), "reached": 3, "final_return": (2.0, 0.1)}
    lines = table({"case": row}).splitlines()
    assert lines[-1].startswith("| case | c3rl | 1.0 ± 0.5 | 3/5 |")
    # global's interval (40, 100, 44) is wide enough to overlap the oracle's: not met
    assert "headroom 0.80" in lines[-1] and lines[-2].endswith("| False |")
    assert row["criterion"]["non_overlapping"] is False
    # an oracle no faster than the better naive method leaves no headroom: said, not "nan"
    row["headroom"] = {**row["headroom"], "headroom": float("nan")}
    assert (
        table({"case": row}).splitlines()[-1].endswith("| no headroom (the oracle is no faster) |")
    )
    # a row of another threshold is not reused: with no method asked for, nothing is kept
    stale = _row(reach, entry["spec"], entry["threshold"] + 1, 100)
    assert evaluate(task, reward, entry, (), stale)["methods"] == {}


def test_main_keeps_the_sweeps_naive_runs_but_not_their_c3rl(tmp_path, monkeypatch):
    key = "cartpole_swingup-dense"
    entry = HETEROGENEOUS[key]
    reach = {m: [20.0, 22.0, 24.0] for m in (*METHODS, "c3rl")}
    swept = _row(reach, entry["spec"], entry["threshold"], entry["episodes"])
    other = _row(reach, entry["spec"], entry["threshold"], entry["episodes"] + 1)
    candidates = {"other episodes": other, "the chosen one": swept}
    (tmp_path / f"sweep-{key}.json").write_text(json.dumps({"candidates": candidates}))
    monkeypatch.setattr(H, "OUT_DIR", tmp_path)
    kept = H.earlier_row(key, {})
    assert kept["episodes"] == entry["episodes"] and set(kept["methods"]) == set(METHODS)
    assert H.earlier_row(key, {key: other}) is other  # an earlier main's row comes first
    assert H.earlier_row("pendulum-dense", {}) is None  # no sweep file there
