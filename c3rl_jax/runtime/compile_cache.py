"""JAX's persistent compilation cache in a user cache directory: a run's programs (the training
chunk, the mechanism fit) compile once per machine and settings, not once per run.

`TrainConfig.compile_cache`: "auto" (default) uses $C3RL_JAX_CACHE_DIR, else
$XDG_CACHE_HOME/c3rl_jax, else ~/.cache/c3rl_jax; "off" disables it; any other value is the
directory. JAX reads the setting when it first compiles with the cache, so the first run of a
process decides the directory for the rest of it.
"""

import os
from pathlib import Path

import jax

ENV_VAR = "C3RL_JAX_CACHE_DIR"


def cache_dir(setting: str) -> Path | None:
    """The directory `setting` names (None for "off")."""
    if setting == "off":
        return None
    if setting != "auto":
        return Path(setting).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "c3rl_jax"


def enable(setting: str) -> Path | None:
    """Point JAX's persistent compilation cache at `cache_dir(setting)`; returns it."""
    path = cache_dir(setting)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(path))
    return path
