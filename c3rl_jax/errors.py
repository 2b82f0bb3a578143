"""The error types the package raises: bad user input, and a run that diverged."""

import numpy as np


class ConfigError(ValueError):
    """Invalid user input; the message names the field, the value and what is allowed."""


class DivergenceError(RuntimeError):
    """Some agents produced non-finite numbers (raised by `guards.check_finite`)."""


def check(condition: bool, field: str, value, allowed: str) -> None:
    """Raise `ConfigError` naming `field`, `value` and what is `allowed` unless `condition`."""
    if not condition:
        raise ConfigError(f"{field}={value!r} is invalid: {allowed}")


def check_int(field: str, value, low: int) -> None:
    """Raise `ConfigError` unless `value` is an integer (not a bool) of at least `low`."""
    ok = not isinstance(value, bool) and isinstance(value, int | np.integer) and value >= low
    check(ok, field, value, f"an integer >= {low}")
