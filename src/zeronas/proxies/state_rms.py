"""``state_rms``: the scale of layer 1's output on the probe batch at initialisation. Lower is better.

``sqrt(mean(h^2))`` over every unit, step and sequence of layer 1's outputs from the zero state (the forward pass
``hidden_cov`` uses, shared through ``ctx.cache``). At NAS-Bench-NLP's initialisation (every cell weight and bias
U(-1/sqrt(H), 1/sqrt(H))) a gated output (a sigmoid near 1/2 times a tanh of a small input) is small: the LSTM's is
0.015, the GRU's 0.030, the development split's median 0.19. Among the cells whose state passes ``hidden_rank``
it ranks trained cells at Kendall tau 0.23, as well as ``hidden_cov`` there (0.25), with the gated cells at its top
(docs/findings.md, "Why the LSTMs sit in the middle"). An empirical signal found on the development split, not a
law: nothing here says why a smaller initial output trains better beyond that correlation.
"""

from __future__ import annotations

from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("state_rms", higher_is_better=False, needs_data=True,
       description="RMS of layer 1's output on the probe batch at initialisation (the state's scale)")
def state_rms(ctx: ScoringContext) -> float:
    return float(ctx.layer_outputs(0).double().pow(2).mean().sqrt())
