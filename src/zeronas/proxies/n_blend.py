"""``n_blend``: the number of ``blend`` nodes of the cell.

Formula: ``#{nodes with op == "blend"}``, where ``blend(z, a, b) = z*a + (1-z)*b``. The recipe alone is read:
no model, weights or data.

Why: a blend multiplies two signals by ``z`` and ``1 - z``; nothing in the cell language keeps ``z`` in
[0, 1] (it is any node, not necessarily a sigmoid gate), so a blend can amplify as well as mix, and when ``a`` or
``b`` is a carried state it feeds that state back scaled by a data-dependent factor at every step: a source of
instability risk. The direction (lower is better) is chosen a priori, not fitted. It is a trivial structural
baseline, like ``params``: a trainability heuristic that cannot beat a count of one op type has not shown that it
measures anything beyond the architecture's shape.
"""

from __future__ import annotations

from zeronas.proxies._structure import count_op
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("n_blend", requires=("recipe",), higher_is_better=False, needs_data=False,
       description="number of blend nodes in the cell (structural baseline, lower is better)")
def n_blend(ctx: ScoringContext) -> float:
    return float(count_op(ctx.cell, "blend"))
