"""``ntk_trace_loss``: M_Trace = sqrt(tr(Theta) / m) of the LM-loss NTK (see ``ntk_cond_loss``).

The trace is the mean squared norm of the per-sequence loss gradient with respect to the cell parameters: how hard
the first steps of training will push the cell. Registered higher-is-better, as the literature's ``ntk_trace``.
"""

from __future__ import annotations

from zeronas.proxies._ntk import loss_ntk
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.ntk_trace import m_trace
from zeronas.proxies.registry import proxy


@proxy("ntk_trace_loss", higher_is_better=True, needs_data=True,
       description="sqrt(trace(NTK)/m) of the LM-loss NTK of the cell weights (M_Trace of the loss)")
def ntk_trace_loss(ctx: ScoringContext) -> float:
    return m_trace(loss_ntk(ctx))
