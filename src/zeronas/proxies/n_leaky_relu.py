"""``n_leaky_relu``: the number of ``activation_leaky_relu`` nodes of the cell.

Formula: ``#{nodes with op == "activation_leaky_relu"}``. The recipe alone is read: no model, weights or data.

Why: a leaky ReLU is the only unbounded activation of NAS-Bench-NLP's op set (``activation_relu`` and
``identity`` come only from the ENAS and DARTS spaces); on a recurrent path nothing squashes it, so the hidden
state and the gradients can grow without limit over the time steps: a source of instability risk. The direction
(lower is better) is chosen a priori, not fitted. It is a trivial structural baseline, like ``params``: a
trainability heuristic that cannot beat a count of one op type has not shown that it measures anything beyond the
architecture's shape.
"""

from __future__ import annotations

from zeronas.proxies._structure import count_op
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("n_leaky_relu", requires=("recipe",), higher_is_better=False, needs_data=False,
       description="number of activation_leaky_relu nodes in the cell (structural baseline, lower is better)")
def n_leaky_relu(ctx: ScoringContext) -> float:
    return float(count_op(ctx.cell, "activation_leaky_relu"))
