"""The empirical NTK shared by ``ntk_cond`` and ``ntk_trace`` (computed once per context, kept in ``ctx.cache``).

``Theta = J J^T`` (float64) on the first ``config.ntk_batch`` probe sequences, where row ``i`` of ``J`` is the
gradient of sample ``i``'s summed decoder logits (over every time step and vocabulary entry, as TE-NAS backpropagates
ones from the network output) with respect to every recurrent-cell parameter, weights and biases
(``model.recurrent_parameters()``).

Why these choices:
- Output = summed logits: TE-NAS's choice (``logit.backward(ones)``). For a tied decoder this is the last hidden
  layer read out through the column sums of the embedding matrix, plus a constant.
- Parameters = the cells only: the architecture lives in the cells. The tied embedding/decoder matrix would add
  ``V * <sum_t h_t(i), sum_t h_t(j)>`` (every one of the V = 10,000 decoder rows gets the same gradient), a term that
  would swamp the cell part. TE-NAS takes the parameters named ``weight``; we keep the cell biases too (they are
  part of the cell's tangent kernel).
- Samples are independent sequences (eval mode, no dropout, zero initial state), so a per-sample gradient is the
  gradient of one sequence run alone.

Two ways to get ``J`` (equal up to float rounding; tested): a loop of per-sample backward passes using the cell's
fast per-sequence weight gradient (``jacobian_loop``), and ``torch.func`` ``vmap(grad)`` over the batch
(``jacobian_func``, which needs ``fast_backward=False``). The proxies use the loop: it is faster at the default config
on the CPU (one thread, best of 3, 8 samples: LSTM 0.61 s vs 3.2 s, GRU 0.62 s vs 0.79 s; one LM forward+backward
on the probe batch takes 0.25 s), because ``vmap`` materialises a per-sample weight gradient at every time step
while the loop forms each weight gradient once per sequence.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from zeronas.models.contract import RecurrentLM
from zeronas.proxies.context import ScoringContext

Tensor = torch.Tensor
# per-sample gradients: one (m, *param.shape) tensor per cell parameter, in model.recurrent_parameters() order
PerSampleGrads = list[Tensor]


def _summed_logits(model: RecurrentLM, emb: Tensor) -> Tensor:
    """Sum of the decoder logits over every position and vocabulary entry (``emb`` is ``(T, B, E)``).

    Computed as ``sum_t h_t . sum_v W_v + T B sum_v b_v`` (the same sum, reordered; eval mode has no dropout), which
    skips the ``(T, V)`` logits: a quarter of the per-sample cost at the default config."""
    out, _ = model.run_layers(emb)
    weight, bias = model.decoder.weight, model.decoder.bias
    total = out.sum(dim=(0, 1)) @ weight.sum(0)
    return total if bias is None else total + out.shape[0] * out.shape[1] * bias.sum()


def _sequence_loss(model: RecurrentLM, emb: Tensor, targets: Tensor) -> Tensor:
    """The LM loss of one sequence: cross-entropy summed over its steps (``emb`` ``(T, 1, E)``, ``targets`` ``(T, 1)``)."""
    out, _ = model.run_layers(emb)
    logits = model.decode(out)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")


def jacobian_loop(model: RecurrentLM, emb: Tensor, targets: Tensor | None = None) -> PerSampleGrads:
    """Per-sample gradients by one forward and backward pass per sequence (``emb`` is ``(T, m, E)``): of the summed
    logits, or with ``targets`` ``(T, m)`` of each sequence's LM loss."""
    params = [p for _, p in model.recurrent_parameters()]
    rows: list[list[Tensor]] = [[] for _ in params]
    with ExitStack() as stack:
        for layer in model.layers:  # a cell layer stacks its weights once for all the sequences
            if hasattr(layer, "prepared"):
                stack.enter_context(layer.prepared())
        for b in range(emb.shape[1]):
            if targets is None:
                total = _summed_logits(model, emb[:, b:b + 1])
            else:
                total = _sequence_loss(model, emb[:, b:b + 1], targets[:, b:b + 1])
            # retain_graph: the stacked weights' part of the graph serves the next sequence too
            grads = torch.autograd.grad(total, params, allow_unused=True, retain_graph=True)
            for slot, (g, p) in enumerate(zip(grads, params)):
                rows[slot].append(torch.zeros_like(p) if g is None else g)
    return [torch.stack(r) for r in rows]


