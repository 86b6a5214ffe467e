"""``zen_real``: Zen-score on real text: x is the embedding of the probe tokens, not Gaussian noise (an RNN variant).

Formula: ``log E_eps || f(x) - f(x + alpha * eps) ||_F`` with x the embedding output of the real probe batch
``(T, B, E)``, eps ~ N(0, I) of the same shape, alpha = ``config.zen_alpha``, f the last layer's outputs over the
whole sequence; the mean over the probe sequences and ``config.zen_repeats`` draws, float64. Zen-NAS draws x from
N(0, I) because an image network's input statistics are set by normalisation; a language model's input is an
embedding row of scale 0.1 (U(-0.1, 0.1)), so Gaussian inputs put a recurrent cell at a working point ten times
further out than any real input, where tanh and sigmoid gates saturate. Higher is better (as for ``zen``).
"""

from __future__ import annotations

import torch

from zeronas.proxies._zen import zen_score
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy

_SEED_OFFSET = 0x2E5  # this proxy's own stream of draws


@proxy("zen_real", higher_is_better=True, needs_data=True,
       description="Zen-score variant: log E||f(x) - f(x + alpha*eps)||_F with x = embedding of the real probe "
                   "text (not Gaussian), eps ~ N(0, I), f = last-layer outputs")
def zen_real(ctx: ScoringContext) -> float:
    def differences(model, c):
        x = model.embed(ctx.inputs)
        B = x.shape[1]
        for r in range(c.zen_repeats):
            eps = ctx.randn(*x.shape, offset=_SEED_OFFSET + r, dtype=torch.float64)
            out, _ = model.run_layers(torch.cat([x, x + c.zen_alpha * eps], dim=1))
            yield out[:, :B] - out[:, B:]

    return zen_score(ctx, differences)
