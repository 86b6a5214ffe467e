"""``grad_norm``: the norm of the weight gradient of the LM loss (Abdelfattah et al. 2021, "Zero-Cost Proxies
for Lightweight NAS").

Formula: with L the mean cross-entropy of the probe batch and W the set of weight matrices,

    grad_norm = sqrt( sum_{w in W} || dL / dw ||_F^2 ).

Higher is better (as in the reference: a larger gradient at initialisation, a network that starts learning
faster).

Adaptation choices for RNN language models:
- W is the model contract's weight matrices (:meth:`~zeronas.models.contract.RecurrentLM.weight_matrices`, the
  same set as ``snip``, ``grasp`` and ``synflow``): the cells' per-node, per-input matrices
  (``layers.<l>.linears.<node>.weight_<i>``) and the tied embedding/decoder matrix (``encoder.weight``,
  counted once, its gradient gathering both uses). Biases are left out, as the reference scores only the
  ``weight`` of each layer.
- One global norm rather than the reference's sum of per-layer norms: our cells store one matrix per
  node and input, so a sum of per-tensor norms would depend on how a cell's weights happen to be split
  (an LSTM written with four gate nodes would score differently from the same LSTM with one fused
  matrix); the global norm does not.
"""

from __future__ import annotations

from zeronas.proxies._loss import loss_pass
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("grad_norm", higher_is_better=True, needs_data=True,
       description="global L2 norm of the LM-loss gradient over all weight matrices (no biases), probe batch")
def grad_norm(ctx: ScoringContext) -> float:
    return float(loss_pass(ctx).grad_norm_squared.sqrt())  # the gradient shared with snip, grasp and fisher
