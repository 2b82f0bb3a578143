"""The chosen heterogeneous populations are what benchmarks.heterogeneous says (no training)."""

import numpy as np
import pytest

from benchmarks.heterogeneous import HETEROGENEOUS, make_populations, split
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
