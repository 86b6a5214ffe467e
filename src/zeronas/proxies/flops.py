"""``flops``: multiply-accumulates (MACs) per token of the whole model, in closed form from the cell and sizes.

Formula, per token (one time step of one sequence), summed over the layers l with input size I_l and
output size H_l:

    linear node with inputs s_1..s_k:   sum_j size(s_j) * H_l     (size(x) = I_l, size(h_*) = H_l)
    elementwise_prod of k inputs:       (k - 1) * H_l             (multiplications)
    blend z*a + (1-z)*b:                2 * H_l
    elementwise_mean of k inputs:       H_l                        (the scaling by 1/k)
    elementwise_sum, identity,
    activations:                        0                          (no multiply-accumulate)
    decoder (tied, last H = emb):       emb * vocab
    embedding lookup:                   0                          (a table read, no arithmetic)

A MAC is one multiplication together with the addition it feeds (the convention of thop/fvcore for
linear layers); bias additions, plain sums and the transcendental activations are not counted. The weight
matmuls, which dominate, equal the number of cell weight-matrix entries, so this proxy is close to
``params`` (like it, it is a size baseline); the elementwise products are what a cell adds beyond its
weights. No data and no weights are used. Higher is better, as for ``params`` (bigger models are better
language models in NAS-Bench-NLP). An op without a ``macs`` entry in :data:`zeronas.cells.ops.OPS` is an error, not a silent 0.
"""

from __future__ import annotations

from zeronas.cells.ops import OPS
from zeronas.cells.recipe import Cell
from zeronas.models.lm import ModelConfig
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


def cell_macs(cell: Cell, n_in: int, n_out: int) -> int:
    """MACs of one step of ``cell`` with input size ``n_in`` and hidden size ``n_out``."""
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


def model_macs(cell: Cell, vocab_size: int, config: ModelConfig) -> int:
    """MACs per token of the whole language model: every layer's cell step plus the decoder."""
    sizes = config.layer_sizes()
    return sum(cell_macs(cell, i, o) for i, o in sizes) + sizes[-1][1] * vocab_size


@proxy("flops", higher_is_better=True, needs_data=False,
       description="multiply-accumulates per token (cell matmuls + elementwise products + decoder), closed form")
def flops(ctx: ScoringContext) -> float:
    return float(model_macs(ctx.cell, ctx.vocab_size, ctx.model_config()))
