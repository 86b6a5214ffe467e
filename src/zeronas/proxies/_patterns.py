"""Binary activation codes of the cells' activation nodes, shared by ``naswot`` and ``linear_regions``.

TE-NAS and NASWOT code a ReLU unit by whether it is active (``pre > 0``). NAS-Bench-NLP cells use leaky ReLU, tanh
and sigmoid, read here from the pre-activations that the model's ``observer`` hook reports for every activation node
at every time step:

- ``sign_code``: one bit per unit, ``pre > 0``. For leaky ReLU this is exactly its linear piece; for tanh it is the
  sign of the output; for sigmoid whether the output is above 1/2.
- ``region_code``: a thermometer code over thresholds on the pre-activation, one bit per threshold, so that the
  Hamming distance between two codes counts the thresholds crossed. leaky ReLU: ``(0,)``. tanh: ``(-1, 0, 1)``:
  the breakpoints of hard-tanh (the piecewise-linear surrogate of tanh; its linear piece is where tanh' > 0.42) plus
  the sign. sigmoid: ``(-2, 0, 2)``: the same points of the same curve, since sigmoid(x) = (1 + tanh(x/2)) / 2
  (and hard-sigmoid 0.25x + 0.5 saturates at +-2). Each tanh/sigmoid unit thus has 4 regions: saturated negative,
  linear negative, linear positive, saturated positive.

A NaN pre-activation has no code; the helpers report it so that the proxy returns NaN instead of a count of
comparisons that silently came out False.
"""

from __future__ import annotations

import torch

from zeronas.cells.ops import OPS

Tensor = torch.Tensor

def sign_code(pre: Tensor) -> Tensor:
    """``(..., H)`` -> ``(..., H)`` bool: is the unit on the positive side of its activation?"""
    return pre > 0


def region_code(op: str, pre: Tensor) -> Tensor:
    """``(..., H)`` -> ``(..., H * k)`` bool thermometer code over the op's ``k`` thresholds (see module doc)."""
    spec = OPS.get(op)
    thresholds = spec.region_thresholds if spec is not None else ()
    if not thresholds:
        raise ValueError(f"no activation code for op {op!r}")
    bits = torch.stack([pre > t for t in thresholds], dim=-1)
    return bits.reshape(*pre.shape[:-1], pre.shape[-1] * len(thresholds))


class HammingKernel:
    """Observer accumulating NASWOT's kernel over every activation node and step:
    ``K[i, j] = sum over bits of [c_i == c_j] = N_A - hamming(c_i, c_j)`` for the samples of the batch.
    Integer-valued, accumulated exactly in float64."""

    def __init__(self, n_samples: int, device: torch.device | str = "cpu") -> None:
        self.kernel = torch.zeros(n_samples, n_samples, dtype=torch.float64, device=device)
        self.n_bits = 0
        self.saw_nan = False

    def __call__(self, node: str, op: str, pre: Tensor, post: Tensor) -> None:
        if bool(torch.isnan(pre).any()):
            self.saw_nan = True
        c = sign_code(pre).double()
        self.kernel += c @ c.T + (1.0 - c) @ (1.0 - c).T
        self.n_bits += pre.shape[-1]


class LoopCrossings:
    """Observer counting, along closed loops of inputs, how many code bits flip between neighbouring points.

    The batch holds ``n_loops`` loops of ``n_points`` points each (loop-major). Between two neighbouring points every
    flipped bit is one activation boundary crossed (a unit passing a threshold), so the total over a loop is the
    number of pieces the loop is cut into by the activation regions: the number of distinct regions met along it,
    when no region is met twice (true for leaky ReLU networks, whose regions are convex)."""

    def __init__(self, n_loops: int, n_points: int) -> None:
        self.n_loops = n_loops
        self.n_points = n_points
        self.per_loop = [0] * n_loops
        self.saw_nan = False

    def __call__(self, node: str, op: str, pre: Tensor, post: Tensor) -> None:
        if bool(torch.isnan(pre).any()):
            self.saw_nan = True
        code = region_code(op, pre).reshape(self.n_loops, self.n_points, -1)
        flips = (code != code.roll(1, dims=1)).sum(dim=(1, 2))
        for i, f in enumerate(flips.tolist()):
            self.per_loop[i] += int(f)
