"""``fisher``: the Fisher pruning signal of every activation unit, summed over the cell.

Formula (Theis et al. 2018, "Faster gaze prediction with dense networks and Fisher pruning"; Turner et al. 2020,
"BlockSwap"; summed into a NAS proxy by Abdelfattah et al. 2021, "Zero-cost proxies for lightweight NAS")::

    fisher = sum_{layer, node, unit k}  1/(2N) sum_n ( sum_t a_{t,n,k} * dL/da_{t,n,k} )^2

A unit ``k`` is put behind a multiplicative mask ``m_k`` shared by every position of a sequence; the inner sum is
``dL/dm_k`` for sequence ``n``, and half its mean square over the ``N`` sequences estimates the loss increase of
removing the unit. ``L`` is the mean cross-entropy on the probe batch. Higher is better. Non-negative.

Adaptation to the recurrent language model:
- Units: every output unit of every activation node (tanh, sigmoid, leaky ReLU) of every layer's cell, seen
  through the model's ``observer`` hook at each time step. These are the cell's nonlinear features, the analogue
  of the feature maps that Theis et al. prune. (Abdelfattah et al. hook the outputs of conv/linear layers, i.e.
  pre-activations; a cell's linear nodes are often shared by several gates, so their activations are the more
  natural unit here.) Cells without an activation node (19 of the 4,322 NAS-Bench-NLP cells) score 0.
- Time plays the role of the spatial positions of a feature map: ``a * dL/da`` is summed over the steps of one
  sequence, then squared. The gradient at step ``t`` is the total one, including the path through later steps
  (masking a unit at step ``t`` also changes what the cell carries forward), which is what a tensor hook on the
  step's output receives.
- Abdelfattah et al. broadcast each channel's value over the channel's incoming weights before summing (so a
  channel counts fan-in times); we sum per unit, as in Theis et al. (for a fixed configuration the fan-ins of a
  cell's units are all the same layer width, so this only changes the weighting between layers).
- Products and sums in float64.
- The pass is the one ``snip``, ``grad_norm`` and ``grasp`` read (see :mod:`zeronas.proxies._loss`): for a
  recipe the hooks ride on their backward pass.
"""

from __future__ import annotations

import torch

from zeronas.proxies._loss import fisher_units
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("fisher", requires=("activations",), higher_is_better=True, needs_data=True,
       description="Fisher pruning signal: sum over activation units of mean-square (sum_t a * dL/da) / 2 "
                   "(Theis et al. 2018)")
def fisher(ctx: ScoringContext) -> float:
    per_unit = fisher_units(ctx)  # filled by tensor hooks in the (shared) backward pass of the LM loss
    total = torch.zeros((), dtype=torch.float64, device=ctx.device)
    for name in sorted(per_unit):
        total = total + per_unit[name].pow(2).mean(0).mul(0.5).sum()
    return total.item()