class _OneSequence(nn.Module):
    """``emb (T, E) -> summed logits`` with the model as a submodule, so that functional_call can swap its
    cell parameters (named ``model.<name>``)."""

    def __init__(self, model: RecurrentLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, emb: Tensor) -> Tensor:
        return _summed_logits(self.model, emb.unsqueeze(1))


def jacobian_func(model: RecurrentLM, emb: Tensor) -> PerSampleGrads:
    """Per-sample gradients with ``torch.func``: ``vmap(grad(summed logits))`` over the batch dimension.
    The model's layers must have ``fast_backward=False``."""
    if any(getattr(layer, "fast_backward", False) for layer in model.layers):
        raise ValueError("torch.func needs a model built with fast_backward=False")
    wrapper = _OneSequence(model)
    names = [f"model.{n}" for n, _ in model.recurrent_parameters()]
    params = {n: p.detach() for n, (_, p) in zip(names, model.recurrent_parameters())}

    def one(p: dict[str, Tensor], e: Tensor) -> Tensor:
        return functional_call(wrapper, p, (e,), strict=False)

    grads = vmap(grad(one), in_dims=(None, 1))(params, emb.detach())
    return [grads[n] for n in names]


def ntk_from_grads(grads: PerSampleGrads) -> Tensor:
    """``Theta = J J^T`` accumulated parameter by parameter in float64 (no full ``J`` copy in float64)."""
    m = grads[0].shape[0]
    theta = torch.zeros(m, m, dtype=torch.float64, device=grads[0].device)
    for g in grads:
        flat = g.reshape(m, -1).double()
        theta += flat @ flat.T
    return theta


JacobianFn = Callable[[RecurrentLM, Tensor], PerSampleGrads]
METHODS: dict[str, tuple[JacobianFn, bool]] = {  # name -> (function, fast_backward)
    "loop": (jacobian_loop, True),
    "func": (jacobian_func, False),
}


def empirical_ntk(ctx: ScoringContext, method: str = "loop") -> Tensor:
    """Theta ``(m, m)`` float64 for the first ``ntk_batch`` probe sequences, cached in ``ctx.cache``."""
    m = _ntk_size(ctx)
    key = f"ntk/theta/summed-logits/cell-params/m={m}/{method}"
    if key not in ctx.cache:
        fn, fast = METHODS[method]
        model = ctx.read_only_model(fast_backward=fast)  # autograd.grad leaves the weights as they are
        ctx.cache[key] = ntk_from_grads(fn(model, _embedded(model, ctx, m)))
    return ctx.cache[key]


def _ntk_size(ctx: ScoringContext) -> int:
    """The kernel's size: the first ``ntk_batch`` probe sequences (fewer if the probe batch is smaller)."""
    m = min(ctx.config.ntk_batch, ctx.inputs.shape[1])
    if m < 1:
        raise ValueError("ntk_batch must be at least 1")
    return m


def _embedded(model: RecurrentLM, ctx: ScoringContext, m: int) -> Tensor:
    with torch.no_grad():
        return model.embed(ctx.inputs[:, :m])


def loss_ntk(ctx: ScoringContext) -> Tensor:
    """The empirical NTK of the LM loss instead of the summed logits: row ``i`` of ``J`` is the gradient of sequence
    ``i``'s cross-entropy against its real next tokens (summed over its steps) with respect to every cell parameter.
    The kernel of what training actually descends, rather than of an output that no loss reads; cached."""
    m = _ntk_size(ctx)
    key = f"ntk/theta/lm-loss/cell-params/m={m}"
    if key not in ctx.cache:
        model = ctx.model(fast_backward=True)
        ctx.cache[key] = ntk_from_grads(jacobian_loop(model, _embedded(model, ctx, m), ctx.targets[:, :m]))
    return ctx.cache[key]
