"""Numerical pieces the jitted fits share (agent_gp, GPPOM): precision scopes, guarded
optimiser steps, float32 results, the warning for skipped steps."""

import contextlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np

PRECISIONS = ("float32", "float64")


def precision_scope(precision: str):
    """float64 runs inside a scoped `jax.enable_x64`; float32 needs nothing."""
    if precision == "float64":
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def precision_dtype(precision: str):
    """The float dtype a fit of this precision computes in (inside `precision_scope`)."""
    return jnp.float64 if precision == "float64" else jnp.float32


def all_finite(*trees) -> jax.Array:
    """[] True when every leaf of every tree is finite."""
    leaves = jax.tree_util.tree_leaves(trees)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def select(pred, on_true, on_false):
    """Leafwise where(pred, on_true, on_false) of two trees of the same structure."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def to_float32(tree):
    """A fit's arrays as JAX arrays, the floating ones in float32 (converted on the host and
    put back with `jax.device_put`: a jnp.asarray of host data compiles a program per shape)."""

    def one(a) -> jax.Array:
        a = np.asarray(a)
        return jax.device_put(a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a)

    return jax.tree_util.tree_map(one, tree)


def warn_skipped(n_skipped, model: str, settings: str, hint: str = "") -> None:
    """A RuntimeWarning, from the fit's caller, when a fit skipped optimiser steps (n_skipped:
    the counts, any shape): "{model}: N optimiser step(s) ... skipped ({settings}){hint}"."""
    skipped = int(np.sum(np.asarray(n_skipped)))
    if skipped:
        warnings.warn(
            f"{model}: {skipped} optimiser step(s) had a non-finite loss or gradient and were "
            f"skipped ({settings}){hint}",
            RuntimeWarning,
            stacklevel=4,
        )
