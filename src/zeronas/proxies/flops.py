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

Any model: the count is the model's own (:meth:`~zeronas.models.contract.RecurrentLM.macs_per_token`). An adapted
``nn.LSTM``/``GRU``/``RNN`` steps exactly its reference cell, so it is counted by the same formula; a model whose
MACs are not known (an opaque ``nn.Module`` cell without ``macs_per_step``) gets ``unsupported``.
"""

from __future__ import annotations

from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import Unsupported, proxy


@proxy("flops", higher_is_better=True, needs_data=False,
       description="multiply-accumulates per token (cell matmuls + elementwise products + decoder), closed form")
def flops(ctx: ScoringContext) -> float:
    macs = ctx.macs_per_token()
    if macs is None:
        raise Unsupported("the model's multiply-accumulates are not known (an opaque cell without macs_per_step)")
    return float(macs)
