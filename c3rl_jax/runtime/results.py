"""Results of a run, saved as plain files: results.json, arrays.npz and returns.csv.

Files are written to a temporary name and renamed, so an interrupted save never leaves a
half-written file behind.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESULT_FILES = ("results.json", "arrays.npz", "returns.csv")  # what `Results.save` writes


@dataclass
class Results:
    """returns: [N, E] per-agent episode returns; sharing_matrices: [K, N, N] the distinct P
    used, in order; sharing_index: [E] which of them each episode used; groups: [N] true labels
    (evaluation only); timings in seconds."""

    config: dict
    returns: np.ndarray
    sharing_matrices: np.ndarray
    sharing_index: np.ndarray
    groups: np.ndarray
    episode_length: int
    compile_time: float
    run_time: float
    wall_time: float
    extra: dict = field(default_factory=dict)

    @property
    def sharing(self) -> np.ndarray:
        """[E, N, N] the P used at each episode."""
        return self.sharing_matrices[self.sharing_index]

    @property
    def agent_steps_per_s(self) -> float:
        """Environment steps summed over agents per second of running compiled chunks."""
        steps = self.returns.size * self.episode_length
        return steps / self.run_time if self.run_time > 0 else float("nan")

    def group_summary(self, last: int = 10) -> list[dict]:
        """Per true group: agents and mean/min/max over agents of the mean return of the last
        `last` episodes."""
        return group_summary(self.returns[:, -last:].mean(axis=1), self.groups)

    def summary(self) -> dict:
        n_agents, episodes = self.returns.shape
        return {
            "agents": n_agents,
            "episodes": episodes,
            "final_mean_return": float(self.returns[:, -min(10, episodes) :].mean()),
            "compile_time_s": self.compile_time,
            "run_time_s": self.run_time,
            "wall_time_s": self.wall_time,
            "agent_steps_per_s": self.agent_steps_per_s,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "returns": self.returns,
            "sharing_matrices": self.sharing_matrices,
            "sharing_index": self.sharing_index,
            "groups": self.groups,
        }

    def meta(self) -> dict:
        """Everything but the arrays, as JSON-serialisable values."""
        return {
            "config": self.config,
            "episode_length": self.episode_length,
            "compile_time": self.compile_time,
            "run_time": self.run_time,
            "wall_time": self.wall_time,
            "summary": self.summary(),
            "groups_summary": self.group_summary(),
            "extra": self.extra,
        }

    def save(self, out_dir: str | os.PathLike) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.meta(), indent=2).encode()
        atomic_write(out / "results.json", lambda f: f.write(text))
        atomic_write(
            out / "arrays.npz",
            lambda f: np.savez(f, **self.arrays()),
        )
        header = "agent,group," + ",".join(f"ep{e}" for e in range(self.returns.shape[1]))
        rows = np.column_stack([np.arange(len(self.groups)), self.groups, self.returns])
        atomic_write(
            out / "returns.csv",
            lambda f: np.savetxt(f, rows, delimiter=",", header=header, comments="", fmt="%.6g"),
        )
        return out

    @classmethod
    def load(cls, out_dir: str | os.PathLike) -> "Results":
        out = Path(out_dir)
        meta = json.loads((out / "results.json").read_text())
        with np.load(out / "arrays.npz") as arrays:
            arrays = dict(arrays)
        return cls(
            config=meta["config"],
            **arrays,
            episode_length=meta["episode_length"],
            compile_time=meta["compile_time"],
            run_time=meta["run_time"],
            wall_time=meta["wall_time"],
            extra=meta["extra"],
        )


def group_summary(values: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Per group of `groups` [N]: agents and mean/min/max of `values` [N] over its agents."""
    rows = []
    for g in np.unique(groups):
        vals = np.asarray(values)[groups == g]
        rows.append(
            {
                "group": int(g),
                "agents": int(vals.size),
                "mean": float(vals.mean()),
                "min": float(vals.min()),
                "max": float(vals.max()),
            }
        )
    return rows


def atomic_write(path: Path, write) -> None:
    """Call `write(f)` on a temporary file beside `path`, then rename it to `path`."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)
