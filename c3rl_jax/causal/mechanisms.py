"""A fitted mechanism model: GPPOM's encoder plus the Gaussian mixture on theta, kept as one
plain .npz so that new data can be placed among the learned mechanisms without refitting.

`posterior(X, Y)` maps new samples to theta with the back-constraint (`GPPOMFit.encode`) and
pools their GMM responsibilities exactly as an agent's soft assignment is pooled: the mean
over the samples, P(k | data) [K].
"""

from __future__ import annotations

import dataclasses
from typing import Any, BinaryIO, NamedTuple

import jax.numpy as jnp
import numpy as np
from sklearn.mixture import GaussianMixture

from c3rl_jax.causal.clustering import soft_assignments
from c3rl_jax.causal.gppom import GPPOMFit, GPPOMParams

__all__ = ["MechanismModel"]

_GMM_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")
_GMM_SCALING = ("theta_mean_", "theta_scale_")


class MechanismModel(NamedTuple):
    """fit: the GPPOM fit (theta [n, d_theta] of its training samples); gmm: the mixture on
    theta (from `fit_gmm`); assignments: V [N, K] soft assignments of the agents the data came
    from; x [n, dx], y [n, dy], agent_ids [n]: the data it was fitted to."""

    fit: GPPOMFit
    gmm: GaussianMixture
    assignments: np.ndarray
    x: np.ndarray
    y: np.ndarray
    agent_ids: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.gmm.n_components)

    def posterior(self, x: Any, y: Any) -> np.ndarray:
        """P(k | data) [K]: mean responsibility of new samples x [m, dx], y [m, dy]."""
        theta = np.asarray(self.fit.encode(x, y))
        return soft_assignments(self.gmm, theta).mean(axis=0)

    def save(self, file: BinaryIO) -> None:
        """Write every array (and the covariance type) to an open binary file as .npz."""
        arrays = {f"fit.{k}": np.asarray(v) for k, v in _fit_fields(self.fit).items()}
        arrays |= {
            f"gmm.{k}": np.asarray(getattr(self.gmm, k)) for k in (*_GMM_ARRAYS, *_GMM_SCALING)
        }
        arrays["gmm.covariance_type"] = np.asarray(self.gmm.covariance_type)
        np.savez(
            file,
            **arrays,
            assignments=self.assignments,
            x=self.x,
            y=self.y,
            agent_ids=self.agent_ids,
        )

    @classmethod
    def load(cls, path) -> MechanismModel:
        """The model `save` wrote to `path`."""
        with np.load(path) as data:
            data = dict(data)
        fit_fields = {k[4:]: jnp.asarray(v) for k, v in data.items() if k.startswith("fit.")}
        params = GPPOMParams(**{f: fit_fields.pop(f"params.{f}") for f in GPPOMParams._fields})
        fit = GPPOMFit(params=params, **fit_fields)
        gmm = GaussianMixture(
            n_components=len(data["gmm.weights_"]),
            covariance_type=str(data["gmm.covariance_type"]),
        )
        for name in (*_GMM_ARRAYS, *_GMM_SCALING):
            setattr(gmm, name, data[f"gmm.{name}"])
        return cls(fit, gmm, data["assignments"], data["x"], data["y"], data["agent_ids"])


def _fit_fields(fit: GPPOMFit) -> dict[str, Any]:
    """The fit's arrays by name, its parameters as "params.<name>"."""
    fields = {f.name: getattr(fit, f.name) for f in dataclasses.fields(fit) if f.name != "params"}
    fields |= {f"params.{k}": v for k, v in fit.params._asdict().items()}
    return fields
