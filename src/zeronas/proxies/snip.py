"""``snip``: connection sensitivity, the first-order loss change from removing each weight.

Formula (Lee et al. 2019, "SNIP: single-shot network pruning based on connection sensitivity", ICLR; used as a
zero-cost NAS proxy by Abdelfattah et al. 2021, "Zero-cost proxies for lightweight NAS", ICLR)::

    snip = sum_w |theta_w * dL/dtheta_w|

with ``L`` the mean cross-entropy of the language model on the probe batch (``ctx.inputs``/``ctx.targets``).
``theta * dL/dtheta`` is the gradient of ``L`` with respect to a multiplicative mask of ones on the weight
(Lee et al.'s ``c``), which is how Abdelfattah et al. compute it. Higher is better.

Adaptation to the recurrent language model:
- The weights are the weight matrices, as Abdelfattah et al. take the weights (not biases) of every conv and
  linear layer: every recurrent-cell matrix (``layers.<l>.linears.<node>.weight_<i>``, the x and h_prev
  projections of every linear node) and the tied embedding/decoder matrix (the decoder is a linear layer; with
  tying its gradient also collects the embedding's share). Biases are left out. The set is the model contract's
  :meth:`~zeronas.models.contract.RecurrentLM.weight_matrices`, shared with ``grad_norm``, ``grasp`` and
  ``synflow``. Revision 2: summed in that order (embedding first), where revision 1 summed the cells first; the
  values differ in the last bits only.
- One probe batch, whole sequences, zero initial state; ``|.|`` is taken per weight after the gradient has
  been summed over time steps (a weight is shared by every step, like a convolution kernel over positions).
- The sum is accumulated in float64.
"""

from __future__ import annotations

from zeronas.proxies._loss import loss_pass
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("snip", higher_is_better=True, needs_data=True, revision=2,
       description="SNIP connection sensitivity: sum |theta * dL/dtheta| over the weight matrices (Lee et al. 2019)")
def snip(ctx: ScoringContext) -> float:
    return loss_pass(ctx).snip.item()  # the LM loss's weight gradient, shared (see zeronas.proxies._loss)
