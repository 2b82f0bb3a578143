"""Figures of saved runs: learning curves per true group, P at each rebuild, and the cluster
ARI and number of clusters K over rebuilds. `c3rl plot RUN [RUN ...]` calls `plot_runs`; the
other functions take arrays, for scripts such as benchmarks/compare.py.

Episodes count from 1: a rebuild record's "episode" is the number of episodes done, so the P it
builds is used from the next episode on. Figures are drawn on matplotlib's Agg canvas without
pyplot, so pyplot's backend and open figures stay as they are.
"""

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import stats

from c3rl_jax.errors import check
from c3rl_jax.runtime.results import Results

Band = tuple[np.ndarray, np.ndarray, np.ndarray]  # mean, low, high: each [E]
AGENTS_BAND = "band: 10-90% quantiles over agents"
RUNS_BAND = "band: 95% t-interval over runs"


def group_curves(returns: np.ndarray, groups: np.ndarray) -> dict[int, Band]:
    """returns [N, E], groups [N] -> per true group: the mean over its agents at each episode
    and the 10% and 90% quantiles over them, each [E]."""
    bands = {}
    for g in np.unique(groups):
        mine = returns[groups == g]
        low, high = np.quantile(mine, [0.1, 0.9], axis=0)
        bands[int(g)] = (mine.mean(axis=0), low, high)
    return bands


def t_band(curves: np.ndarray) -> Band:
    """curves [R, E] -> the mean over the R rows at each episode and its 95% t-interval, each
    [E] (zero width for one row)."""
    mean = curves.mean(axis=0)
    if len(curves) < 2:
        return mean, mean, mean
    scale = stats.t.ppf(0.975, len(curves) - 1) / np.sqrt(len(curves))
    half = scale * curves.std(axis=0, ddof=1)
    return mean, mean - half, mean + half


def runs_group_curves(returns: np.ndarray, groups: np.ndarray) -> dict[int, Band]:
    """returns [R, N, E] of R runs with the same groups [N] -> per true group: the mean over runs
    of the group's mean return at each episode and its 95% t-interval over runs, each [E]."""
    return {int(g): t_band(returns[:, groups == g].mean(axis=1)) for g in np.unique(groups)}


