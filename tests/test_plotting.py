"""c3rl_jax.analysis.plotting: the curve arithmetic by hand, the figures written, and the errors."""

import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
from scipy import stats

from c3rl_jax.analysis import plotting
from c3rl_jax.errors import ConfigError
from c3rl_jax.runtime.results import Results

GROUPS = np.array([2, 0, 1, 0, 2, 1])  # 6 agents in 3 groups, not sorted
EPISODES = 12
REBUILDS = [  # P rebuilt after episodes 4 and 8; the second fit refused (no ARI)
    {"episode": 4, "n_clusters": 3, "ari": 0.5, "labels": [0, 1, 2, 1, 0, 2]},
    {"episode": 8, "n_clusters": 2, "labels": [0, 1, 1, 1, 0, 1]},
]


def make_results(seed: int = 0, episodes: int = EPISODES, groups=GROUPS, rebuilds=REBUILDS):
    rng = np.random.default_rng(seed)
    n = len(groups)
    sharing = rng.dirichlet(np.ones(n), size=(3, n)).astype(np.float32)  # [3, N, N]
    return Results(
        config={"task": "pendulum", "reward": "dense", "sharing": "c3rl", "seed": seed},
        returns=rng.normal(size=(n, episodes)),
        sharing_matrices=sharing,
        sharing_index=np.repeat(np.arange(3), episodes // 3).astype(np.int32),
        groups=np.asarray(groups),
        episode_length=10,
        compile_time=0.0,
        run_time=1.0,
        wall_time=1.0,
        extra={"rebuilds": rebuilds},
    )


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] > 200 and image.shape[1] > 200


def test_group_curves_by_hand():
    returns = np.arange(6 * 4, dtype=float).reshape(6, 4) ** 2  # [N, E]
    bands = plotting.group_curves(returns, GROUPS)
    assert sorted(bands) == [0, 1, 2]
    for g, (a, b) in {0: (1, 3), 1: (2, 5), 2: (0, 4)}.items():  # the agents of each group
        lo, hi = np.minimum(returns[a], returns[b]), np.maximum(returns[a], returns[b])
        mean, low, high = bands[g]
        np.testing.assert_allclose(mean, (returns[a] + returns[b]) / 2)
        np.testing.assert_allclose(low, lo + 0.1 * (hi - lo))  # quantiles of two values
        np.testing.assert_allclose(high, lo + 0.9 * (hi - lo))


def test_runs_group_curves_are_a_t_interval_over_runs():
    returns = np.random.default_rng(1).normal(size=(3, 6, 5))  # [R, N, E]
    bands = plotting.runs_group_curves(returns, GROUPS)
    for g, agents in {0: [1, 3], 1: [2, 5], 2: [0, 4]}.items():
        per_run = returns[:, agents].mean(axis=1)  # [R, E]
        sem = per_run.std(axis=0, ddof=1) / np.sqrt(3)
        low, high = stats.t.interval(0.95, 2, loc=per_run.mean(axis=0), scale=sem)
        np.testing.assert_allclose(bands[g][0], per_run.mean(axis=0))
        np.testing.assert_allclose(bands[g][1], low)
        np.testing.assert_allclose(bands[g][2], high)
    mean, low, high = plotting.t_band(returns[:1, 0])  # one run: zero width
    np.testing.assert_array_equal(low, mean)
    np.testing.assert_array_equal(high, mean)


def test_sharing_figure_has_a_panel_per_distinct_p():
    results = make_results()
    fig = plotting.sharing_figure(results.sharing_matrices, results.sharing_index, GROUPS, "t")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == len(results.sharing_matrices) == 3
    assert [ax.get_title() for ax in panels] == [f"from episode {e}" for e in (1, 5, 9)]
    assert {ax.images[0].get_clim() for ax in panels} == {(0.0, results.sharing_matrices.max())}
    order = [1, 3, 2, 5, 0, 4]  # agents by true group
    shown = np.asarray(panels[1].images[0].get_array())
    np.testing.assert_array_equal(shown, results.sharing_matrices[1][np.ix_(order, order)])
    early = plotting.sharing_figure(results.sharing_matrices, results.sharing_index[:8], GROUPS)
    assert [ax.get_title() for ax in early.axes if ax.images][2] == "unused (after the run)"


def test_draw_rebuilds_skips_records_without_the_value():
    fig, (ax_ari, ax_k) = plotting.figure(2)
    plotting.draw_rebuilds(ax_ari, ax_k, {"a": REBUILDS, "b": REBUILDS[:1]})
    assert [list(line.get_xdata()) for line in ax_ari.lines] == [[4], [4]]
    assert list(ax_k.lines[0].get_ydata()) == [3, 2]
    assert [t.get_text() for t in ax_ari.get_legend().get_texts()] == ["a", "b"]


def test_plot_runs_writes_pngs(tmp_path):
    one = make_results().save(tmp_path / "seed0")
    written = plotting.plot_runs([one])  # default: into the run's folder
    assert written == [one / "curves.png", one / "sharing.png", one / "rebuilds.png"]
    for path in written:
        assert_png(path)
    seeds = [make_results(s).save(tmp_path / f"seed{s}") for s in range(1, 3)]
    written = plotting.plot_runs([one, *seeds], tmp_path / "figures", threshold=0.0)
    assert [p.name for p in written] == ["curves.png", "sharing.png", "rebuilds.png"]
    assert all(p.parent == tmp_path / "figures" for p in written)
    plain = make_results(rebuilds=[]).save(tmp_path / "individual")
    assert plotting.plot_runs([plain]) == [plain / "curves.png"]


def test_plot_runs_errors(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.*results.json") as error:
        plotting.plot_runs([tmp_path / "nowhere"])
    assert "\n" not in str(error.value)
    one = make_results().save(tmp_path / "a")
    longer = make_results(episodes=15).save(tmp_path / "longer")
    with pytest.raises(ConfigError, match=r"longer.*shape \(6, 12\)"):
        plotting.plot_runs([one, longer])
    other = make_results(groups=np.sort(GROUPS)).save(tmp_path / "other")
    with pytest.raises(ConfigError, match="other.*groups"):
        plotting.plot_runs([one, other])


def test_no_matplotlib_on_import_and_no_pyplot():
    code = (
        "import sys, c3rl_jax\n"
        "assert 'matplotlib' not in sys.modules\n"
        "import c3rl_jax.analysis.plotting\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
