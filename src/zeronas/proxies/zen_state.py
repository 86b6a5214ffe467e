"""``zen_state``: Zen-score with the perturbation placed on the carried state instead of the input (an RNN variant).

Formula: with x the embedding of the real probe tokens ``(T, B, E)``, h_0 the zero initial state of every layer and
eps ~ N(0, I) over every carried state of every layer, f the last layer's outputs over the whole sequence,

    zen_state = log E_eps || f(x, h_0) - f(x, h_0 + alpha * eps) ||_F      (alpha = config.zen_alpha)

averaged over the probe sequences and ``config.zen_repeats`` seeded draws. Zen-score asks how strongly a network
expands a small change of its input; for a recurrent network the quantity that carries information through time
is the state, so this asks how much of a small change of the starting state is still visible in the outputs over
the sequence: memory rather than input expressivity. Higher is better (as for ``zen``). Float64, no gradients,
the NAS-Bench-NLP initialisation (see :mod:`zeronas.proxies.zen` for why not N(0, 1) weights).
"""

from __future__ import annotations

import torch

from zeronas.proxies._zen import zen_score
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy

_SEED_OFFSET = 0x25E  # this proxy's own stream of draws


@proxy("zen_state", higher_is_better=True, needs_data=True,
       description="Zen-score variant: log E||f(x, h0) - f(x, h0 + alpha*eps)||_F, the perturbation on the initial "
                   "carried state of every layer, x = real probe text, f = last-layer outputs")
def zen_state(ctx: ScoringContext) -> float:
    B = ctx.inputs.shape[1]

    def differences(model, c):
        emb = model.embed(ctx.inputs)
        both = torch.cat([emb, emb], dim=1)  # one pass over 2B sequences: clean, then perturbed
        for r in range(c.zen_repeats):
            hidden = []
            for i, layer in enumerate(model.layers):
                sizes = layer.state_sizes
                eps = ctx.randn(len(sizes), B, max(sizes), offset=_SEED_OFFSET + 16 * r + i, dtype=torch.float64)
                hidden.append(tuple(torch.cat([torch.zeros_like(e[:, :n]), c.zen_alpha * e[:, :n]], dim=0)
                                    for e, n in zip(eps, sizes)))
            out, _ = model.run_layers(both, hidden)
            yield out[:, :B] - out[:, B:]

    return zen_score(ctx, differences)
