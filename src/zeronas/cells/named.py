"""Named cells from every source in one place: the reference cells (``rnn``, ``lstm``, ``gru``, see
:mod:`zeronas.cells.reference`) and the published cells of the ENAS and DARTS spaces (``ENAS_PTB``,
``DARTS_V1``, ``DARTS_V2``, see :mod:`zeronas.cells.enas` and :mod:`zeronas.cells.darts`).

Names are matched exactly first, then case-insensitively (``enas_ptb`` finds ``ENAS_PTB``).
"""

from __future__ import annotations

from typing import Callable

from zeronas.cells import darts, enas
from zeronas.cells.recipe import Cell
from zeronas.cells.reference import REFERENCE_RECIPES, reference_cell

__all__ = ["get_named_cell", "list_named_cells"]


def _builders() -> dict[str, Callable[[str], Cell]]:
    table: dict[str, Callable[[str], Cell]] = {name: reference_cell for name in REFERENCE_RECIPES}
    table.update({name: enas.named_cell for name in enas.NAMED_CELLS})
    table.update({name: darts.named_cell for name in darts.NAMED_CELLS})
    return table


def list_named_cells() -> list[str]:
    """Every name :func:`get_named_cell` knows, reference cells first."""
    return list(_builders())


def get_named_cell(name: str) -> Cell:
    """The validated cell called ``name``; ``KeyError`` listing the known names otherwise."""
    table = _builders()
    if name not in table and isinstance(name, str):
        folded = {n.casefold(): n for n in table}
        name = folded.get(name.casefold(), name)
    try:
        build = table[name]
    except (KeyError, TypeError):
        raise KeyError(f"no named cell {name!r} (known: {', '.join(table)})") from None
    return build(name)
