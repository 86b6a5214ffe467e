"""``gradscore``: the mean per-sample norm of the input gradient, E_x ||d f(x) / d x||_F.

Formula: for each sequence b of the probe batch, with x_b its embedding-level input ``(T, E)`` (the embedding
output of the real probe tokens) and f(x_b) = sum over steps and units of the last layer's hidden outputs,

    gradscore = (1/B) sum_b || d f(x_b) / d x_b ||_F.

A large input gradient means that the untrained network carries its input through the recurrence (through
time and the layer stack) instead of saturating or forgetting it. Higher is better.

Adaptation choices for RNN language models:
- Token ids cannot be differentiated, so x is the embedding output (``model.embed(ctx.inputs)``), and the
  gradient is taken with ``model.run_layers`` on it.
- f is the sum of the last layer's hidden outputs, not the LM loss: it measures the recurrent network
  itself, with no dependence on the targets or on the (cell-independent) tied decoder, and it is the
  output used by ``zen`` and ``jacob_cov`` too.
- Sequences never interact in the model (eval mode, no batch statistics), so one backward pass of the
  summed output gives every per-sample gradient exactly. The gradient is cached in ``ctx.cache`` and
  shared with ``jacob_cov`` (Mellor et al. 2021 use the same per-sample input Jacobian).
- A cell whose output does not depend on its input at all (the recurrence ignores ``x``) has an exactly
  zero input gradient: gradscore 0, the lowest score possible, not an error.
"""

from __future__ import annotations

import torch

from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy

Tensor = torch.Tensor

INPUT_GRAD_KEY = "input_grad:sum_last_hidden"


def per_sample_input_gradient(ctx: ScoringContext) -> Tensor:
    """``(B, T*E)``: row b is d(sum of the last layer's outputs of sequence b) / d(embedding of sequence b).

    Computed once per context (weights frozen, so no weight gradient is formed) and cached.
    """
    cached = ctx.cache.get(INPUT_GRAD_KEY)
    if cached is not None:
        return cached
    model = ctx.model(fast_backward=False)  # only the input gradient is needed: plain autograd
    model.requires_grad_(False)
    with torch.no_grad():
        emb = model.embed(ctx.inputs)
    emb = emb.detach().requires_grad_(True)
    out, _ = model.run_layers(emb)
    if out.requires_grad:
        (grad,) = torch.autograd.grad(out.sum(), emb)
    else:  # no path from the input to the last layer's output: the gradient is exactly zero
        grad = torch.zeros_like(emb)
    rows = grad.detach().transpose(0, 1).reshape(grad.shape[1], -1)  # (T, B, E) -> (B, T*E)
    ctx.cache[INPUT_GRAD_KEY] = rows
    return rows


@proxy("gradscore", higher_is_better=True, needs_data=True,
       description="mean per-sample Frobenius norm of d(sum of last-layer hidden outputs)/d(embedding input), "
                   "probe batch")
def gradscore(ctx: ScoringContext) -> float:
    rows = per_sample_input_gradient(ctx).double()
    return float(torch.linalg.vector_norm(rows, dim=1).mean())
