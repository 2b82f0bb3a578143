"""Mechanism-inference methods behind one interface, found by name in a registry.

A method maps transitions X [n, dx] (cause), Y [n, dy] (effect) with their agent ids [n] to
latents theta [p, d] of "which mechanism produced this", each latent belonging to one agent
(`point_agents` [p]: p = N for agent-level methods, p = n for per-sample ones, pooled to agents
by the mixture step). It also returns an `Encoder` that places a new environment's
transitions among the latents (used by transfer), and a `carry`, a dict of arrays the next fit
starts from (environments do not change, so evidence should accumulate across rebuilds).

Registered: "agent_gp" (one latent per agent, a sparse GP: `agent_gp`), "anm_mm" (the paper's
per-sample GPPOM: `gppom`), "sysid" (per-agent least squares, an ablation). Add your own with
`register_mechanism(MechanismMethod(...))`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax.causal.agent_gp import (
    AgentGPConfig,
    AgentGPFit,
    AgentGPParams,
    AgentGPPredictive,
    compile_agent_gp,
    encode_agent_gp,
    fit_agent_gp,
    fit_agent_gp_batch,
)
from c3rl_jax.causal.gppom import GPPOMConfig, GPPOMFit, GPPOMParams, compile_gppom, fit_gppom
from c3rl_jax.registry import Registry

__all__ = [
    "Encoder",
    "MechanismFit",
    "MechanismMethod",
    "get_mechanism",
    "mechanism_names",
    "register_mechanism",
]

Arrays = Mapping[str, np.ndarray]


class Encoder(Protocol):
    """Places new transitions among a fit's latents; saved and loaded as a dict of arrays."""

    def encode(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """theta [m, d] of new transitions x [n, dx], y [n, dy] (m = n per sample, else 1)."""
        ...

    def arrays(self) -> dict[str, np.ndarray]: ...


class MechanismFit(NamedTuple):
    """theta [p, d]; point_agents [p] the agent of each latent; encoder; carry: arrays the next
    fit of the same run starts from ({} for none); n_skipped: optimiser steps skipped because
    the loss or gradient was not finite."""

    theta: np.ndarray
    point_agents: np.ndarray
    encoder: Encoder
    carry: dict[str, np.ndarray]
    n_skipped: int


# fit(x, y, agent_ids, n_agents, key, steps, carry) -> MechanismFit; steps None = the default
FitFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int, jax.Array, Any, Arrays], MechanismFit]
# fit_many(xs, ys, agent_ids, n_agents, keys, steps, carries) -> [MechanismFit] * R: the fits
# of R runs' data of one shape at once (xs [R, n, dx], ys [R, n, dy], agent_ids [R, n], keys
# [R, 2], carries R dicts), run r as fit would give it up to float rounding (a multi-seed
# run's rebuilds: one batched program instead of R fits one after another)
FitManyFn = Callable[
    [np.ndarray, np.ndarray, np.ndarray, int, np.ndarray, Any, list], list[MechanismFit]
]
# compile(n_agents, samples_per_agent, dx, dy, steps, runs): compile the fit's programs for
# data of these shapes (runs > 1: fit_many's for that many runs) without running anything on
# a device (a run calls it in a thread while its first chunks run, so the first rebuild
# finds them compiled)
CompileFn = Callable[[int, int, int, int, Any, int], None]


@dataclasses.dataclass(frozen=True)
class MechanismMethod:
    """name: registry key; fit: see `FitFn`; load_encoder: arrays -> Encoder (inverse of
    `Encoder.arrays`); criterion: how the mixture step chooses the number of mechanisms
    (`clustering.CRITERIA`); default_samples: dx (the fit's input columns, obs + action)
    -> transitions per agent per fit unless the user sets `rebuild_samples`; description:
    one line for help texts; compile: see `CompileFn`, or None (the first rebuild
    compiles); fit_many: see `FitManyFn`, or None (one fit per run)."""

    name: str
    fit: FitFn
    load_encoder: Callable[[Arrays], Encoder]
    criterion: str = "bic"
    default_samples: Callable[[int], int] = lambda dx: 20
    description: str = ""
    compile: CompileFn | None = None
    fit_many: FitManyFn | None = None


_MECHANISMS: Registry[MechanismMethod] = Registry("mechanism")


