"""``ntk_cond_loss``: TE-NAS's NTK condition number, with the kernel of the LM loss instead of the summed logits.

    kappa = lambda_max(Theta) / lambda_min(Theta),   Theta = J J^T,   J_i = d(LM loss of sequence i) / d(cell params)

on the first ``ntk_batch`` probe sequences with their real next-token targets (see
:func:`zeronas.proxies._ntk.loss_ntk`). TE-NAS backpropagates ones from the logits of an image classifier; for a
language model the summed logits are, through the tied decoder, one fixed projection of the last hidden layer, which
no loss reads. The kernel of the cross-entropy is the one gradient descent follows. Lower is better, as for
``ntk_cond``; a numerically singular kernel is ``inf`` and an undefined one NaN, by the same rule.
"""

from __future__ import annotations

from zeronas.proxies._ntk import loss_ntk
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.ntk_cond import condition_number
from zeronas.proxies.registry import proxy


@proxy("ntk_cond_loss", higher_is_better=False, needs_data=True,
       description="NTK condition number (TE-NAS) of the LM loss of each probe sequence w.r.t. the cell weights")
def ntk_cond_loss(ctx: ScoringContext) -> float:
    return condition_number(loss_ntk(ctx))
