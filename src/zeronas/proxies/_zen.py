"""The reduction shared by ``zen`` and its RNN variants: log of the mean per-sequence response norm."""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import torch

from zeronas.models.contract import RecurrentLM

Tensor = torch.Tensor
ZEN_FAMILY = ("zen", "zen_real", "zen_state")
_DOUBLE_KEY = "zen/float64-model"


def float64_model(ctx: Any) -> RecurrentLM:
    """The seeded model in float64 without gradients, read-only, shared by the Zen family: converted once while
    another of them is still to run (then kept in ``ctx.cache``; the last one takes it out)."""
    model = ctx.cache.pop(_DOUBLE_KEY, None)
    if model is None:
        model = copy.deepcopy(ctx.read_only_model()).double()
        model.requires_grad_(False)
    if any(ctx.might_run(name) for name in ZEN_FAMILY):
        ctx.cache[_DOUBLE_KEY] = model
    return model


def zen_score(ctx: Any, differences: Callable[[Any, Any], Iterable[Tensor]]) -> float:
    """The score every Zen variant shares: ``differences(model, config)`` yields each draw's output difference
    from the context's model in float64 without gradients; the result is :func:`log_mean_sequence_norm`."""
    model = float64_model(ctx)
    with torch.no_grad():
        return log_mean_sequence_norm(differences(model, ctx.config))


def log_mean_sequence_norm(differences: Iterable[Tensor]) -> float:
    """``log`` of the mean, over every sequence of every draw, of ``||f(a) - f(b)||_F`` over steps and units.

    Each item is one draw's output difference ``(T, B, H)``. A flat response (a total of 0) gives ``-inf`` and an
    overflow inf or NaN: the runner records those as statuses, not numbers."""
    total = 0.0
    count = 0
    for diff in differences:
        norms = torch.linalg.vector_norm(diff, dim=(0, 2))  # per sequence, over steps and units
        total += float(norms.sum())
        count += norms.numel()
    return float(torch.tensor(total / count, dtype=torch.float64).log())
