"""c3rl-jax: causal coordinated concurrent reinforcement learning in JAX."""

from importlib.metadata import version as _version

from c3rl_jax.config import TrainConfig
from c3rl_jax.errors import ConfigError
from c3rl_jax.population import Population, custom_population
from c3rl_jax.results import Results
from c3rl_jax.tasks import Task, get_task, register_task, task_names
from c3rl_jax.train import train

__version__ = _version("c3rl-jax")

__all__ = [
    "ConfigError",
    "Population",
    "Results",
    "Task",
    "TrainConfig",
    "custom_population",
    "get_task",
    "register_task",
    "task_names",
    "train",
]
