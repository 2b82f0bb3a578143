"""Every CPU core by default: one forced host device per core, set before JAX starts.

XLA:CPU runs each device's program on its own thread, so a run whose agent axis is split over
one host device per core puts every core to work (this 2-core CPU, 2026-12-02: 1.32x the
aggregate agent-steps/s at N = 20 and 1.37x at N = 1000), while a run that stays on one device
is not slowed by the extra devices. The count must be set before JAX starts its backend:
importing `c3rl_jax` does it (`configure`), unless JAX has started already or XLA_FLAGS sets a
count itself. C3RL_JAX_HOST_DEVICES chooses: "auto" (default, one per core), "off" (one), or a
count. Only the CPU platform is affected; accelerators are not.
"""

import os
import sys
import warnings

ENV = "C3RL_JAX_HOST_DEVICES"
FLAG = "--xla_force_host_platform_device_count"


def requested() -> int | None:
    """The host device count C3RL_JAX_HOST_DEVICES asks for (None: an invalid value)."""
    value = os.environ.get(ENV, "auto").strip().lower()
    if value == "auto":
        return os.cpu_count() or 1
    if value == "off":
        return 1
    return int(value) if value.isdigit() and int(value) >= 1 else None


def _backend_started() -> bool:
    if "jax" not in sys.modules:  # not even imported: nothing can have started
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def configure() -> None:
    """Ask XLA for `requested()` host devices, unless XLA_FLAGS already names a count or JAX's
    backend has started (then nothing changes)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags or _backend_started():
        return
    count = requested()
    if count is None:
        warnings.warn(
            f"{ENV}={os.environ[ENV]!r} is invalid: auto, off or a positive integer; "
            "using one host device",
            RuntimeWarning,
            stacklevel=2,
        )
    elif count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={count}".strip()
