"""``hidden_cov``, ``hidden_cov_l2``, ``hidden_cov_l3``: Serianni & Kalita's (ACL 2023) "Layer N Hidden
Covariance" on the probe batch, for layers 1, 2 and 3. Higher is better.

``-sum_v [log(v + k) + 1/(v + k)]``, k = 1e-5, over the eigenvalues ``v`` of the correlation matrix between the
hidden units of layer N, with every (sequence, time step) of the probe batch as an observation of the hidden state
that enters the cell (see :mod:`zeronas.proxies._hidden` for the exact definition and how it matches theirs).
The forward pass is shared by the three layers' proxies through ``ctx.cache``.
"""

from __future__ import annotations

from zeronas.proxies._hidden import REVISION, layer_score
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import ProxyFn, proxy


def _layer_proxy(layer: int) -> ProxyFn:
    name = "hidden_cov" if layer == 1 else f"hidden_cov_l{layer}"

    def score(ctx: ScoringContext) -> float:
        return layer_score(ctx, layer)

    score.__name__ = score.__qualname__ = name
    return proxy(name, higher_is_better=True, needs_data=True, revision=REVISION,
                 description=f"jacob_cov score of the layer-{layer} hidden-unit correlation on the probe batch "
                             "(Serianni & Kalita)")(score)


hidden_cov, hidden_cov_l2, hidden_cov_l3 = (_layer_proxy(layer) for layer in (1, 2, 3))
