"""Training configuration: one frozen dataclass, resolved against the task's defaults and
validated at the public boundary.

Declaring and parsing a config needs no JAX (the command line builds its options from these
fields, and `c3rl --help` stays fast): the modules that import JAX (tasks, learners,
exploration, mechanism methods) load only when a config is resolved or validated.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from c3rl_jax.errors import check
from c3rl_jax.sharing import get_sharing, sharing_names

if TYPE_CHECKING:
    from c3rl_jax.exploration import ExplorationConfig
    from c3rl_jax.learners.ddpg import DDPGConfig

# The built-in sharing modes (`sharing.sharing_names()` also lists registered ones).
SHARING_MODES = tuple(sharing_names())

# Config fields a resumed run may change; any other difference is a mismatched checkpoint.
RESUMABLE_CHANGES = (
    "episodes",
    "progress",
    "out_dir",
    "checkpoint_every",
    "profile_dir",
    "devices",
    "distributed",
    "compile_cache",
    "tensorboard",
    "track",
)

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


def _setting(default, help: str, *flags: str, group: str = "run"):
    """A TrainConfig field with its command-line help (the CLI is generated from these):
    flags: the option names (default --field-name); group: run, method or tuned."""
    return field(default=default, metadata={"help": help, "flags": flags, "group": group})


def _tuned(help: str):
    """A setting a task may tune: None means the task's default, else TUNABLE_DEFAULTS'."""
    return _setting(None, help, group="tuned")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs besides arrays (a custom population or P go to `train`).
    Each field's help text is in its metadata; `c3rl train --help` lists them all."""

    task: str = _setting(
        "pendulum",
        "the task: ar, cartpole_swingup, pendulum, or one registered with c3rl_jax.register_task",
    )
    reward: str = _setting("dense", "reward mode: dense or sparse")
    sharing: str = _setting(
        "individual",
        "how agents share replay data: individual, global, oracle, c3rl, sysid, seed_sampling, "
        "custom (needs --sharing-matrix), or one registered with c3rl_jax.register_sharing",
    )
    n_agents: int = _setting(20, "number of agents", "--agents")
    seed: int = _setting(0, "random seed; the same seed gives the same result")
    seeds: int = _setting(
        1,
        "independent replicas in one program, with seeds SEED, SEED+1, ...: each is the run "
        "with its seed, saved as one in OUT/sSEED",
    )
    episodes_per_chunk: int = _setting(5, "episodes per jitted chunk; results saved after each")
    out_dir: str | None = _setting(
        None,
        "output directory (default: runs/TASK-REWARD-SHARING-sSEED on the command line, None "
        "in Python: nothing saved)",
        "--out",
    )
    overwrite: bool = _setting(
        False, "replace the results and checkpoints of another run already in the output folder"
    )
    checkpoint_every: int = _setting(
        10, "checkpoint every this many episodes into OUT/checkpoints; 0 = never"
    )
    profile_dir: str | None = _setting(
        None,
        "write a jax.profiler trace of the first 3 chunks to DIR (TensorBoard's profile "
        "plugin or ui.perfetto.dev)",
        "--profile",
    )
    devices: int | None = _setting(
        None, "devices to split the agent axis over (None: all JAX sees; must divide agents)"
    )
    distributed: bool = _setting(
        False, "multi-host: call jax.distributed.initialize() first (one process per host)"
    )
    compile_cache: str = _setting(
        "auto",
        'persistent compilation cache: "auto" ($C3RL_JAX_CACHE_DIR, else ~/.cache/c3rl_jax), '
        '"off", or a directory',
    )
    progress: bool = _setting(True, "show a progress bar")
    tensorboard: bool = _setting(
        False,
        "also write the per-episode metrics as TensorBoard scalars to OUT/tensorboard (needs "
        "pip install 'c3rl-jax[tensorboard]')",
    )
    track: bool = _setting(
        False,
        "also log the per-episode metrics to Weights & Biases, project c3rl-jax (needs pip "
        "install 'c3rl-jax[wandb]' and a wandb login, or WANDB_MODE=offline)",
    )

    episodes: int | None = _tuned("episodes per agent")
    hidden: tuple[int, ...] | None = _tuned(
        "hidden layer widths of actor and critic, comma separated"
    )
    actor_lr: float | None = _tuned("actor Adam learning rate")
    critic_lr: float | None = _tuned("critic Adam learning rate")
    gamma: float | None = _tuned("discount factor")
    tau: float | None = _tuned("Polyak rate of the target networks")
    batch_size: int | None = _tuned("minibatch rows per agent per update")
    warmup_steps: int | None = _tuned("steps per agent of uniform random actions before updates")
    buffer_size: int | None = _tuned("replay capacity per agent, in transitions")
    ou_theta: float | None = _tuned("OU noise mean reversion")
    ou_sigma: float | None = _tuned("OU noise scale")
    ou_dt: float | None = _tuned("OU noise time step")
    explore_sigma: float | None = _tuned(
        "coordinated exploration: std sigma_0 of the per-episode OU means"
    )
    explore_decay: float | None = _tuned(
        "coordinated exploration: sigma_k = max(floor, sigma_0 * decay^k)"
    )
    explore_floor: float | None = _tuned("coordinated exploration: the floor of sigma_k")

    exploration: str | None = _setting(
        None,
        "action noise: ou, coordinated, gaussian or none (None: the sharing method's: "
        "coordinated for c3rl and sysid, none for seed_sampling, else ou)",
        group="method",
    )
    mean_draws: str = _setting(
        "stratified",
        "how coordinated OU means are drawn: stratified or independent",
        group="method",
    )
    rebuild_every: int = _setting(5, "c3rl/sysid: episodes between rebuilds of P", group="method")
    rebuild_samples: int | None = _setting(
        None,
        "c3rl/sysid: recent transitions per agent per rebuild (None: the mechanism method's, "
        "agent_gp 50, or 100 above 4 obs + action columns; 20 for anm_mm and sysid)",
        group="method",
    )
    rebuild_window: int | None = _setting(
        None,
        "c3rl/sysid: rebuild samples are drawn among each agent's last this many episodes "
        "(None: all its buffer holds; an environment does not change, so old data is evidence)",
        group="method",
    )
    rebuild_warmup: bool = _setting(
        True,
        "c3rl/sysid: half of each rebuild's samples come from the warm-up's random-action "
        "steps while the buffer holds them (with rebuild_window None; later policies' data "
        "can stop telling the environments apart)",
        group="method",
    )
    mechanism: str | None = _setting(
        None,
        "c3rl: mechanism-inference method behind each rebuild of P: agent_gp, anm_mm (the "
        "paper's per-sample GPPOM) or sysid (None: agent_gp); must be None for the "
        "non-adaptive modes",
        group="method",
    )
    rebuild_fit_steps: int | None = _setting(
        None, "c3rl: optimiser steps of the mechanism fit (None: the method's)", group="method"
    )
    n_clusters: int | None = _setting(
        None,
        "c3rl/sysid: Gaussian mixture components (None: chosen by the method's rule)",
        "--clusters",
        group="method",
    )
    max_clusters: int = _setting(
        6, "c3rl/sysid: the most components the automatic choice tries", group="method"
    )
    learner: str = _setting("ddpg", "the learner: ddpg or td3", group="learner")
    policy_noise: float = _setting(
        0.2, "td3: std of the target policy's smoothing noise (action units)", group="learner"
    )
    noise_clip: float = _setting(
        0.5, "td3: the smoothing noise is clipped to +-this", group="learner"
    )
    policy_delay: int = _setting(
        2, "td3: critic updates per actor and target update", group="learner"
    )
    prior_scale: float = _setting(
        0.05,
        "seed_sampling: weight of each agent's random prior critic, per unit of the task's "
        "value range (see seed_sampling_scales)",
        group="method",
    )
    reward_noise: float = _setting(
        0.1,
        "seed_sampling: std of the fixed per-datum reward noise, per unit of the task's "
        "per-step reward range",
        group="method",
    )

    @classmethod
    def from_fields(cls, fields: dict) -> "TrainConfig":
        """A config from some of its fields by name (a JSON or TOML table: lists allowed)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - names)
        check(not unknown, "config fields", unknown, f"names among {sorted(names)}")
        if isinstance(fields.get("hidden"), list):
            fields = {**fields, "hidden": tuple(fields["hidden"])}
        return cls(**fields)

    @classmethod
    def from_dict(cls, fields: dict) -> "TrainConfig":
        """The inverse of `dataclasses.asdict` after a JSON round trip (a saved run's config)."""
        if "mechanism" not in fields and fields.get("sharing") == "c3rl":
            fields = {**fields, "mechanism": "anm_mm"}  # saved before there was a choice
        if "rebuild_window" not in fields and fields.get("sharing") in ("c3rl", "sysid"):
            fields = {**fields, "rebuild_window": fields.get("rebuild_every", 5)}  # as then
        if "rebuild_warmup" not in fields:
            fields = {**fields, "rebuild_warmup": False}  # as then
        return cls.from_fields(fields)

    def resolved(self) -> "TrainConfig":
        """Unset tunables filled from the task's defaults, then the package's; validated."""
        from c3rl_jax.causal.methods import get_mechanism, mechanism_names
        from c3rl_jax.tasks import env_dims, get_task

        check(isinstance(self.task, str), "task", self.task, "a task name")
        task = get_task(self.task)
        fills = {
            name: task.defaults.get(name, default)
            for name, default in TUNABLE_DEFAULTS.items()
            if getattr(self, name) is None
        }
        method = get_sharing(self.sharing)
        if self.exploration is None:
            fills["exploration"] = method.exploration
        if self.mechanism is None:
            fills["mechanism"] = method.mechanism
        config = dataclasses.replace(self, **fills)
        config = dataclasses.replace(config, hidden=tuple(config.hidden))
        if config.rebuild_samples is None and config.mechanism in mechanism_names():
            dx = sum(env_dims(task.make_env(config.reward)))  # the fit's X: obs + action
            samples = get_mechanism(config.mechanism).default_samples(dx)
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
        from c3rl_jax.tasks import get_task

        task = get_task(self.task)
        span = float(task.reward_range.get(self.reward, 1.0))
        horizon = task.make_env(self.reward).default_params.max_steps_in_episode
        discounted = horizon if self.gamma == 1 else (1 - self.gamma**horizon) / (1 - self.gamma)
        return self.prior_scale * span * discounted, self.reward_noise * span

    def replica(self, r: int) -> "TrainConfig":
        """Replica r of a multi-seed run: the single run with seed `seed + r`, saved in
        OUT/s{seed + r}."""
        out = None if self.out_dir is None else str(Path(self.out_dir) / f"s{self.seed + r}")
        return dataclasses.replace(self, seed=self.seed + r, seeds=1, out_dir=out, devices=None)

    @property
    def learner_config(self) -> "DDPGConfig":
        """The learner's settings (a `TD3Config` for td3)."""
        from c3rl_jax.learners.ddpg import DDPGConfig
        from c3rl_jax.learners.td3 import TD3Config

        common = DDPGConfig(
            self.hidden, self.actor_lr, self.critic_lr, self.gamma, self.tau, self.batch_size
        )
        if self.learner == "td3":
            extra = {"policy_noise": self.policy_noise, "noise_clip": self.noise_clip}
            return TD3Config(**vars(common), **extra, policy_delay=self.policy_delay)
        return common

    @property
    def seed_sampling(self) -> tuple[float, float] | None:
        """Seed sampling's (prior weight, reward-noise std) when the sharing method seeds its
        learners, else None."""
        return self.seed_sampling_scales() if get_sharing(self.sharing).seeded else None

    @property
    def explore(self) -> "ExplorationConfig":
        from c3rl_jax.exploration import ExplorationConfig

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
        from c3rl_jax.causal.methods import mechanism_names
        from c3rl_jax.exploration import MEAN_DRAWS, MODES
        from c3rl_jax.learners import learner_names
        from c3rl_jax.tasks import get_task

        task = get_task(self.task)
        check(
            self.reward in task.reward_modes,
            "reward",
            self.reward,
            f"one of {task.reward_modes} for task {self.task!r}",
        )
        sharing = get_sharing(self.sharing)
        for name in ("n_agents", "episodes", "episodes_per_chunk", "batch_size", "buffer_size"):
            value = getattr(self, name)
            check(_is_int(value) and value > 0, name, value, "a positive integer")
        check(_is_int(self.seed), "seed", self.seed, "an integer")
        check(_is_int(self.seeds) and self.seeds > 0, "seeds", self.seeds, "a positive integer")
        for name in ("track", "distributed"):
            check(
                self.seeds == 1 or not getattr(self, name),
                name,
                getattr(self, name),
                f"False when seeds > 1 (seeds={self.seeds})",
            )
        check(
            self.devices is None or (_is_int(self.devices) and self.devices > 0),
            "devices",
            self.devices,
            "None (all devices JAX sees) or a positive integer",
        )
        check(isinstance(self.distributed, bool), "distributed", self.distributed, "True or False")
        for name in ("overwrite", "tensorboard", "track", "rebuild_warmup"):
            value = getattr(self, name)
            check(isinstance(value, bool), name, value, "True or False")
        check(
            not self.tensorboard or self.out_dir is not None,
            "tensorboard",
            self.tensorboard,
            "False when out_dir is None (the scalars go to OUT/tensorboard)",
        )
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
        names = learner_names()
        check(self.learner in names, "learner", self.learner, f"one of {names}")
        check(
            _is_int(self.policy_delay) and self.policy_delay > 0,
            "policy_delay",
            self.policy_delay,
            "a positive integer",
        )
        for name in ("policy_noise", "noise_clip"):
            value = getattr(self, name)
            check(_is_real(value) and value >= 0, name, value, "a non-negative finite number")
        check(self.mean_draws in MEAN_DRAWS, "mean_draws", self.mean_draws, f"one of {MEAN_DRAWS}")
        for name in ("rebuild_every", "max_clusters"):
            value = getattr(self, name)
            check(_is_int(value) and value > 0, name, value, "a positive integer")
        check(
            self.rebuild_window is None
            or (_is_int(self.rebuild_window) and self.rebuild_window > 0),
            "rebuild_window",
            self.rebuild_window,
            "None (all the buffer holds) or a positive integer (episodes)",
        )
        check(
            self.rebuild_fit_steps is None
            or (_is_int(self.rebuild_fit_steps) and self.rebuild_fit_steps > 0),
            "rebuild_fit_steps",
            self.rebuild_fit_steps,
            "None (the mechanism method's default) or a positive integer",
        )
        if sharing.rebuilt:
            names = list(sharing.mechanisms or mechanism_names())
            allowed = f"one of {names} for sharing={self.sharing!r}"
            check(self.mechanism in names, "mechanism", self.mechanism, allowed)
        else:
            check(
                self.mechanism is None,
                "mechanism",
                self.mechanism,
                f"None: sharing={self.sharing!r} does not rebuild P from data",
            )
        check(
            (self.rebuild_samples is None and not sharing.rebuilt)
            or (_is_int(self.rebuild_samples) and self.rebuild_samples > 0),
            "rebuild_samples",
            self.rebuild_samples,
            "a positive integer (None: the mechanism method's default)",
        )
        check(
            self.n_clusters is None or (_is_int(self.n_clusters) and self.n_clusters > 0),
            "n_clusters",
            self.n_clusters,
            "None (chosen by the mechanism method's rule) or a positive integer",
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
