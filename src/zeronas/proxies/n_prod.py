"""``n_prod``: the number of ``elementwise_prod`` nodes of the cell.

Formula: ``#{nodes with op == "elementwise_prod"}`` (a node counts once, whatever its number of inputs). The
recipe alone is read: no model, weights or data.

Why: a product multiplies the scales of its inputs, so magnitudes (and the gradients through them) can shrink
or blow up multiplicatively from step to step, a source of instability risk. The direction (lower is better) is
chosen a priori, not fitted. It is a trivial structural baseline, like ``params``: a trainability heuristic that
cannot beat a count of one op type has not shown that it measures anything beyond the architecture's shape.
"""

from __future__ import annotations

from zeronas.proxies._structure import count_op
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("n_prod", requires=("recipe",), higher_is_better=False, needs_data=False,
       description="number of elementwise_prod nodes in the cell (structural baseline, lower is better)")
def n_prod(ctx: ScoringContext) -> float:
    return float(count_op(ctx.cell, "elementwise_prod"))