def register_mechanism(method: MechanismMethod) -> MechanismMethod:
    """Add (or replace) a method under `method.name`; returns it."""
    return _MECHANISMS.register(method)


def get_mechanism(name: str) -> MechanismMethod:
    return _MECHANISMS.get(name)


def mechanism_names() -> list[str]:
    return sorted(_MECHANISMS.names())


def _flatten(fit, parts: Mapping[str, type], *skip: str) -> dict[str, np.ndarray]:
    """A fit dataclass's arrays by field name; the NamedTuple fields named in `parts` as
    "part.field"; the fields in `skip` left out."""
    out = {}
    for field in dataclasses.fields(fit):
        value = getattr(fit, field.name)
        if field.name in parts:
            out |= {f"{field.name}.{k}": np.asarray(v) for k, v in value._asdict().items()}
        elif field.name not in skip:
            out[field.name] = np.asarray(value)
    return out


def _unflatten(arrays: Arrays, parts: Mapping[str, type]) -> dict[str, Any]:
    """The inverse of `_flatten`: field name -> jax array, or the part's NamedTuple."""
    fields = {k: jnp.asarray(v) for k, v in arrays.items() if k.split(".")[0] not in parts}
    for part, kind in parts.items():
        fields[part] = kind(**{f: jnp.asarray(arrays[f"{part}.{f}"]) for f in kind._fields})
    return fields


# --------------------------------------------------------------------------- agent_gp

_PARTS = {"params": AgentGPParams, "predictive": AgentGPPredictive}


@dataclasses.dataclass(frozen=True)
class AgentGPEncoder:
    """A new environment gets one latent, fitted to its transitions against the frozen GP."""

    fit: AgentGPFit

    def encode(self, x, y) -> np.ndarray:
        return np.asarray(encode_agent_gp(self.fit, x, y))[None]

    def arrays(self) -> dict[str, np.ndarray]:
        config = dataclasses.asdict(self.fit.config)
        settings = {k: np.asarray(v).tolist() for k, v in config.items()}
        return {"config": np.asarray(json.dumps(settings))} | _flatten(self.fit, _PARTS, "config")

    @classmethod
    def load(cls, arrays: Arrays) -> AgentGPEncoder:
        arrays = dict(arrays)
        config = AgentGPConfig(**json.loads(str(arrays.pop("config"))))
        config = jax.tree.map(jnp.asarray, config)  # traced fields as arrays, as fitted
        return cls(AgentGPFit(**_unflatten(arrays, _PARTS), config=config))


def _agent_gp_config(steps) -> AgentGPConfig:
    config = AgentGPConfig()
    if steps is None:
        return config
    return config.replace(n_steps=int(steps), warm_steps=min(config.warm_steps, int(steps)))


def _agent_gp_init(carry) -> AgentGPParams | None:
    return AgentGPParams(**{k: np.asarray(v) for k, v in carry.items()}) if carry else None


def _agent_gp_result(fit: AgentGPFit, n_agents: int) -> MechanismFit:
    carry = {k: np.asarray(v) for k, v in fit.params._asdict().items()}
    skipped = int(np.sum(np.asarray(fit.n_skipped)))
    theta = np.asarray(fit.theta)
    return MechanismFit(theta, np.arange(n_agents), AgentGPEncoder(fit), carry, skipped)


def fit_agent_gp_method(x, y, agent_ids, n_agents, key, steps, carry) -> MechanismFit:
    """One latent per agent (`agent_gp`): the first rebuild fits afresh (`steps` Adam steps,
    default 150, two restarts); later ones continue from the previous rebuild's parameters
    (`carry`) with one restart of at most 100 steps (`AgentGPConfig.warm_steps`)."""
    config = _agent_gp_config(steps)
    init = _agent_gp_init(carry)
    fit = fit_agent_gp(x, y, agent_ids, key, config, init=init, n_agents=n_agents)
    return _agent_gp_result(fit, n_agents)


def fit_agent_gp_many(xs, ys, agent_ids, n_agents, keys, steps, carries) -> list[MechanismFit]:
    """`fit_agent_gp_method` for R runs at once (`fit_agent_gp_batch`)."""
    inits = [_agent_gp_init(carry) for carry in carries]
    config = _agent_gp_config(steps)
    fits = fit_agent_gp_batch(xs, ys, agent_ids, keys, config, inits=inits, n_agents=n_agents)
    return [_agent_gp_result(fit, n_agents) for fit in fits]


