"""Comparing methods over seeds: episodes to a return threshold, t-intervals, and the share
of the oracle's headroom a method captures, and how stable a method's rebuilt clusters are.

Runs of different methods with the same seed learn on the same population (the population
is drawn from the seed), so seeds pair the methods; the headroom's interval resamples seeds.
"""

import jax
import numpy as np
from scipy import stats

WINDOW = 5  # episodes of the moving average that must reach the threshold


def episodes_to_threshold(curve: np.ndarray, threshold: float, window: int = WINDOW) -> float:
    """The first episode count after which the `window`-episode moving average of `curve`
    [E] (the population-mean return per episode) is >= threshold; NaN if never."""
    smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
    hit = np.flatnonzero(smooth >= threshold)
    return float(hit[0] + window) if hit.size else float("nan")


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval of the finite values (0 half-width for one
    value, NaN for none)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    if values.size == 1:
        return float(values[0]), 0.0
    half = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return float(values.mean()), float(half)


def headroom(
    episodes: dict[str, np.ndarray],
    budget: int,
    method: str = "c3rl",
    key: jax.Array | None = None,
    resamples: int = 10_000,
) -> dict:
    """The share of the oracle's headroom `method` captures, from episodes to threshold per
    seed (episodes[name]: [S], seed-aligned; NaN = not reached, counted as `budget`):

        (E_naive - E_method) / (E_naive - E_oracle),

    E the mean over seeds, naive the better (fewer episodes) of individual and global. 1: as
    good as knowing the groups; 0: no better than the better naive choice. Returns
    {"headroom", "low", "high" (95% percentile interval over `resamples` paired resamplings
    of the seeds, naive fixed to the full data's; resamples where the oracle gains nothing are
    left out), "naive", "oracle_gain" (E_naive - E_oracle: the headroom itself, in episodes)};
    headroom NaN where oracle_gain <= 0.
    """
    reached = {k: np.where(np.isfinite(v), v, budget).astype(float) for k, v in episodes.items()}
    naive = min(("individual", "global"), key=lambda k: reached[k].mean())
    key = jax.random.PRNGKey(0) if key is None else key
    n_seeds = len(reached[method])
    picks = np.asarray(jax.random.randint(key, (resamples, n_seeds), 0, n_seeds))

    def share(index) -> np.ndarray:
        means = {k: reached[k][index].mean(axis=-1) for k in (naive, method, "oracle")}
        gain = means[naive] - means["oracle"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gain > 0, (means[naive] - means[method]) / gain, np.nan)

    estimate = float(share(np.arange(n_seeds)))
    low, high = (
        np.nanpercentile(share(picks), [2.5, 97.5]) if np.isfinite(estimate) else (np.nan,) * 2
    )
    return {
        "headroom": estimate,
        "low": float(low),
        "high": float(high),
        "naive": naive,
        "oracle_gain": float(reached[naive].mean() - reached["oracle"].mean()),
    }


def rebuild_stability(seeds: list, late: int = 20, floor: float = 0.8) -> dict:
    """Cluster ARI against the true groups over the seeds' rebuild records: its mean at the
    episode-10 and episode-20 rebuilds, and how many rebuilds after episode `late` fall below
    `floor` (the mechanism issue's stability target), with the lowest of them."""
    records = [r for seed in seeds for r in seed["rebuilds"]]

    def mean_ari_at(episode: int) -> float:
        aris = [r["ari"] for r in records if r["episode"] == episode]
        return float(np.mean(aris)) if aris else float("nan")

    later = [r["ari"] for r in records if r["episode"] > late]
    return {
        "ari_episode_10": mean_ari_at(10),
        "ari_episode_20": mean_ari_at(20),
        "later_below": int(sum(a < floor for a in later)),
        "later": len(later),
        "later_lowest": float(min(later)) if later else float("nan"),
    }
