"""``gradscore_h0``: GradScore through time: the gradient of the LM loss with respect to the initial state.

Formula: for each probe sequence b, with L_b its summed cross-entropy over the T steps of the probe (real next-token
targets) and h_0 the zero initial state of every carried state of every layer,

    gradscore_h0 = (1/B) sum_b || d L_b / d h_0 ||_2.

GradScore (``gradscore``) measures how strongly the output reacts to the input at each step; what decides whether a
recurrent network can learn long-range structure is whether the loss at later steps still reaches back to the
earliest state: backpropagation through time. Its gradient with respect to h_0 is the sum of those reaching-back
terms over the whole probe. Higher is better (a gradient that survives the horizon), as for GradScore. Sequences do
not interact in eval mode, so one backward pass of the summed loss gives every per-sequence gradient exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("gradscore_h0", higher_is_better=True, needs_data=True,
       description="GradScore through time: mean per-sequence norm of d(LM loss over the probe)/d(initial state of "
                   "every layer)")
def gradscore_h0(ctx: ScoringContext) -> float:
    model = ctx.model(fast_backward=False)  # only the state gradient is needed: plain autograd
    model.requires_grad_(False)
    B = ctx.inputs.shape[1]
    hidden = [tuple(h.requires_grad_(True) for h in layer) for layer in model.init_hidden(B)]
    logits, _ = model(ctx.inputs, hidden)
    loss = F.cross_entropy(logits.reshape(-1, model.vocab_size), ctx.targets.reshape(-1), reduction="sum")
    leaves = [h for layer in hidden for h in layer]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    per_seq = torch.zeros(B, dtype=torch.float64, device=ctx.device)
    for g in grads:
        if g is not None:  # a carried state that never reaches the output has an exactly zero gradient
            per_seq += g.double().pow(2).sum(dim=1)
    return float(per_seq.sqrt().mean())
