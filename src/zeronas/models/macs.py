"""Multiply-accumulates of a cell-language step and of a whole language model, in closed form."""

from __future__ import annotations

from typing import Sequence

from zeronas.cells.ops import OPS
from zeronas.cells.recipe import Cell


def cell_macs(cell: Cell, n_in: int, n_out: int) -> int:
    """MACs of one step of ``cell`` with input size ``n_in`` and hidden size ``n_out``: every weight of every
    linear node once, plus the elementwise products of the weight-free ops (each op's ``macs`` per unit)."""
    total = 0
    for node in cell.order:
        op, inputs = cell.op(node), cell.node_inputs(node)
        if op == "linear":
            total += sum((n_in if s == "x" else n_out) * n_out for s in inputs)
        elif op in OPS and OPS[op].macs is not None:
            total += OPS[op].macs(len(inputs)) * n_out  # type: ignore[misc]
        else:
            raise ValueError(f"flops: no MAC count for op {op!r} (node {node!r}); give its OpSpec a `macs`")
    return total


def lm_macs(cell: Cell, layer_sizes: Sequence[tuple[int, int]], vocab_size: int) -> int:
    """MACs per token of a language model whose layers all step ``cell``: every layer plus the decoder."""
    return sum(cell_macs(cell, i, o) for i, o in layer_sizes) + layer_sizes[-1][1] * vocab_size
