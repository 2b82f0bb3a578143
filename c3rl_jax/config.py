"""Training configuration: one frozen dataclass, resolved against the task's defaults and
validated at the public boundary."""

import dataclasses
import math
from dataclasses import dataclass

from c3rl_jax.agents.ddpg import DDPGConfig
from c3rl_jax.causal.methods import get_mechanism, mechanism_names
from c3rl_jax.errors import check
from c3rl_jax.exploration import MEAN_DRAWS, MODES, ExplorationConfig
from c3rl_jax.sharing import FIXED_MODES
from c3rl_jax.tasks import get_task

# Rebuilt from data every `rebuild_every` episodes by a mechanism-inference method
# (`causal.methods`); "sysid" is c3rl with the least-squares method (an ablation).
ADAPTIVE_MODES = ("c3rl", "sysid")
# The mechanism method each adaptive mode gets unless the user picks one.
DEFAULT_MECHANISM = {"c3rl": "agent_gp", "sysid": "sysid"}
SHARING_MODES = (*FIXED_MODES, "custom", *ADAPTIVE_MODES, "seed_sampling")
# The exploration each sharing mode gets unless the user picks one.
DEFAULT_EXPLORATION = {"c3rl": "coordinated", "sysid": "coordinated", "seed_sampling": "none"}