def figure(
    panels: int, cols: int = 3, panel: tuple[float, float] = (4.4, 3.6), title: str | None = None
) -> tuple[Figure, list]:
    """A Figure on the Agg canvas with `panels` axes, `cols` to a row, each about `panel`
    inches (width, height)."""
    cols = min(cols, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(panel[0] * cols, panel[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title)
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(panels)]


def save(fig: Figure, path: str | os.PathLike) -> Path:
    """Write `fig` as a PNG to `path` and return the path."""
    fig.savefig(path, dpi=110)
    return Path(path)


def draw_curves(
    ax, bands: dict, band: str, threshold: float | None = None, ylabel: str = "mean return"
) -> None:
    """One line per label of `bands` (label -> Band) with its band shaded; `band` says what
    the band is (the legend's title); a dotted line at `threshold` when given."""
    for label, (mean, low, high) in bands.items():
        x = np.arange(1, mean.size + 1)
        (line,) = ax.plot(x, mean, label=label)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", label="threshold")
    ax.set(xlabel="episode", ylabel=ylabel)
    ax.legend(title=band, fontsize=8, title_fontsize=8)


def curves_figure(
    bands: dict, band: str, title: str, threshold: float | None = None, ylabel: str = "mean return"
) -> Figure:
    """A one-panel Figure of `draw_curves` with these arguments, titled `title`."""
    fig, (ax,) = figure(1, panel=(7.0, 4.5), title=title)
    draw_curves(ax, bands, band, threshold, ylabel)
    return fig


def draw_sharing(ax, sharing: np.ndarray, groups: np.ndarray, vmax: float):
    """Heatmap of one P [N, N] (row n: agent n's weights on the buffers of agents m) on the
    scale 0..vmax, agents ordered by true group [N] with white lines between groups; returns
    the image, for a colour bar."""
    order = np.argsort(groups, kind="stable")
    image = ax.imshow(sharing[np.ix_(order, order)], cmap="viridis", vmin=0.0, vmax=vmax)
    ax.set(xticks=[], yticks=[])  # positions are not agent ids once reordered
    for edge in np.flatnonzero(np.diff(groups[order])) + 0.5:
        ax.axhline(edge, color="white", linewidth=0.8)
        ax.axvline(edge, color="white", linewidth=0.8)
    return image


def draw_rebuilds(ax_ari, ax_k, rebuilds: dict[str, list[dict]]) -> None:
    """Cluster ARI against the true groups on `ax_ari` and K on `ax_k` at each rebuild, one
    line per label of `rebuilds` (label -> rebuild records); records without the value (a
    refused or failed fit) are skipped."""
    for label, records in rebuilds.items():
        for ax, key in ((ax_ari, "ari"), (ax_k, "n_clusters")):
            kept = [r for r in records if key in r]
            ax.plot([r["episode"] for r in kept], [r[key] for r in kept], marker="o", label=label)
    xlabel = "episodes done at the rebuild"
    ax_ari.set(title="cluster ARI vs true groups", xlabel=xlabel, ylabel="ARI", ylim=(-0.1, 1.05))
    ax_k.set(title="clusters K", xlabel=xlabel, ylabel="K")
    ax_k.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_ari.legend(fontsize=8)


def sharing_figure(
    sharing_matrices: np.ndarray, sharing_index: np.ndarray, groups: np.ndarray, title: str = ""
) -> Figure:
    """One heatmap per distinct P of sharing_matrices [K, N, N], titled with the first episode
    that used it (by sharing_index [E]; a P built after the last episode is marked unused), on
    one colour scale, agents ordered by true group [N]."""
    fig, axes = figure(
        len(sharing_matrices),
        cols=5,
        panel=(2.6, 2.4),
        title=f"{title}: P at each rebuild (row n, column m; agents ordered by true group)",
    )
    vmax = float(sharing_matrices.max())
    for k, (ax, sharing) in enumerate(zip(axes, sharing_matrices, strict=True)):
        used = np.flatnonzero(sharing_index == k)
        image = draw_sharing(ax, sharing, groups, vmax)
        ax.set_title(f"from episode {used[0] + 1}" if used.size else "unused (after the run)")
    fig.colorbar(image, ax=axes, label="P[n, m]")
    return fig


def plot_runs(
    run_dirs: list[str | Path], out_dir: str | Path | None = None, threshold: float | None = None
) -> list[Path]:
    """Figures of one or several runs of the same population (e.g. seeds) into `out_dir`
    (default: the first run's folder); returns the paths written.

    curves.png always: per true group, for one run the mean return over its agents with the
    10-90% band over agents, for several the mean over runs of the group mean with its 95%
    t-interval over runs (a line at `threshold` when given). When any run rebuilt P, also
    rebuilds.png (ARI and K per rebuild, a line per run) and sharing.png (the first run's P at
    each rebuild). Raises ConfigError for a folder without results.json, or runs whose returns
    shapes or groups differ.
    """
    dirs = [Path(d) for d in run_dirs]
    check(len(dirs) > 0, "run_dirs", run_dirs, "at least one run folder")
    for d in dirs:
        check((d / "results.json").is_file(), "run", str(d), "a folder with results.json")
    runs = [Results.load(d) for d in dirs]
    first = runs[0]
    for d, run in zip(dirs[1:], runs[1:], strict=True):
        check(
            run.returns.shape == first.returns.shape,
            "run",
            str(d),
            f"returns of shape {first.returns.shape} as in {dirs[0]}, not {run.returns.shape}",
        )
        check(np.array_equal(run.groups, first.groups), "run", str(d), f"the groups of {dirs[0]}")
    out = Path(out_dir) if out_dir is not None else dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    config = first.config
    name = f"{config.get('task')}-{config.get('reward')}, sharing {config.get('sharing')}"

    seed = f"{name}, seed {config.get('seed')}"
    if len(runs) == 1:
        bands, band, title = group_curves(first.returns, first.groups), AGENTS_BAND, seed
    else:
        bands = runs_group_curves(np.stack([r.returns for r in runs]), first.groups)
        band, title = RUNS_BAND, f"{name}, {len(runs)} runs"
    sizes = {int(g): int((first.groups == g).sum()) for g in bands}
    labelled = {f"group {g} ({sizes[g]} agents)": b for g, b in bands.items()}
    fig = curves_figure(labelled, band, title, threshold, "mean return over the group's agents")
    written = [save(fig, out / "curves.png")]

    names = [d.name for d in dirs]
    labels = names if len(set(names)) == len(names) else [str(d) for d in dirs]
    rebuilds = {label: r.extra.get("rebuilds", []) for label, r in zip(labels, runs, strict=True)}
    if any(rebuilds.values()):
        fig = sharing_figure(first.sharing_matrices, first.sharing_index, first.groups, seed)
        written.append(save(fig, out / "sharing.png"))
        fig, (ax_ari, ax_k) = figure(2, title=title)
        draw_rebuilds(ax_ari, ax_k, rebuilds)
        written.append(save(fig, out / "rebuilds.png"))
    return written
