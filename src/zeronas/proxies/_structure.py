"""Structural counts of a cell recipe, shared by ``n_blend``, ``n_leaky_relu``, ``n_prod``, ``cell_depth`` and
``recurrent_fanin``.

They read the recipe only (``Cell.recipe``, ``Cell.order``): no model is built, no weights and no data are used,
so each is a closed-form function of the architecture and costs microseconds. A validated cell has no dead nodes
(:func:`zeronas.cells.recipe.parse_recipe` rejects them), so every node counted here feeds some output.
"""

from __future__ import annotations

from zeronas.cells.recipe import PREV_RE, Cell


def count_op(cell: Cell, op: str) -> int:
    """How many nodes of ``cell`` apply ``op``."""
    return cell.op_counts().get(op, 0)


def depth(cell: Cell) -> int:
    """Ops on the longest path from a cell input (``x``, ``h_prev_i``: depth 0) to an output ``h_new_i``.

    A node's depth is 1 + the largest depth of its inputs; the result is the largest depth of the outputs."""
    depths: dict[str, int] = {name: 0 for name in cell.inputs}
    for node in cell.order:  # topological: every input of a node has its depth already
        depths[node] = 1 + max(depths[i] for i in cell.node_inputs(node))
    return max(depths[o] for o in cell.outputs)


def recurrent_fanin(cell: Cell) -> int:
    """Input slots, over all nodes, that read a carried state ``h_prev_i`` (a repeated input counts each time)."""
    return sum(1 for node in cell.order for i in cell.node_inputs(node) if PREV_RE.match(i))