# Settings a task may tune (None in TrainConfig means "the task's default, else this").
TUNABLE_DEFAULTS = {
    "episodes": 100,
    "hidden": (64, 64),
    "actor_lr": 1e-3,
    "critic_lr": 1e-3,
    "gamma": 0.99,
    "tau": 0.005,
    "batch_size": 64,
    "warmup_steps": 1000,
    "buffer_size": 50_000,
    "ou_theta": 0.15,
    "ou_sigma": 0.2,
    "ou_dt": 1e-2,
    "explore_sigma": 0.5,
    "explore_decay": 0.97,
    "explore_floor": 0.05,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs besides arrays (a custom population or P go to `train`)."""

    task: str = "pendulum"
    reward: str = "dense"
    sharing: str = "individual"
    n_agents: int = 20
    seed: int = 0
    episodes_per_chunk: int = 5
    out_dir: str | None = None
    checkpoint_every: int = 10
    profile_dir: str | None = None  # write a jax.profiler trace of the first chunks here
    devices: int | None = None  # devices the agent axis is split over (None: all JAX sees)
    distributed: bool = False  # call jax.distributed.initialize() first (multi-host runs)
    compile_cache: str = "auto"  # persistent compilation cache: "auto", "off" or a directory

    progress: bool = True
    episodes: int | None = None
    hidden: tuple[int, ...] | None = None
    actor_lr: float | None = None
    critic_lr: float | None = None
    gamma: float | None = None
    tau: float | None = None
    batch_size: int | None = None
    warmup_steps: int | None = None
    buffer_size: int | None = None
    ou_theta: float | None = None
    ou_sigma: float | None = None
    ou_dt: float | None = None
    explore_sigma: float | None = None
    explore_decay: float | None = None
    explore_floor: float | None = None
    exploration: str | None = None  # None: by sharing mode (DEFAULT_EXPLORATION, else "ou")
    mean_draws: str = "stratified"
    rebuild_every: int = 5
    rebuild_samples: int | None = None  # transitions per agent per rebuild (None: the method's)
    mechanism: str | None = None  # c3rl: mechanism-inference method (None: DEFAULT_MECHANISM)
    rebuild_fit_steps: int | None = None  # optimiser steps per rebuild (None: the method's)
    n_clusters: int | None = None  # None: chosen by BIC over 1..max_clusters
    max_clusters: int = 6
    # seed sampling, relative to the task (see `seed_sampling_scales`): the prior critic's
    # weight per unit of the value range, the reward noise's std per unit of the reward range
    prior_scale: float = 0.05
    reward_noise: float = 0.1

    @classmethod
    def from_dict(cls, fields: dict) -> "TrainConfig":
        """The inverse of `dataclasses.asdict` after a JSON round trip."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - names)
        check(not unknown, "config fields", unknown, f"names among {sorted(names)}")
        if fields.get("hidden") is not None:
            fields = {**fields, "hidden": tuple(fields["hidden"])}
        if "mechanism" not in fields and fields.get("sharing") == "c3rl":
            fields = {**fields, "mechanism": "anm_mm"}  # saved before there was a choice
        return cls(**fields)

    def resolved(self) -> "TrainConfig":
        """Unset tunables filled from the task's defaults, then the package's; validated."""
        check(isinstance(self.task, str), "task", self.task, "a task name")
        task = get_task(self.task)
        fills = {
            name: task.defaults.get(name, default)
            for name, default in TUNABLE_DEFAULTS.items()
            if getattr(self, name) is None
        }
        if self.exploration is None:
            fills["exploration"] = DEFAULT_EXPLORATION.get(self.sharing, "ou")
        if self.mechanism is None:
            fills["mechanism"] = DEFAULT_MECHANISM.get(self.sharing)
        config = dataclasses.replace(self, **fills)
        config = dataclasses.replace(config, hidden=tuple(config.hidden))
        if config.rebuild_samples is None and config.mechanism in mechanism_names():
            samples = get_mechanism(config.mechanism).default_samples
            config = dataclasses.replace(config, rebuild_samples=samples)
        config.validate()
        return config

    def seed_sampling_scales(self) -> tuple[float, float]:
        """(prior weight, reward-noise std) in the task's units.

        With r the task's per-step reward range (`Task.reward_range`) and T the episode length,
        the value range is V = r * (1 + gamma + ... + gamma^(T-1)), the span of discounted
        returns. The prior critic (about unit output spread at initialisation) is weighted
        prior_scale * V, so that the agents' value functions differ on the scale of the values
        themselves; the per-datum reward noise has std reward_noise * r.
        """
        task = get_task(self.task)
        span = float(task.reward_range.get(self.reward, 1.0))
        horizon = task.make_env(self.reward).default_params.max_steps_in_episode
        discounted = horizon if self.gamma == 1 else (1 - self.gamma**horizon) / (1 - self.gamma)
        return self.prior_scale * span * discounted, self.reward_noise * span

    @property
    def ddpg(self) -> DDPGConfig:
        prior, noise = (0.0, 0.0)
        if self.sharing == "seed_sampling":
            prior, noise = self.seed_sampling_scales()
        return DDPGConfig(
            self.hidden,
            self.actor_lr,
            self.critic_lr,
            self.gamma,
            self.tau,
            self.batch_size,
            prior_scale=prior,
            reward_noise=noise,
        )

    @property
    def explore(self) -> ExplorationConfig:
        return ExplorationConfig(
            mode=self.exploration,
            theta=self.ou_theta,
            sigma=self.ou_sigma,
            dt=self.ou_dt,
            mean_draws=self.mean_draws,
            mean_sigma=self.explore_sigma,
            mean_decay=self.explore_decay,
            mean_floor=self.explore_floor,
        )

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad field; expects a resolved config."""
        task = get_task(self.task)
        check(
            self.reward in task.reward_modes,
            "reward",
            self.reward,
            f"one of {task.reward_modes} for task {self.task!r}",
        )
        check(self.sharing in SHARING_MODES, "sharing", self.sharing, f"one of {SHARING_MODES}")
        for name in ("n_agents", "episodes", "episodes_per_chunk", "batch_size", "buffer_size"):
            value = getattr(self, name)
            check(_is_int(value) and value > 0, name, value, "a positive integer")
        check(_is_int(self.seed), "seed", self.seed, "an integer")
        check(
            self.devices is None or (_is_int(self.devices) and self.devices > 0),
            "devices",
            self.devices,
            "None (all devices JAX sees) or a positive integer",
        )
        check(isinstance(self.distributed, bool), "distributed", self.distributed, "True or False")
        check(
            isinstance(self.compile_cache, str) and self.compile_cache != "",
            "compile_cache",
            self.compile_cache,
            '"auto" (the user cache directory), "off" or a directory',
        )
        check(
            _is_int(self.checkpoint_every) and self.checkpoint_every >= 0,
            "checkpoint_every",
            self.checkpoint_every,
            "a non-negative integer (episodes; 0 = never)",
        )
        check(
            _is_int(self.warmup_steps) and self.warmup_steps >= 0,
            "warmup_steps",
            self.warmup_steps,
            "a non-negative integer",
        )
        check(
            len(self.hidden) > 0 and all(_is_int(h) and h > 0 for h in self.hidden),
            "hidden",
            self.hidden,
            "one or more positive layer widths",
        )
        check(self.exploration in MODES, "exploration", self.exploration, f"one of {MODES}")
        check(self.mean_draws in MEAN_DRAWS, "mean_draws", self.mean_draws, f"one of {MEAN_DRAWS}")
        for name in ("rebuild_every", "max_clusters"):
            value = getattr(self, name)
            check(_is_int(value) and value > 0, name, value, "a positive integer")
        check(
            self.rebuild_fit_steps is None
            or (_is_int(self.rebuild_fit_steps) and self.rebuild_fit_steps > 0),
            "rebuild_fit_steps",
            self.rebuild_fit_steps,
            "None (the mechanism method's default) or a positive integer",
        )
        if self.sharing == "sysid":
            allowed = "sysid (sharing='sysid' is c3rl with the least-squares method)"
            check(self.mechanism == "sysid", "mechanism", self.mechanism, allowed)
        elif self.sharing in ADAPTIVE_MODES:
            names = mechanism_names()
            check(self.mechanism in names, "mechanism", self.mechanism, f"one of {names}")
        else:
            check(
                self.mechanism is None,
                "mechanism",
                self.mechanism,
                f"None unless sharing is one of {ADAPTIVE_MODES} (sharing={self.sharing!r})",
            )
        check(
            (self.rebuild_samples is None and self.sharing not in ADAPTIVE_MODES)
            or (_is_int(self.rebuild_samples) and self.rebuild_samples > 0),
            "rebuild_samples",
            self.rebuild_samples,
            "a positive integer (None: the mechanism method's default)",
        )
        check(
            self.n_clusters is None or (_is_int(self.n_clusters) and self.n_clusters > 0),
            "n_clusters",
            self.n_clusters,
            "None (chosen by BIC) or a positive integer",
        )
        for name in ("explore_sigma", "explore_floor", "prior_scale", "reward_noise"):
            value = getattr(self, name)
            check(_is_real(value) and value >= 0, name, value, "a non-negative finite number")
        check(
            _is_real(self.explore_decay) and 0 < self.explore_decay <= 1,
            "explore_decay",
            self.explore_decay,
            "in (0, 1]",
        )
        for name in ("actor_lr", "critic_lr", "tau", "ou_theta", "ou_dt"):
            value = getattr(self, name)
            check(_is_real(value) and value > 0, name, value, "a positive finite number")
        check(_is_real(self.gamma) and 0 <= self.gamma <= 1, "gamma", self.gamma, "in [0, 1]")
        check(self.tau <= 1, "tau", self.tau, "in (0, 1]")
        check(
            _is_real(self.ou_sigma) and self.ou_sigma >= 0,
            "ou_sigma",
            self.ou_sigma,
            "a non-negative finite number",
        )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
