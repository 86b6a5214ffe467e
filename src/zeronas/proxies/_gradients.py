"""The LM-loss gradient of every weight matrix on the probe batch, shared by ``snip`` and ``grad_norm``."""

from __future__ import annotations

import torch

from zeronas.proxies.context import ScoringContext

Tensor = torch.Tensor


def weight_gradients(ctx: ScoringContext) -> tuple[list[Tensor], tuple[Tensor | None, ...]]:
    """The model's weight matrices (no biases) and the gradient of the probe batch's LM loss with respect to each.
    A weight that never reaches the output (e.g. a state that only feeds itself) gets None: its gradient is
    zero (``allow_unused``)."""
    model = ctx.model()
    weights = [p for _, p in model.weight_matrices()]
    loss, _ = model.loss(ctx.inputs, ctx.targets)
    return weights, torch.autograd.grad(loss, weights, allow_unused=True)
