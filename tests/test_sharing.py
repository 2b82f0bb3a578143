import numpy as np
import pytest

from c3rl_jax import ConfigError
from c3rl_jax.sharing import fixed_sharing, validate_sharing_matrix


def test_fixed_modes():
    groups = np.array([0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(fixed_sharing("individual", groups), np.eye(6))
    np.testing.assert_allclose(fixed_sharing("global", groups), np.full((6, 6), 1 / 6))
    p = fixed_sharing("oracle", groups)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(p[2], [0, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(p[5], [0, 0, 0, 1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    for mode in ("individual", "global", "oracle"):
        np.testing.assert_allclose(fixed_sharing(mode, groups).sum(axis=1), 1.0, rtol=1e-6)


def test_unknown_mode():
    with pytest.raises(ConfigError, match="sharing='all'"):
        fixed_sharing("all", np.zeros(3, int))


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.eye(3), r"sharing_matrix.shape=\(3, 3\).*\(2, 2\)"),
        (np.array([[1.0, np.nan], [0, 1]]), "non-finite"),
        (np.array([[1.5, -0.5], [0, 1]]), "sharing_matrix.min=-0.5"),
        (np.array([[1.0, 0.0], [0.2, 0.2]]), "sharing_matrix row 1 sum=0.4"),
    ],
)
def test_bad_user_matrices_are_clear_errors(matrix, message):
    with pytest.raises(ConfigError, match=message):
        validate_sharing_matrix(matrix, 2)


def test_valid_user_matrix_passes_through():
    p = validate_sharing_matrix([[0.3, 0.7], [1.0, 0.0]], 2)
    assert p.dtype == np.float32 and p.shape == (2, 2)
