"""Per-episode metrics of a run: metrics.csv in the run folder, and TensorBoard scalars or
Weights & Biases when asked.

Columns of metrics.csv, one row per episode (episodes count from 1):
episode, mean_return, return_0 .. return_{N-1}, critic_loss and actor_loss (means over agents
and the episode's steps, a step of the warm-up counting 0), exploration_scale
(`exploration.noise_scale`), effective_sources (mean over agents of 1 / sum_m P[n, m]^2, the
effective number of agents an agent's replay data come from: 1 individual, N global),
n_clusters and ari (on the episode after which P was rebuilt; empty otherwise; ari against the
true groups), agent_steps_per_s (of the chunk that ran the episode).
"""

import csv
import dataclasses
import importlib.util
from pathlib import Path

import numpy as np

from c3rl_jax.errors import ConfigError

METRICS_FILE = "metrics.csv"
SCALARS = (
    "mean_return",
    "critic_loss",
    "actor_loss",
    "exploration_scale",
    "effective_sources",
    "n_clusters",
    "ari",
    "agent_steps_per_s",
)


def columns(n_agents: int) -> list[str]:
    return ["episode", "mean_return", *(f"return_{n}" for n in range(n_agents)), *SCALARS[1:]]


def effective_sources(sharing: np.ndarray) -> float:
    """Mean over agents of 1 / sum_m P[n, m]^2 for P [N, N] with rows summing to 1."""
    return float(np.mean(1.0 / np.sum(np.square(sharing), axis=1)))


def episode_rows(
    first: int,
    returns: np.ndarray,
    critic_loss: np.ndarray,
    actor_loss: np.ndarray,
    scales: list[float],
    sharing: np.ndarray,
    steps_per_s: float,
    rebuild: dict | None,
) -> list[dict]:
    """Rows of episodes first+1 .. first+E: returns, losses [E, N], scales [E], the P [N, N]
    they used, and the record of the rebuild that followed the last one (or None)."""
    rows, sources = [], effective_sources(sharing)  # one P for the whole chunk
    for e in range(returns.shape[0]):
        row = {"episode": first + e + 1, "mean_return": float(returns[e].mean())}
        row.update({f"return_{n}": float(r) for n, r in enumerate(returns[e])})
        row["critic_loss"] = float(critic_loss[e].mean())
        row["actor_loss"] = float(actor_loss[e].mean())
        row["exploration_scale"] = scales[e]
        row["effective_sources"] = sources
        last = e == returns.shape[0] - 1 and rebuild is not None and "ari" in rebuild
        row["n_clusters"] = rebuild["n_clusters"] if last else ""
        row["ari"] = rebuild["ari"] if last else ""
        row["agent_steps_per_s"] = steps_per_s
        rows.append(row)
    return rows


def require(module: str, extra: str, flag: str) -> None:
    """ConfigError unless `module` can be imported (an optional extra of the package)."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"{flag}=True is invalid: it needs {module}; install it with "
            f"pip install 'c3rl-jax[{extra}]'"
        )


class MetricsLog:
    """Appends episode rows to OUT/metrics.csv (after each chunk: an interrupted run loses
    nothing), and to TensorBoard (OUT/tensorboard) and W&B when the config asks."""

    def __init__(self, config, n_agents: int, episodes_done: int, primary: bool = True):
        """primary: whether this process writes (one of a multi-host run's processes does)."""
        out = config.out_dir if primary else None
        self.path = None if out is None else Path(out) / METRICS_FILE
        self.fields = columns(n_agents)
        if self.path is not None:
            self._start_file(episodes_done)
        self.tensorboard = self.wandb = None
        if config.tensorboard and primary:
            require("tensorboardX", "tensorboard", "tensorboard")
            from tensorboardX import SummaryWriter

            logdir = str(Path(out) / "tensorboard")
            self.tensorboard = SummaryWriter(logdir=logdir, purge_step=episodes_done + 1)
        if config.track and primary:
            require("wandb", "wandb", "track")
            import wandb

            self.wandb = wandb.init(
                project="c3rl-jax", config=dataclasses.asdict(config), dir=config.out_dir
            )

    def _start_file(self, episodes_done: int) -> None:
        """Keep the rows of episodes already done (a resumed run), drop any after them."""
        kept = []
        if self.path.exists() and episodes_done > 0:
            with open(self.path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(r["episode"]) <= episodes_done]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.fields)
            writer.writeheader()
            writer.writerows(kept)

    def write(self, rows: list[dict]) -> None:
        if self.path is not None:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, self.fields).writerows(rows)
        for row in rows:
            scalars = {k: row[k] for k in SCALARS if row[k] != ""}
            if self.tensorboard is not None:
                for name, value in scalars.items():
                    self.tensorboard.add_scalar(name, value, row["episode"])
            if self.wandb is not None:
                self.wandb.log(scalars, step=row["episode"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