def agent_gp_samples(dx: int) -> int:
    """Transitions per agent of an `agent_gp` rebuild: 50 for at most 4 input columns (ar,
    pendulum), else 100 (cart-pole: with 50 its warm rebuilds lost the groups at 9 of 80
    later dense rebuilds and most sparse ones; docs/mechanisms.md)."""
    return 50 if dx <= 4 else 100


def compile_agent_gp_method(n_agents, samples, dx, dy, steps, runs) -> None:
    compile_agent_gp(n_agents * samples, dx, dy, n_agents, _agent_gp_config(steps), runs)


register_mechanism(
    MechanismMethod(
        "agent_gp",
        fit_agent_gp_method,
        AgentGPEncoder.load,
        criterion="silhouette",
        default_samples=agent_gp_samples,
        compile=compile_agent_gp_method,
        fit_many=fit_agent_gp_many,
        description="one latent per agent, sparse GP with shared and agent-specific kernel parts",
    )
)


# --------------------------------------------------------------------------- anm_mm


@dataclasses.dataclass(frozen=True)
class GPPOMEncoder:
    """The per-sample ANM-MM back-constraint: every new transition gets its own theta."""

    fit: GPPOMFit

    def encode(self, x, y) -> np.ndarray:
        return np.asarray(self.fit.encode(x, y))

    def arrays(self) -> dict[str, np.ndarray]:
        return _flatten(self.fit, {"params": GPPOMParams})

    @classmethod
    def load(cls, arrays: Arrays) -> GPPOMEncoder:
        return cls(GPPOMFit(**_unflatten(arrays, {"params": GPPOMParams})))


def _gppom_config(steps) -> GPPOMConfig:
    return GPPOMConfig() if steps is None else GPPOMConfig(n_steps=int(steps))


def fit_anm_mm(x, y, agent_ids, n_agents, key, steps, carry) -> MechanismFit:
    """The paper's ANM-MM: a per-sample GPPOM fitted afresh (`steps` Adam steps, default 300)."""
    fit = fit_gppom(x, y, key, _gppom_config(steps))
    return MechanismFit(
        np.asarray(fit.theta), np.asarray(agent_ids), GPPOMEncoder(fit), {}, int(fit.n_skipped)
    )


def compile_anm_mm(n_agents, samples, dx, dy, steps, runs) -> None:
    compile_gppom(n_agents * samples, dx, dy, _gppom_config(steps))  # one program per run


register_mechanism(
    MechanismMethod(
        "anm_mm",
        fit_anm_mm,
        GPPOMEncoder.load,
        description="per-sample ANM-MM (GPPOM), the paper's",
        compile=compile_anm_mm,
    )
)


# --------------------------------------------------------------------------- sysid


def _least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients [(dx + 1) * dy] of y [n, dy] on [x, 1] [n, dx + 1]."""
    design = np.column_stack([x, np.ones(len(x))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return coef.ravel()


@dataclasses.dataclass(frozen=True)
class SysidEncoder:
    """A new environment's least-squares coefficients, standardised as the fit's agents were."""

    mean: np.ndarray  # [(dx + 1) * dy]
    scale: np.ndarray

    def encode(self, x, y) -> np.ndarray:
        return ((_least_squares(np.asarray(x), np.asarray(y)) - self.mean) / self.scale)[None]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale}

    @classmethod
    def load(cls, arrays: Arrays) -> SysidEncoder:
        return cls(np.asarray(arrays["mean"]), np.asarray(arrays["scale"]))


def fit_sysid(x, y, agent_ids, n_agents, key, steps, carry) -> MechanismFit:
    """Per-agent least-squares coefficients of y on [x, 1], standardised over the agents:
    theta [N, (dx + 1) * dy] (no optimiser: `steps`, `key` and `carry` are unused)."""
    agents = np.unique(agent_ids)
    raw = np.stack([_least_squares(x[agent_ids == n], y[agent_ids == n]) for n in agents])
    mean, scale = raw.mean(axis=0), raw.std(axis=0) + 1e-8
    return MechanismFit((raw - mean) / scale, agents, SysidEncoder(mean, scale), {}, 0)


register_mechanism(
    MechanismMethod(
        "sysid", fit_sysid, SysidEncoder.load, description="per-agent least squares (ablation)"
    )
)
