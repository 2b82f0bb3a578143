"""A fitted mechanism model: a method's encoder plus the Gaussian mixture on its latents, kept
as one plain .npz so that new data can be placed among the learned mechanisms without refitting.

`posterior(X, Y)` maps new transitions to latents with the method's encoder (`methods`) and
pools their GMM responsibilities as an agent's soft assignment is pooled: the mean over the
latents (one for agent-level methods, one per sample for ANM-MM), P(k | data) [K].
"""

from __future__ import annotations

from typing import Any, BinaryIO, NamedTuple

import numpy as np
from sklearn.mixture import GaussianMixture

from c3rl_jax.causal.clustering import soft_assignments
from c3rl_jax.causal.methods import Encoder, get_mechanism

__all__ = ["MechanismModel"]

_GMM_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")
_GMM_SCALING = ("theta_mean_", "theta_scale_")
_ENCODER = "fit."  # prefix of the encoder's arrays (files written before "method" was saved
# hold ANM-MM's GPPOM fit under the same prefix)


class MechanismModel(NamedTuple):
    """method: the registered mechanism method's name; encoder: its `Encoder`; gmm: the
    mixture on the latents (from `fit_gmm`); assignments: V [N, K] soft assignments of the
    agents the data came from; x [n, dx], y [n, dy], agent_ids [n]: the data it was fitted to."""

    method: str
    encoder: Encoder
    gmm: GaussianMixture
    assignments: np.ndarray
    x: np.ndarray
    y: np.ndarray
    agent_ids: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.gmm.n_components)

    def posterior(self, x: Any, y: Any) -> np.ndarray:
        """P(k | data) [K] of one new environment's transitions x [m, dx], y [m, dy]."""
        theta = self.encoder.encode(np.asarray(x), np.asarray(y))
        return soft_assignments(self.gmm, theta).mean(axis=0)

    def save(self, file: BinaryIO) -> None:
        """Write every array (and the method, the covariance type) to a binary file as .npz."""
        arrays = {f"{_ENCODER}{k}": np.asarray(v) for k, v in self.encoder.arrays().items()}
        arrays |= {
            f"gmm.{k}": np.asarray(getattr(self.gmm, k)) for k in (*_GMM_ARRAYS, *_GMM_SCALING)
        }
        arrays["gmm.covariance_type"] = np.asarray(self.gmm.covariance_type)
        np.savez(
            file,
            **arrays,
            method=np.asarray(self.method),
            assignments=self.assignments,
            x=self.x,
            y=self.y,
            agent_ids=self.agent_ids,
        )

    @classmethod
    def load(cls, path) -> MechanismModel:
        """The model `save` wrote to `path` (ConfigError naming an unknown method)."""
        with np.load(path) as data:
            data = dict(data)
        method = str(data.get("method", "anm_mm"))
        encoder_arrays = {k[len(_ENCODER) :]: v for k, v in data.items() if k.startswith(_ENCODER)}
        encoder = get_mechanism(method).load_encoder(encoder_arrays)
        gmm = GaussianMixture(
            n_components=len(data["gmm.weights_"]),
            covariance_type=str(data["gmm.covariance_type"]),
        )
        for name in (*_GMM_ARRAYS, *_GMM_SCALING):
            setattr(gmm, name, data[f"gmm.{name}"])
        return cls(
            method, encoder, gmm, data["assignments"], data["x"], data["y"], data["agent_ids"]
        )
