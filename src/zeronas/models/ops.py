"""Numeric implementation of the weight-free cell ops (``linear`` is handled by the cell itself)."""

from __future__ import annotations

from functools import reduce
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _blend(inputs: Sequence[Tensor]) -> Tensor:
    z, a, b = inputs
    return z * a + (1 - z) * b


def _prod(inputs: Sequence[Tensor]) -> Tensor:
    return reduce(torch.mul, inputs)


def _sum(inputs: Sequence[Tensor]) -> Tensor:
    return reduce(torch.add, inputs)


def _mean(inputs: Sequence[Tensor]) -> Tensor:
    return reduce(torch.add, inputs) / len(inputs)


def _identity(inputs: Sequence[Tensor]) -> Tensor:
    # Not an "activation_*" op: observers (which see activations' pre-activations) skip it.
    return inputs[0]


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "activation_tanh": torch.tanh,
    "activation_sigm": torch.sigmoid,
    "activation_leaky_relu": lambda t: F.leaky_relu(t, 0.01),
    "activation_relu": torch.relu,
}

ELEMENTWISE: dict[str, Callable[[Sequence[Tensor]], Tensor]] = {
    "blend": _blend,
    "elementwise_prod": _prod,
    "elementwise_sum": _sum,
    "elementwise_mean": _mean,
    "identity": _identity,
}


def apply_op(op: str, inputs: Sequence[Tensor]) -> Tensor:
    """Evaluate a weight-free op on its (already computed) inputs."""
    if op in ACTIVATIONS:
        return ACTIVATIONS[op](inputs[0])
    return ELEMENTWISE[op](inputs)
