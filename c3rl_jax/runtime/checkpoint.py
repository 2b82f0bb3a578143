"""Checkpoints of a run (orbax): everything needed to continue it exactly.

A checkpoint holds the `RunState` (all agents' parameters and optimiser states, the replay
buffer, the RNG key, the step count), the population, P and its history, and the returns so far,
plus a JSON record of the config. Environments and OU noise restart with every episode and
checkpoints are taken between episodes, so neither has state to keep. Orbax writes to a
temporary directory and renames it, so a kill at any moment leaves the last complete checkpoint.
"""

from pathlib import Path

import jax
import orbax.checkpoint as ocp

from c3rl_jax.config import RESUMABLE_CHANGES
from c3rl_jax.errors import ConfigError


class CheckpointError(ConfigError):
    """A checkpoint is missing, corrupt, or belongs to another run."""


class Checkpointer:
    """Checkpoints under `run_dir/checkpoints/<episodes done>`, the last `keep` kept."""

    def __init__(self, run_dir: str | Path, keep: int = 2, create: bool = True):
        self.directory = Path(run_dir).absolute() / "checkpoints"
        if not create and not self.directory.is_dir():
            raise CheckpointError(
                f"run directory={str(run_dir)!r} is invalid: no checkpoints directory in it"
            )
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=create, enable_async_checkpointing=False
            ),
        )

    def save(self, episodes_done: int, tree, meta: dict) -> None:
        """tree: a pytree of arrays; meta: JSON-serialisable dict."""
        self.manager.save(
            episodes_done,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        self.manager.wait_until_finished()

    def latest(self) -> int:
        step = self.manager.latest_step()
        if step is None:
            raise CheckpointError(
                f"run directory={str(self.directory.parent)!r} is invalid: no checkpoint "
                "found in it"
            )
        return step

    def drop_after(self, step: int) -> None:
        """Delete the checkpoints after `step` (a run continuing from `step` replaces them)."""
        for later in [s for s in self.manager.all_steps() if s > step]:
            self.manager.delete(later)

    def meta(self, step: int) -> dict:
        return self._restore(step, meta=ocp.args.JsonRestore())["meta"]

    def restore(self, step: int, template):
        """The saved tree, shaped and typed like `template` (arrays or ShapeDtypeStructs)."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        return self._restore(step, state=ocp.args.StandardRestore(abstract))["state"]

    def _restore(self, step: int, **items):
        try:
            return self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:  # orbax/tensorstore raise many types on corrupt files
            first = str(err).splitlines()[0]
            why = f"it could not be read ({type(err).__name__}: {first[:200]})"
            if "tree structures do not match" in first:
                why = (
                    "its arrays are laid out as by another version of c3rl-jax (for example "
                    "one from before seed sampling became a learner wrapper, 2026-12-02); "
                    "rerun it, or load it with the version that wrote it"
                )
            raise CheckpointError(
                f"checkpoint={str(self.directory / str(step))!r} is invalid: {why}"
            ) from err


def check_compatible(saved: dict, requested: dict) -> None:
    """Refuse to resume `saved` (a config dict) under a `requested` config that differs."""
    for name, value in requested.items():
        if name in RESUMABLE_CHANGES or saved.get(name) == value:
            continue
        raise CheckpointError(
            f"{name}={value!r} is invalid: the checkpoint was made with {name}="
            f"{saved.get(name)!r} (only {', '.join(RESUMABLE_CHANGES)} may change on resume)"
        )
