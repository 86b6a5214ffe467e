"""``state_escape``: the training-free trainability check. Lower is better; > 0 predicts divergence.

The largest per-step log-growth rate of layer 1's carried state, over starting states of RMS 1 to 4096 on real
probe text (see :mod:`zeronas.proxies._escape` for the probe and why it foretells divergence): a cell whose
state returns from far away scores below 0, a cell with a starting state that grows or blows up scores above 0.
As a gate (``hidden_cov!state_escape``) a cell passes when its score is <= 0: the boundary between a state that
decays and one that grows, not a value fitted to any benchmark.
The untrained network at its seeded initialisation is only run forward: no weight update, no labels.
"""

from __future__ import annotations

from zeronas.proxies._escape import HORIZON, N_SEQUENCES, escape_rates
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("state_escape", higher_is_better=False, needs_data=True, gate=0.0, min_tokens=HORIZON + N_SEQUENCES,
       description="trainability: max over starting states of RMS 1..4096 of the per-step log-growth of layer 1's "
                   "carried state until it escapes (60 steps of probe text, float64); > 0 = a state that grows")
def state_escape(ctx: ScoringContext) -> float:
    return float(escape_rates(ctx).max())
