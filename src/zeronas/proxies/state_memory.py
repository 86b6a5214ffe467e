"""``state_memory``: the share of layer 1's state that comes from the past. Higher is better.

``||h - h°|| / ||h||`` over layer 1's outputs ``h`` on the probe batch, where ``h°`` is every step run again with
all carried states set to zero (one batch of single steps): 0 for a cell whose output is a function of the current
token alone, about 0.5 for the LSTM, the GRU and the tanh RNN at NAS-Bench-NLP's initialisation (development split
median 0.36). NaN when every output is zero. One extra single-step pass of layer 1 over ``T x B`` tokens; the full
forward pass is shared with ``hidden_cov`` through ``ctx.cache`` (docs/findings.md, "Why the LSTMs sit in the
middle").
"""

from __future__ import annotations

from zeronas.proxies._hidden import state_memory_share
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("state_memory", higher_is_better=True, needs_data=True,
       description="share of layer 1's output that comes from the carried state: ||h - h(zero state)|| / ||h||")
def state_memory(ctx: ScoringContext) -> float:
    return state_memory_share(ctx)
