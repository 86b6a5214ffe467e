"""The DARTS recurrent cell space (Liu et al., 2019), written in the cell language; registered as ``"darts"``.

A DARTS recurrent cell is built of the same highway nodes as an ENAS cell (see :mod:`zeronas.cells.enas`), with
three differences, checked against the authors' code (quark0/darts, ``rnn/model.py`` ``DARTSCell`` and
``rnn/genotypes.py``):

- node 0 is fixed: ``c_0 = sigmoid(W_c [x, h_prev])``, ``s_0 = c_0 * tanh(W_h [x, h_prev]) + (1 - c_0) * h_prev``
  (``_compute_init_state``: one matmul of width 2H, split into the gate ``c`` then the candidate ``h``);
- a genotype lists ``STEPS = 8`` further nodes as ``(activation, j)``: step ``i`` (node ``i + 1``) reads node
  ``j <= i`` with ``s = c * f(h) + (1 - c) * s_j`` (``c, h`` from one matmul of width 2H of ``s_j``),
  ``f`` among tanh, ReLU, sigmoid, identity (``PRIMITIVES`` without ``none``);
- the output averages all 8 step nodes (``concat = range(1, 9)``), node 0 excluded.

Adaptations: our ``linear`` has a bias (theirs have none); their search-time batch norm and dropout masks are
not part of a cell. The space is sampled uniformly; a mutation changes one step's activation or its input node.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from zeronas.cells.enas import (
    HighwayArc,
    NotAHighwayCell,
    _rng,
    decode_highway,
    highway_cell,
    mutate_highway,
    space_contains,
)
from zeronas.cells.recipe import Cell, RecipeError, parse_recipe
from zeronas.cells.spaces import SearchSpace, SupernetSpec, register_space

__all__ = ["DARTS_ACTIVATIONS", "DARTS_GENOTYPES", "DartsSpace", "NAMED_CELLS", "SPACE", "STEPS", "darts_arc",
           "darts_cell", "genotype_of", "mutate_cell", "named_cell", "sample_cell"]

# PRIMITIVES of rnn/genotypes.py without 'none' (a genotype never holds 'none')
DARTS_ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")
STEPS = 8
FIRST_ACTIVATION = "tanh"
MAX_SAMPLE_TRIES = 1_000

Genotype = Sequence[tuple[str, int]]

# rnn/genotypes.py: DARTS_V1 (first-order search) and DARTS_V2 (second order; the paper's PTB cell, DARTS =
# DARTS_V2), both with concat = range(1, 9)
DARTS_GENOTYPES: dict[str, tuple[tuple[str, int], ...]] = {
    "DARTS_V1": (("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1), ("relu", 5),
                 ("relu", 1)),
    "DARTS_V2": (("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5),
                 ("tanh", 3), ("relu", 5)),
}


def darts_arc(genotype: Genotype, concat: Sequence[int] | None = None) -> HighwayArc:
    """A DARTS genotype as a :class:`HighwayArc`. ``genotype[i] = (activation, j)``: node ``i + 1`` reads node
    ``j`` (0 = the fixed first node). ``concat``: the averaged nodes, by default all step nodes (DARTS's rule;
    give it to write cells of other spaces in DARTS's notation, e.g. its transcription of the ENAS cell)."""
    steps = len(genotype)
    for step in genotype:
        if not (isinstance(step, (tuple, list)) and len(step) == 2):
            raise ValueError(f"a genotype step is (activation, input node), got {step!r}")
    acts = (FIRST_ACTIVATION,) + tuple(a for a, _ in genotype)
    parents = tuple(int(j) for _, j in genotype)
    outputs = tuple(range(1, steps + 1)) if concat is None else tuple(int(c) for c in concat)
    return HighwayArc(acts, parents, outputs)


def darts_cell(genotype: Genotype, concat: Sequence[int] | None = None, *, name: str | None = None) -> Cell:
    return highway_cell(darts_arc(genotype, concat), name=name, source="DARTS cell")


def _decode_darts(cell: Cell, steps: int | None) -> HighwayArc:
    arc = decode_highway(cell)
    if steps is not None and arc.num_nodes != steps + 1:
        raise NotAHighwayCell(f"the DARTS space has {steps} steps, the cell has {arc.num_nodes - 1}")
    if arc.activations[0] != FIRST_ACTIVATION:
        raise NotAHighwayCell(f"a DARTS cell's first node uses {FIRST_ACTIVATION}, this one {arc.activations[0]}")
    if arc.outputs != tuple(range(1, arc.num_nodes)):
        raise NotAHighwayCell("a DARTS cell averages all its step nodes")
    return arc


def genotype_of(cell: Cell) -> tuple[tuple[str, int], ...]:
    """The DARTS genotype of a cell of the space (steps in a topological order; ``NotAHighwayCell`` otherwise)."""
    arc = _decode_darts(parse_recipe(cell), None)
    return tuple(zip(arc.activations[1:], arc.parents))


def sample_cell(seed_or_rng: Any = None, steps: int = STEPS) -> Cell:
    """A uniform draw: each step's activation among the four, its input among the nodes before it.
    The same seed gives the same cell (its canonical id is computed, and cached, on the way)."""
    rng = _rng(seed_or_rng)
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    for _ in range(MAX_SAMPLE_TRIES):
        genotype = [(DARTS_ACTIVATIONS[int(rng.integers(len(DARTS_ACTIVATIONS)))], int(rng.integers(i + 1)))
                    for i in range(steps)]
        cell = darts_cell(genotype)
        # with 8 steps at most 8! = recipe.MAX_TIE_COMBINATIONS orderings of identical steps: always computable;
        # with more steps a draw may be too symmetric to identify, and is redrawn
        try:
            cell.canonical_id
        except RecipeError:
            continue
        return cell
    raise RuntimeError(f"no identifiable DARTS cell in {MAX_SAMPLE_TRIES} draws")


def mutate_cell(cell: Cell, rng: Any = None, steps: int | None = None) -> Cell:
    """A neighbour in the DARTS space: one step's activation changed or one step's input moved to another
    earlier node; drawn until its ``canonical_id`` differs from ``cell``'s."""
    cell = parse_recipe(cell, source="cell to mutate")
    arc = _decode_darts(cell, steps)
    return mutate_highway(cell, _rng(rng), arc, activations=DARTS_ACTIVATIONS, first_activation_searched=False,
                          build=lambda acts, parents: highway_cell(HighwayArc(acts, parents, arc.outputs),
                                                                   source="DARTS mutation"))


def _from_choices(activations: list[str], parents: list[int]) -> Cell:
    """The DARTS cell of a pruned supernet: node 0 is the first activation, then one (activation, parent) per step."""
    return darts_cell(list(zip(activations[1:], parents)))


class DartsSpace(SearchSpace):
    """The DARTS recurrent space with ``steps`` step nodes (8, as in the paper)."""

    def __init__(self, name: str = "darts", *, steps: int = STEPS) -> None:
        self.name = name
        self.steps = steps

    def sample(self, rng: np.random.Generator) -> Cell:
        return sample_cell(rng, self.steps)

    def mutate(self, cell: Cell, rng: np.random.Generator) -> Cell:
        return mutate_cell(cell, rng, self.steps)

    def supernet(self) -> SupernetSpec:
        return SupernetSpec(self.steps + 1, (FIRST_ACTIVATION,), DARTS_ACTIVATIONS, "steps", _from_choices)

    def contains(self, cell: Cell) -> bool:
        return space_contains(cell, lambda c: _decode_darts(c, self.steps))


SPACE = register_space(DartsSpace())

NAMED_CELLS: dict[str, tuple[tuple[str, int], ...]] = dict(DARTS_GENOTYPES)


def named_cell(name: str) -> Cell:
    """A published DARTS cell by name (``DARTS_V2``, the paper's PTB cell; ``DARTS_V1``, first-order search)."""
    try:
        genotype = NAMED_CELLS[name]
    except KeyError:
        raise KeyError(f"no DARTS cell {name!r} (known: {', '.join(NAMED_CELLS)})") from None
    return darts_cell(genotype, name=name)
