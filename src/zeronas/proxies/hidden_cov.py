"""``hidden_cov``: Serianni & Kalita's (ACL 2023) "Layer 1 Hidden Covariance" on the probe batch. Higher is better.

``-sum_v [log(v + k) + 1/(v + k)]``, k = 1e-5, over the eigenvalues ``v`` of the correlation matrix between the
hidden units of layer 1, with every (sequence, time step) of the probe batch as an observation of the hidden state
that enters the cell (see :mod:`zeronas.proxies._hidden` for the exact definition and how it matches theirs).
The forward pass is shared with the other layers' variants through ``ctx.cache``.
"""

from __future__ import annotations

from zeronas.proxies._hidden import REVISION, layer_score
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("hidden_cov", higher_is_better=True, needs_data=True, revision=REVISION,
       description="jacob_cov score of the layer-1 hidden-unit correlation on the probe batch (Serianni & Kalita)")
def hidden_cov(ctx: ScoringContext) -> float:
    return layer_score(ctx, 1)
