"""The one error type the package raises for bad user input."""


class ConfigError(ValueError):
    """Invalid user input; the message names the field, the value and what is allowed."""


def check(condition: bool, field: str, value, allowed: str) -> None:
    """Raise `ConfigError` naming `field`, `value` and what is `allowed` unless `condition`."""
    if not condition:
        raise ConfigError(f"{field}={value!r} is invalid: {allowed}")
