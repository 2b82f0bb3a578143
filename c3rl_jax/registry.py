"""Named entries looked up with a clear error: the registries of tasks, sharing methods and
mechanism-inference methods."""

from typing import Generic, TypeVar

from c3rl_jax.errors import check

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries with a `.name`, kept in the order registered; `field` names the setting in
    the error for an unknown name."""

    def __init__(self, field: str):
        self.field = field
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add (or replace) an entry under `entry.name`; returns it."""
        self._entries[entry.name] = entry
        return entry

    def get(self, name: str) -> T:
        check(name in self._entries, self.field, name, f"one of {sorted(self._entries)}")
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)
