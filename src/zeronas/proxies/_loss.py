"""One forward and backward pass of the LM loss on the probe batch, shared by the proxies that read it.

``snip``, ``grad_norm`` and ``grasp`` read the gradient of the mean cross-entropy with respect to the model
contract's weight matrices, on the fast path; ``fisher`` reads, through tensor hooks, ``a * dL/da`` at every
activation of that same pass. Each used to run the pass itself: now the first to ask runs it once per context and
the others read it from ``ctx.cache``. The values are those of separate passes, bit for bit: the same forward
and backward computations, with more gradients asked of the same backward pass (asking for a leaf's gradient adds
work for that leaf only).

For a user's model, ``fisher``'s pass (with an observer, which can make an adapted ``nn.LSTM`` run step by step
instead of fused) is not shared with the others.

Memory: the weight gradients are as large as the weights. They are kept in the cache only while ``grasp`` (which
needs them whole) may still run (see :attr:`~zeronas.proxies.context.ScoringContext.upcoming`); ``snip`` and
``grad_norm`` keep only their sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from zeronas.proxies.context import ScoringContext

Tensor = torch.Tensor
_KEY = "loss/pass"
_FISHER_KEY = "loss/fisher-units"


@dataclass
class LossPass:
    """What the proxies read of one pass: the sums of ``snip`` and ``grad_norm`` (float64) and, while ``grasp``
    may still need them, the weight gradients in ``weight_matrices()`` order (None for a weight that does not
    reach the loss)."""

    snip: Tensor
    grad_norm_squared: Tensor
    grads: Optional[tuple[Optional[Tensor], ...]]


def loss_pass(ctx: ScoringContext, *, for_grasp: bool = False) -> LossPass:
    """The shared pass, run now if no earlier proxy ran it (or, for ``grasp``, if the gradients were dropped)."""
    cached: Optional[LossPass] = ctx.cache.get(_KEY)
    if cached is None or (for_grasp and cached.grads is None):
        with_fisher = not ctx.user_model and ctx.might_run("fisher") and _FISHER_KEY not in ctx.cache
        cached = _run_pass(ctx, with_fisher)
    _store(ctx, cached)
    return cached


def _store(ctx: ScoringContext, result: LossPass) -> None:
    """Cache ``result``, without the gradients unless ``grasp`` may still run."""
    if result.grads is not None and not ctx.might_run("grasp"):
        result = LossPass(result.snip, result.grad_norm_squared, None)
    ctx.cache[_KEY] = result


def fisher_units(ctx: ScoringContext) -> dict[str, Tensor]:
    """Per activation node (``"layer.node"``): ``sum_t a * dL/da`` per (sequence, unit), float64, from the
    shared pass (a recipe) or from a pass of its own (a user's model)."""
    if _FISHER_KEY not in ctx.cache:
        if ctx.user_model:
            ctx.cache[_FISHER_KEY] = _fisher_only(ctx)
        else:
            _run_pass(ctx, True)
    return ctx.cache.pop(_FISHER_KEY)


def _hooked(ctx: ScoringContext, model, per_unit: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
    """The loss from a zero initial state that requires grad (so that every activation, even one at step 0 that
    reads only the initial state, is on the autograd graph and its hook fires), with a hook on every activation
    that accumulates ``a * dL/da`` over time into ``per_unit``. Returns the loss and the initial states."""

    def observe(name: str, op: str, pre: Tensor, out: Tensor) -> None:
        if not out.requires_grad:
            return
        act = out.detach()

        def hook(grad: Tensor, _name: str = name, _act: Tensor = act) -> None:
            contribution = _act.double() * grad.double()
            prev = per_unit.get(_name)
            per_unit[_name] = contribution if prev is None else prev + contribution

        out.register_hook(hook)

    hidden = [tuple(h.requires_grad_() for h in layer) for layer in model.init_hidden(ctx.inputs.size(1))]
    out, _ = model.run_layers(model.embed(ctx.inputs), hidden, observer=observe)
    logits = model.decode(out)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ctx.targets.reshape(-1))
    return loss, [h for layer in hidden for h in layer]


def _fisher_only(ctx: ScoringContext) -> dict[str, Tensor]:
    model = ctx.read_only_model()  # autograd.grad leaves the weights as they are
    per_unit: dict[str, Tensor] = {}
    loss, initial = _hooked(ctx, model, per_unit)
    # the gradients of the leaves are not needed: asking for them runs the backward pass that fires the hooks
    torch.autograd.grad(loss, initial + [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    return per_unit


def _run_pass(ctx: ScoringContext, with_fisher: bool) -> LossPass:
    """One pass: the weight gradients (and with ``with_fisher`` the hooks' sums, put in the cache)."""
    model = ctx.read_only_model()  # autograd.grad leaves the weights as they are
    weights = [p for _, p in model.weight_matrices()]
    if with_fisher:
        per_unit: dict[str, Tensor] = {}
        loss, initial = _hooked(ctx, model, per_unit)
        others = [p for p in model.parameters() if p.requires_grad and all(p is not w for w in weights)]
        grads = torch.autograd.grad(loss, weights + initial + others, allow_unused=True)[:len(weights)]
        ctx.cache[_FISHER_KEY] = per_unit
    else:
        loss, _ = model.loss(ctx.inputs, ctx.targets)
        # allow_unused: a cell can hold weights that never reach the output (e.g. a state that only feeds itself);
        # their gradient is zero and so is their saliency
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    snip = torch.zeros((), dtype=torch.float64, device=ctx.device)
    norm = torch.zeros((), dtype=torch.float64)
    for w, g in zip(weights, grads):
        if g is not None:
            snip = snip + (w.detach() * g).abs().sum(dtype=torch.float64)
            norm = norm + g.double().pow(2).sum()
    result = LossPass(snip, norm, tuple(grads))
    _store(ctx, result)
    return result
