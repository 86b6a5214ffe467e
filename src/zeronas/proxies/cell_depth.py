"""``cell_depth``: the number of ops on the longest path through one step of the cell.

Formula: a cell input (``x``, ``h_prev_i``) has depth 0; a node has depth ``1 + max(depth of its inputs)``; the
score is the largest depth of the outputs ``h_new_i``. Every op counts 1 (``linear``, gates, sums and
activations alike). The recipe alone is read: no model, weights or data.

Why: the gradient through time crosses the cell once per step, so a deep cell makes the unrolled network deeper
still, with more factors that can vanish or explode: a source of instability risk. The direction (lower is
better) is chosen a priori, not fitted. It is a trivial structural baseline, like ``params``: a trainability
heuristic that cannot beat the depth of the graph has not shown that it measures anything beyond the
architecture's shape.
"""

from __future__ import annotations

from zeronas.proxies._structure import depth
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("cell_depth", requires=("recipe",), higher_is_better=False, needs_data=False,
       description="ops on the longest input-to-output path of the cell (structural baseline, lower is better)")
def cell_depth(ctx: ScoringContext) -> float:
    return float(depth(ctx.cell))
