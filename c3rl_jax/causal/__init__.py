"""Causal module: ANM-MM (GPPOM) latents, HSIC tests, soft clustering and the sharing matrix.

Arrays in, arrays out; nothing here knows about reinforcement learning.
"""

from c3rl_jax.causal.clustering import (
    SharingResult,
    adjusted_rand_index,
    agent_labels,
    agent_soft_assignments,
    fit_gmm,
    sharing_from_theta,
    sharing_matrix,
    similarity_matrix,
    soft_assignments,
)
from c3rl_jax.causal.gppom import (
    GPPOMConfig,
    GPPOMFit,
    GPPOMParams,
    fit_gppom,
    fit_gppom_arrays,
    fit_gppom_batch,
    gppom_loss,
)
from c3rl_jax.causal.hsic import (
    DirectionResult,
    HSICTest,
    causal_direction,
    gamma_ppf,
    hsic_gamma_test,
    hsic_statistic,
    median_heuristic_gram,
)
from c3rl_jax.causal.synthetic import (
    CAUSES,
    MECHANISMS,
    NOISES,
    POSTS,
    Mechanism,
    PairData,
    direction_pair,
    sample_cause,
    sample_mixture,
    two_mechanism_data,
)

__all__ = [
    "CAUSES",
    "MECHANISMS",
    "NOISES",
    "POSTS",
    "DirectionResult",
    "GPPOMConfig",
    "GPPOMFit",
    "GPPOMParams",
    "HSICTest",
    "Mechanism",
    "PairData",
    "SharingResult",
    "adjusted_rand_index",
    "agent_labels",
    "agent_soft_assignments",
    "causal_direction",
    "direction_pair",
    "fit_gmm",
    "fit_gppom",
    "fit_gppom_arrays",
    "fit_gppom_batch",
    "gamma_ppf",
    "gppom_loss",
    "hsic_gamma_test",
    "hsic_statistic",
    "median_heuristic_gram",
    "sample_cause",
    "sample_mixture",
    "sharing_from_theta",
    "sharing_matrix",
    "similarity_matrix",
    "soft_assignments",
    "two_mechanism_data",
]
