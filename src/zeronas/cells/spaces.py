"""A small registry of search spaces of cells.

A search space knows how to draw a random cell and how to step from a cell to a neighbouring one; that is
all a training-free search (random search, evolution, local search) needs. Spaces register themselves by
name; the built-in ones are imported on first lookup, so ``get_space("nb-nlp")`` works without importing
:mod:`zeronas.cells.nbnlp_space` first. Spaces of plugins are registered when the entry points load the plugins
(:func:`zeronas.plugins.load_plugins`), after the built-ins. Tests register spaces for a while with
``with SPACES.scoped(): ...``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from zeronas.cells.recipe import Cell
from zeronas.core.registry import Registry

__all__ = ["SPACES", "SearchSpace", "register_space", "get_space", "list_spaces"]

# name -> module that registers it when imported
_BUILTIN_SPACES: dict[str, str] = {"nb-nlp": "zeronas.cells.nbnlp_space", "enas": "zeronas.cells.enas",
                                    "darts": "zeronas.cells.darts"}


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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


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


def _load_builtins() -> None:
    for module in _BUILTIN_SPACES.values():
        importlib.import_module(module)


SPACES: Registry["SearchSpace"] = Registry("search space", before_scope=_load_builtins)


def register_space(space: SearchSpace, *, replace: bool = False) -> SearchSpace:
    """Add ``space`` under ``space.name``. Registering a second space under a taken name needs ``replace=True``;
    registering the same object again is a no-op."""
    name = getattr(space, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"a search space needs a non-empty string 'name', got {name!r}")
    for attr in ("sample", "mutate"):
        if not callable(getattr(space, attr, None)):
            raise TypeError(f"search space {name!r} has no method {attr!r}")
    if not type(space).__module__.startswith("zeronas."):
        _load_builtins()  # first: a plugin's space reusing a built-in name fails here
    old = SPACES.get(name)
    if old is not None and old is not space and not replace:
        raise ValueError(f"a search space named {name!r} is already registered (pass replace=True to replace it)")
    return SPACES.add(name, space)


def get_space(name: str) -> SearchSpace:
    """The registered space called ``name``; ``KeyError`` naming the known spaces otherwise."""
    if name not in SPACES and name in _BUILTIN_SPACES:
        importlib.import_module(_BUILTIN_SPACES[name])
    space = SPACES.get(name)
    if space is None:
        raise KeyError(f"no search space {name!r} (known: {', '.join(list_spaces()) or 'none'})")
    return space


def list_spaces() -> list[str]:
    """Names of all registered spaces (built-ins and loaded plugins' included), sorted."""
    _load_builtins()
    return SPACES.names()
