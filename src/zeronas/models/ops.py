"""Numeric evaluation of the weight-free cell ops; each op's kernel lives in its entry of
:data:`zeronas.cells.ops.OPS` (``linear`` is handled by the cell itself)."""

from __future__ import annotations

from typing import Sequence

import torch

from zeronas.cells.ops import OPS

Tensor = torch.Tensor


def apply_op(op: str, inputs: Sequence[Tensor]) -> Tensor:
    """Evaluate a weight-free op on its (already computed) inputs."""
    kernel = OPS[op].kernel
    if kernel is None:
        raise ValueError(f"op {op!r} has weights: the cell layer computes it")
    return kernel(inputs)
