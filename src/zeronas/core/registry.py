"""A registry of named things (proxies, search spaces, model adapters), filled as modules are imported.

Each kind keeps one :class:`Registry`; its module decides the rules of adding (what a clash means). A registry
never loads plugins itself: that happens once, at the entry points (:mod:`zeronas.plugins`). Tests add things
for a while with :meth:`Registry.scoped`, which puts the registry back as it was, instead of editing its dict.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Named items in order of registration. ``before_scope`` runs at the start of :meth:`scoped` (e.g. to
    import the built-ins first, so that leaving the scope cannot drop them)."""

    def __init__(self, kind: str, *, before_scope: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._before_scope = before_scope

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` (replacing what was there: the caller checks for clashes)."""
        self._items[name] = item
        return item

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """The names, sorted."""
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """``(name, item)`` in order of registration."""
        return list(self._items.items())

    @contextmanager
    def scoped(self) -> Iterator["Registry[T]"]:
        """Whatever is registered (or replaced) inside the ``with`` block is undone when it ends."""
        if self._before_scope is not None:
            self._before_scope()
        saved = dict(self._items)
        try:
            yield self
        finally:
            self._items.clear()
            self._items.update(saved)

    def __repr__(self) -> str:
        return f"<Registry of {len(self)} {self.kind}(s)>"
