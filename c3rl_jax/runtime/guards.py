"""Divergence guards, checked at chunk boundaries: a non-finite return, critic loss or network
parameter stops the run with an error naming the agents, the episode and the quantity."""

import jax
import jax.numpy as jnp
import numpy as np

from c3rl_jax.errors import DivergenceError


def finite_per_agent(tree) -> jax.Array:
    """[N] bool: every leaf of agent n's slice of `tree` (leaves [N, ...]) is finite."""
    leaves = [jnp.isfinite(x).reshape(x.shape[0], -1).all(axis=1) for x in jax.tree.leaves(tree)]
    return jnp.stack(leaves).all(axis=0)


def check_finite(first_episode: int, returns, critic_loss, params_finite) -> None:
    """returns, critic_loss: [E, N] for episodes first_episode...; params_finite: [N] bool."""
    for name, values in (("return", returns), ("critic loss", critic_loss)):
        bad = ~np.isfinite(np.asarray(values))
        if bad.any():
            episode = int(np.argmax(bad.any(axis=1)))
            agents = np.flatnonzero(bad[episode]).tolist()
            raise DivergenceError(
                f"agent(s) {agents} diverged: non-finite {name} in episode "
                f"{first_episode + episode}"
            )
    bad = ~np.asarray(params_finite)
    if bad.any():
        last = first_episode + np.asarray(returns).shape[0] - 1
        raise DivergenceError(
            f"agent(s) {np.flatnonzero(bad).tolist()} diverged: non-finite network parameters "
            f"by the end of episode {last}"
        )
