"""``params``: the number of trainable parameters (a strong baseline that every proxy should beat)."""

from __future__ import annotations

from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


@proxy("params", higher_is_better=True, needs_data=False,
       description="trainable parameters of the model (tied embedding counted once)")
def params(ctx: ScoringContext) -> float:
    return float(ctx.read_only_model().num_parameters())
