"""A small registry of search spaces of cells.

A search space knows how to draw a random cell and how to step from a cell to a neighbouring one; that is
all a training-free search (random search, evolution, local search) needs. Spaces register themselves by
name; the built-in ones are imported on first lookup, so ``get_space("nb-nlp")`` works without importing
:mod:`zeronas.cells.nbnlp` first. Spaces of plugins (entry points of the group ``zeronas.plugins``, see
:mod:`zeronas.plugins`) are loaded when a name is not found and by :func:`list_spaces`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from zeronas.cells.recipe import Cell

__all__ = ["SearchSpace", "register_space", "get_space", "list_spaces"]

# name -> module that registers it when imported
_BUILTIN_SPACES: dict[str, str] = {"nb-nlp": "zeronas.cells.nbnlp", "enas": "zeronas.cells.enas",
                                    "darts": "zeronas.cells.darts"}
_SPACES: dict[str, "SearchSpace"] = {}


class SearchSpace(ABC):
    """A set of cells with a sampler and a neighbourhood."""

    #: the registry key, e.g. ``"nb-nlp"``
    name: str

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Cell:
        """A random cell of the space. The same generator state gives the same cell."""

    @abstractmethod
    def mutate(self, cell: Cell, rng: np.random.Generator) -> Cell:
        """A valid neighbouring cell of the space whose ``canonical_id`` differs from ``cell``'s."""

    def contains(self, cell: Cell) -> bool:
        """Whether ``cell`` satisfies the rules of this space beyond cell validity (default: every cell does)."""
        return True

    def supernet(self) -> "SupernetSpec | None":
        """The candidate structure that pruning starts from, for a highway space; None (the default) when the
        space has none, and pruning refuses it."""
        return None


@dataclass(frozen=True)
class SupernetSpec:
    """What pruning needs of a highway space: the node count, node 0's activations, the other nodes'
    activations, the output rule (``"loose_ends"``: every node no other reads, as ENAS; ``"steps"``: every
    step node, as DARTS), and ``build(activations, parents)``: the space's own cell for one candidate per node
    (``parents[i]`` is node ``i + 1``'s parent)."""

    num_nodes: int
    first_activations: tuple[str, ...]
    activations: tuple[str, ...]
    outputs: str
    build: Callable[[list[str], list[int]], Cell]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def register_space(space: SearchSpace, *, replace: bool = False) -> SearchSpace:
    """Add ``space`` under ``space.name``. Registering a second space under a taken name needs ``replace=True``;
    registering the same object again is a no-op."""
    name = getattr(space, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"a search space needs a non-empty string 'name', got {name!r}")
    for attr in ("sample", "mutate"):
        if not callable(getattr(space, attr, None)):
            raise TypeError(f"search space {name!r} has no method {attr!r}")
    old = _SPACES.get(name)
    if old is not None and old is not space and not replace:
        raise ValueError(f"a search space named {name!r} is already registered (pass replace=True to replace it)")
    _SPACES[name] = space
    return space


def _load_builtins() -> None:
    for module in _BUILTIN_SPACES.values():
        importlib.import_module(module)


def get_space(name: str) -> SearchSpace:
    """The registered space called ``name``; ``KeyError`` naming the known spaces otherwise."""
    if name not in _SPACES and name in _BUILTIN_SPACES:
        importlib.import_module(_BUILTIN_SPACES[name])
    if name not in _SPACES:
        from zeronas.plugins import load_plugins

        load_plugins()
    try:
        return _SPACES[name]
    except KeyError:
        raise KeyError(f"no search space {name!r} (known: {', '.join(list_spaces()) or 'none'})") from None


def list_spaces() -> list[str]:
    """Names of all registered spaces (built-ins and plugins' included), sorted."""
    from zeronas.plugins import load_plugins

    _load_builtins()
    load_plugins()
    return sorted(_SPACES)
