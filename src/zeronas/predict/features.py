"""The inputs of a performance predictor: zero-cost scores, their failure flags and the cell graph's structure.

One row per cell, one column per feature, in the order of :func:`feature_names`:

* for each proxy ``p`` of the chosen list: ``p`` (its value when the score is ok, NaN otherwise) and
  ``p:failed`` (1 when the stored score is not ok: NaN, inf, out of memory, error, timeout). A failed score is
  information (a proxy that overflows at initialisation often foretells divergence), so it is a feature, not a
  reason to drop the cell. The trees split on raw values, so no proxy needs rescaling.
* structure, read from the recipe alone (no model is built): ``ops:<op>`` the count of each op of the cell
  language, ``nodes``, ``depth`` (ops on the longest input-to-output path), ``recurrent_fanin`` (input slots that
  read a carried state), ``hidden_tuple_size``, and ``log_paths_x`` / ``log_paths_h`` (log(1 + the number of
  distinct paths from the input ``x`` / from any carried state to the new states, as GRAF counts paths).

A cell that lacks a stored score for some proxy (never scored) has no feature row: it is not a failure of the cell
but missing work, and the caller decides (score it, or rank the cell last).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np

from zeronas.cells.ops import OPS
from zeronas.cells.recipe import PREV_RE, Cell
from zeronas.proxies._structure import depth, recurrent_fanin
from zeronas.core.score import Score

FAILED_SUFFIX = ":failed"
STRUCTURE_FEATURES: tuple[str, ...] = (tuple(f"ops:{op}" for op in OPS)
                                       + ("nodes", "depth", "recurrent_fanin", "hidden_tuple_size",
                                          "log_paths_x", "log_paths_h"))


def feature_names(proxies: Sequence[str], structure: bool = True) -> list[str]:
    """Column names, in matrix order."""
    names: list[str] = []
    for p in proxies:
        names += [p, p + FAILED_SUFFIX]
    if structure:
        names += list(STRUCTURE_FEATURES)
    return names


def count_paths(cell: Cell, is_source: Callable[[str], bool]) -> int:
    """Distinct directed paths from the inputs for which ``is_source`` holds to the cell's outputs."""
    paths = {name: int(is_source(name)) for name in cell.inputs}
    for node in cell.order:  # topological
        paths[node] = sum(paths[i] for i in cell.node_inputs(node))
    return sum(paths[o] for o in cell.outputs)


def structure_features(cell: Cell) -> list[float]:
    """The structural columns of one cell (see the module docstring), in :data:`STRUCTURE_FEATURES` order."""
    counts = cell.op_counts()
    return ([float(counts.get(op, 0)) for op in OPS]
            + [float(len(cell.order)), float(depth(cell)), float(recurrent_fanin(cell)),
               float(cell.hidden_tuple_size),
               math.log1p(count_paths(cell, lambda n: n == "x")),
               math.log1p(count_paths(cell, lambda n: bool(PREV_RE.match(n))))])


def feature_row(cell: Cell, scores: Mapping[str, Score], proxies: Sequence[str],
                structure: bool = True) -> list[float] | None:
    """One cell's features, or None when some proxy has no stored score at all."""
    row: list[float] = []
    for p in proxies:
        s = scores.get(p)
        if s is None:
            return None
        row += [float(s.value) if s.ok and s.value is not None else math.nan, 0.0 if s.ok else 1.0]
    if structure:
        row += structure_features(cell)
    return row


def feature_matrix(cells: Sequence[Cell], scores: Sequence[Mapping[str, Score]], proxies: Sequence[str],
                   structure: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(X, complete)``: the feature rows of ``cells`` (NaN rows where incomplete) and which rows are complete."""
    width = len(feature_names(proxies, structure))
    X = np.full((len(cells), width), math.nan)
    complete = np.zeros(len(cells), dtype=bool)
    for i, (cell, row_scores) in enumerate(zip(cells, scores)):
        row = feature_row(cell, row_scores, proxies, structure)
        if row is not None:
            X[i] = row
            complete[i] = True
    return X, complete
