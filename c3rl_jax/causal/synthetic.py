"""Synthetic cause-effect pairs of ANM-MM's kind: mixtures of additive-noise mechanisms.

Each mixture component ("mechanism") draws its own cause sample x, applies a function
f1(x) (with a parameter drawn once per component), adds noise of a chosen law, and can
pass the result through a post-nonlinearity f2:  y = f2(f1(x) + e). All randomness comes
from an explicit JAX key; the same key gives the same data.

Causes:      uniform U(0,1), normal N(0,1), exponential Exp(scale 0.5), laplace Laplace(0,1),
             lognormal LogN(0,1).
Mechanisms:  "neg" (-x), "exp_slow" exp(-t x) with t ~ U[1, 1.1], "exp_fast" exp(-t x) with
             t ~ U[3, 3.1]  (t drawn once per component).
Noises:      "none", "uniform" 0.2 U(0,1), "normal" 0.05 N(0,1), "exponential" Exp(scale 0.5),
             "laplace" Laplace(0,1), "lognormal" LogN(0,1); ``noise_scale`` rescales any of them.
Post:        "identity", "inv_square" 1/(t^2+1), "square", "sin", "cos", "cbrt".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax.errors import ConfigError, check

__all__ = [
    "CAUSES",
    "DIRECTION_CAUSES",
    "DIRECTION_NOISES",
    "MECHANISMS",
    "NOISES",
    "POSTS",
    "Mechanism",
    "PairData",
    "sample_cause",
    "sample_mixture",
    "two_mechanism_data",
    "direction_pair",
]

CAUSES = ("uniform", "normal", "exponential", "laplace", "lognormal")
MECHANISMS = ("neg", "exp_slow", "exp_fast")
NOISES = ("none", "uniform", "normal", "exponential", "laplace", "lognormal")
POSTS = ("identity", "inv_square", "square", "sin", "cos", "cbrt")

_DEFAULT_NOISE_SCALE = {
    "none": 0.0,
    "uniform": 0.2,
    "normal": 0.05,
    "exponential": 1.0,
    "laplace": 1.0,
    "lognormal": 1.0,
}


class Mechanism(NamedTuple):
    """One mixture component: y = post(f(x) + noise_scale * e), x ~ cause, e ~ noise law."""

    mechanism: str = "exp_slow"
    noise: str = "normal"
    noise_scale: float | None = None  # None: the law's default (see module doc)
    post: str = "identity"
    cause: str = "uniform"

    def validate(self) -> Mechanism:
        for field, allowed in (
            ("mechanism", MECHANISMS),
            ("noise", NOISES),
            ("post", POSTS),
            ("cause", CAUSES),
        ):
            value = getattr(self, field)
            check(value in allowed, f"Mechanism.{field}", value, f"one of {allowed}")
        if self.noise_scale is not None:
            ok = np.isfinite(self.noise_scale) and self.noise_scale >= 0
            allowed = "None or a finite number >= 0"
            check(bool(ok), "Mechanism.noise_scale", self.noise_scale, allowed)
        return self


class PairData(NamedTuple):
    """x [n], y [n] (x causes y), labels [n] (index of the mechanism of each sample)."""

    x: jax.Array
    y: jax.Array
    labels: jax.Array


def sample_cause(key: jax.Array, law: str, n: int) -> jax.Array:
    """n draws [n] of a cause law (see CAUSES)."""
    if law == "uniform":
        return jax.random.uniform(key, (n,))
    if law == "normal":
        return jax.random.normal(key, (n,))
    if law == "exponential":
        return 0.5 * jax.random.exponential(key, (n,))
    if law == "laplace":
        return jax.random.laplace(key, (n,))
    if law == "lognormal":
        return jnp.exp(jax.random.normal(key, (n,)))
    raise ConfigError(f"cause={law!r} is invalid: one of {CAUSES}")


def _noise(key: jax.Array, law: str, n: int) -> jax.Array:
    if law == "none":
        return jnp.zeros((n,))
    if law == "uniform":
        return jax.random.uniform(key, (n,))
    if law == "exponential":
        return 0.5 * jax.random.exponential(key, (n,))
    return sample_cause(key, law, n)  # normal, laplace, lognormal: same laws as the causes


def _mechanism(key: jax.Array, name: str, x: jax.Array) -> jax.Array:
    if name == "neg":
        return -x
    low = 1.0 if name == "exp_slow" else 3.0
    t = low + 0.1 * jax.random.uniform(key, ())
    return jnp.exp(-t * x)


def _post(name: str, t: jax.Array) -> jax.Array:
    return {
        "identity": lambda v: v,
        "inv_square": lambda v: 1.0 / (v**2 + 1.0),
        "square": lambda v: v**2,
        "sin": jnp.sin,
        "cos": jnp.cos,
        "cbrt": jnp.cbrt,
    }[name](t)


def sample_mixture(key: jax.Array, components: Sequence[Mechanism], n_per: int | Sequence[int]):
    """Concatenate samples of each component; returns PairData with x, y [n], labels [n].

    n_per: samples per component (one int for all, or one per component).
    """
    components = [Mechanism(*c).validate() if isinstance(c, tuple) else c for c in components]
    check(len(components) > 0, "components", components, "at least one Mechanism")
    counts = [n_per] * len(components) if isinstance(n_per, int | np.integer) else list(n_per)
    ok = len(counts) == len(components) and all(int(c) >= 1 for c in counts)
    check(ok, "n_per", n_per, f"a positive count (or one per each of {len(components)} components)")
    xs, ys, labels = [], [], []
    for i, (comp, n) in enumerate(zip(components, counts, strict=True)):
        k_cause, k_mech, k_noise = jax.random.split(jax.random.fold_in(key, i), 3)
        x = sample_cause(k_cause, comp.cause, int(n))
        scale = _DEFAULT_NOISE_SCALE[comp.noise] if comp.noise_scale is None else comp.noise_scale
        t = _mechanism(k_mech, comp.mechanism, x) + scale * _noise(k_noise, comp.noise, int(n))
        xs.append(x)
        ys.append(_post(comp.post, t))
        labels.append(jnp.full((int(n),), i, jnp.int32))
    return PairData(jnp.concatenate(xs), jnp.concatenate(ys), jnp.concatenate(labels))


def two_mechanism_data(key: jax.Array, n_per: int = 50, noise_std: float = 0.05) -> PairData:
    """The original paper's clustering test: exp(-t x), t ~ U[1,1.1] vs U[3,3.1],
    x ~ U(0,1), noise N(0, noise_std^2); n_per points from each (labels 0 and 1)."""
    comps = [
        Mechanism("exp_slow", "normal", noise_std, "identity", "uniform"),
        Mechanism("exp_fast", "normal", noise_std, "identity", "uniform"),
    ]
    return sample_mixture(key, comps, n_per)


# exp(-t x) over a real-valued cause (normal, Laplace) spans many orders of magnitude
# (e^{9} at x = -3): an additive-noise fit is then hopeless in both directions, so the
# direction benchmark draws its causes from the nonnegative laws.
DIRECTION_CAUSES = ("uniform", "exponential", "lognormal")
DIRECTION_NOISES = ("uniform", "normal")


def direction_pair(
    key: jax.Array,
    n_per: int = 50,
    cause: str | None = None,
    noise: str | None = None,
    post: str = "identity",
) -> tuple[PairData, dict[str, str]]:
    """One cause-effect pair for the direction benchmark: a mixture of exp(-t x) with
    t ~ U[1,1.1] and t ~ U[3,3.1] (one mechanism form, two parameter values), n_per points
    each. Unless given, the cause law is drawn from DIRECTION_CAUSES and the noise law from
    DIRECTION_NOISES (both components share them). Returns (data, description)."""
    k_choice, k_data = jax.random.split(key)
    k_c, k_n = jax.random.split(k_choice)
    if cause is None:
        cause = DIRECTION_CAUSES[int(jax.random.randint(k_c, (), 0, len(DIRECTION_CAUSES)))]
    if noise is None:
        noise = DIRECTION_NOISES[int(jax.random.randint(k_n, (), 0, len(DIRECTION_NOISES)))]
    comps = [Mechanism(m, noise, None, post, cause) for m in ("exp_slow", "exp_fast")]
    desc = {"cause": cause, "noise": noise, "post": post, "mechanisms": "exp_slow+exp_fast"}
    return sample_mixture(k_data, comps, n_per), desc
