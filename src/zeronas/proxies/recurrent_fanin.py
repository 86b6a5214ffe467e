"""``recurrent_fanin``: the number of edges of the cell that read a carried state.

Formula: over all nodes, the number of input slots that name some ``h_prev_i``; a repeated input counts each
time (``linear(h_prev_0, h_prev_0)`` counts 2). The recipe alone is read: no model, weights or data.

Why: each such edge is a path by which the previous state re-enters the step, and so one more term in the
product of Jacobians through time that can make the state or the gradient explode: a source of instability
risk. The direction (lower is better) is chosen a priori, not fitted. It is a trivial structural baseline, like
``params``: a trainability heuristic that cannot beat a count of recurrent edges has not shown that it measures
anything beyond the architecture's shape.
"""

from __future__ import annotations

from zeronas.proxies._structure import recurrent_fanin as count_recurrent_edges
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("recurrent_fanin", requires=("recipe",), higher_is_better=False, needs_data=False,
       description="input slots reading some h_prev_i, with multiplicity (structural baseline, lower is better)")
def recurrent_fanin(ctx: ScoringContext) -> float:
    return float(count_recurrent_edges(ctx.cell))
