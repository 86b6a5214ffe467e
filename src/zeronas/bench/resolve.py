"""A cell from whatever a user names: a recipe file, a named cell, an inline recipe, or a benchmark id (so it
lives above the benchmark, not among the cells)."""

from __future__ import annotations

from pathlib import Path

from zeronas.bench.nbnlp import Benchmark
from zeronas.cells.recipe import Cell, RecipeError, load_cell, parse_recipe


def resolve_cell(spec: str) -> Cell:
    """A cell from a recipe file, a named cell (rnn, lstm, gru, enas_ptb, ...; any case), an inline JSON recipe, or
    a bundled benchmark cell's canonical id / arch_sha1. :class:`RecipeError` says which of these ``spec`` is not."""
    from zeronas.cells.named import get_named_cell, list_named_cells

    if spec.casefold() in {n.casefold() for n in list_named_cells()}:  # enas_ptb finds ENAS_PTB
        return get_named_cell(spec)
    path = Path(spec)
    try:
        is_file = path.exists()
    except (OSError, ValueError):  # a name too long for a path, or one holding a NUL: not a file
        is_file = False
    if is_file or spec.endswith(".json"):
        return load_cell(path)
    if spec.lstrip().startswith("{"):
        return parse_recipe(spec, source="command-line recipe")
    try:
        return Benchmark.nbnlp().get(spec).cell
    except KeyError:
        raise RecipeError(f"{spec!r} is not a file, a reference cell (rnn, lstm, gru), an inline JSON recipe, "
                          "or the canonical id / arch_sha1 of a bundled benchmark cell") from None
