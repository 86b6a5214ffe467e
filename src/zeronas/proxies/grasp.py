"""``grasp``: gradient signal preservation, the zero-cost version of Abdelfattah et al. 2021.

Formula (Wang, Zhang & Grosse 2020, "Picking winning tickets before training by preserving gradient flow",
ICLR; summed into a NAS proxy by Abdelfattah et al. 2021, "Zero-cost proxies for lightweight NAS", ICLR)::

    grasp = sum_w -theta_w * (H g)_w  =  -g . (H theta)      g = dL/dtheta,  H = d2L/dtheta2

``L`` is the mean cross-entropy of the language model on the probe batch, ``H`` its Hessian with respect to the
weights and ``g`` its gradient. The two forms are equal because ``H`` is symmetric.

Direction, precisely: Wang et al. score each weight with ``S(-theta) = -theta * Hg`` and *remove* the weights
with the largest scores (keeping the bottom of the ranking: removing those reduces gradient flow the least).
Abdelfattah et al.'s ``grasp`` measure returns the same per-weight ``-theta * Hg`` (their code says they first
dropped the minus sign, because they keep the top of a ranking where GraSP keeps the bottom, then put it back
because accuracy came out negatively correlated without it), sums it over the network, and ranks architectures by
that sum with higher = better, like all their measures. We register exactly that: ``sum -theta * Hg``,
``higher_is_better=True``. Note that this is the opposite of GraSP's own pruning preference (GraSP would rather
keep weights with low scores), so the direction is an empirical convention, not a derivation.

Adaptation to the recurrent language model:
- Weights: the model contract's weight matrices, the same set as :mod:`zeronas.proxies.snip` (every
  recurrent-cell weight matrix and the tied embedding/decoder matrix; no biases).
- Only the sum is a proxy, so we compute ``-g . (H theta)``: ``g`` by one backward pass, and the Hessian-vector
  product ``H theta`` by reverse-over-forward differentiation (a forward pass with dual numbers carrying the
  direction ``theta`` gives ``dL/dtheta . theta``; one backward pass of that gives ``H theta``). Abdelfattah et al.
  get ``Hg`` by double backward (``create_graph=True``); on the default configuration we measured that at about
  1.2-1.7x the time of this route on four of five cells (one small cell: 0.8x) and far more memory (LSTM: 0.9 GB
  extra against 0.2 GB; a 12-node benchmark cell: 1.6 GB against tens of MB), because the backward graph of
  every time step is kept, for the same number. :func:`hessian_vector_product` serves any
  direction; the tests check it against finite differences and double backward.
- ``g`` comes from the fast path (the model's ``fast_backward`` kernels, as ``snip`` and ``grad_norm`` use);
  only ``H theta`` runs with ``fast_backward=False``, because the fast per-sequence weight gradient has no
  forward-mode rule. Cross-entropy is written out as a log-sum-exp (torch's fused one fails in
  reverse-over-forward). Revision 2: revision 1 took ``g`` from the plain-autograd model too; the two gradients
  agree to float32 rounding.
- No temperature (their ``T=1``); the sum is accumulated in float64.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
import torch.autograd.forward_ad as fwAD
from torch.func import functional_call

from zeronas.models.contract import RecurrentLM
from zeronas.proxies._loss import loss_pass
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy

Tensor = torch.Tensor


def _cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean token cross-entropy from elementary ops (log-sum-exp with a constant shift), which support
    reverse-over-forward differentiation."""
    flat = logits.reshape(-1, logits.size(-1))
    shift = flat.detach().max(dim=1, keepdim=True).values
    log_norm = shift + torch.log(torch.exp(flat - shift).sum(dim=1, keepdim=True))
    return (log_norm - flat.gather(1, targets.reshape(-1, 1))).mean()


def hessian_vector_product(model: RecurrentLM, inputs: Tensor, targets: Tensor, names: Sequence[str],
                           vectors: Sequence[Tensor]) -> list[Tensor]:
    """``H v`` for the LM loss's Hessian over the parameters ``names`` (of ``model``) and the direction ``v``
    (one tensor per name), by reverse-over-forward differentiation. The model's cell layers must have
    ``fast_backward=False``. Parameters that do not reach the loss (dead cell nodes) get zeros."""
    params = dict(model.named_parameters())
    primals = [params[n] for n in names]
    with warnings.catch_warnings(), fwAD.dual_level():
        # torch loads its forward-mode decompositions with torch.jit.script on first use, which warns that
        # torch.jit.script is deprecated: torch's own business, not this caller's
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
        values: dict[str, Tensor] = dict(params)
        for name, v in zip(names, vectors):
            values[name] = fwAD.make_dual(params[name], v.detach())
        logits, _ = functional_call(model, values, (inputs,))  # tied weights stay tied
        directional = fwAD.unpack_dual(_cross_entropy(logits, targets)).tangent  # dL/dtheta . v
    hv = torch.autograd.grad(directional, primals, allow_unused=True)
    return [torch.zeros_like(p) if h is None else h for p, h in zip(primals, hv)]


@proxy("grasp", higher_is_better=True, needs_data=True, revision=2,
       description="GraSP as summed by Abdelfattah et al. 2021: sum of -theta * (Hessian @ gradient) "
                   "over the weight matrices (Wang et al. 2020)")
def grasp(ctx: ScoringContext) -> float:
    grads = loss_pass(ctx, for_grasp=True).grads  # g on the fast path, shared with snip, grad_norm and fisher
    model = ctx.model(fast_backward=False)
    named = model.weight_matrices()
    h_theta = hessian_vector_product(model, ctx.inputs, ctx.targets, [n for n, _ in named],
                                     [w.detach() for _, w in named])
    total = torch.zeros((), dtype=torch.float64, device=ctx.device)
    for g, h in zip(grads, h_theta):
        if g is not None:
            total = total - (g.double() * h.double()).sum()
    return total.item()
