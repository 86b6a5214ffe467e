"""The operations of the cell language, one table: for each op its arity and symmetry (parsing, canonical ids),
its numeric kernel (the cell layer), its multiplications per output element (``flops``) and its activation-region
breakpoints (``linear_regions``, ``naswot``).

A new op is one ``register_op`` call here. The kernels import torch when they run, so parsing and validating cells
never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any, Callable, Sequence

Kernel = Callable[[Sequence[Any]], Any]  # tensors in, tensor out


@dataclass(frozen=True)
class OpSpec:
    """What the cell language knows about one op. ``kernel`` is None for ``linear`` (the cell layer owns its
    weights); ``macs`` is the multiplications per output element given the number of inputs (None: ``linear``,
    counted from its weights); ``region_thresholds`` are an activation's breakpoints (empty otherwise)."""

    name: str
    min_inputs: int
    max_inputs: int | None  # None: no upper bound
    commutative: bool
    has_weights: bool = False
    description: str = ""
    kernel: Kernel | None = None
    macs: Callable[[int], int] | None = None
    region_thresholds: tuple[float, ...] = ()

    def arity_text(self) -> str:
        if self.max_inputs == self.min_inputs:
            return f"exactly {self.min_inputs}"
        if self.max_inputs is None:
            return f"at least {self.min_inputs}"
        return f"{self.min_inputs} to {self.max_inputs}"

    def accepts(self, n_inputs: int) -> bool:
        return n_inputs >= self.min_inputs and (self.max_inputs is None or n_inputs <= self.max_inputs)

    def apply(self, inputs: Sequence[Any]) -> Any:
        """Evaluate this weight-free op on its (already computed) inputs."""
        if self.kernel is None:
            raise ValueError(f"op {self.name!r} has weights: the cell layer computes it")
        return self.kernel(inputs)


# -- kernels -----------------------------------------------------------------------------------------------------

def _tanh(inputs: Sequence[Any]) -> Any:
    import torch

    return torch.tanh(inputs[0])


def _sigm(inputs: Sequence[Any]) -> Any:
    import torch

    return torch.sigmoid(inputs[0])


def _leaky_relu(inputs: Sequence[Any]) -> Any:
    import torch.nn.functional as F

    return F.leaky_relu(inputs[0], 0.01)


def _relu(inputs: Sequence[Any]) -> Any:
    import torch

    return torch.relu(inputs[0])


def _blend(inputs: Sequence[Any]) -> Any:
    z, a, b = inputs
    return z * a + (1 - z) * b


def _prod(inputs: Sequence[Any]) -> Any:
    import torch

    return reduce(torch.mul, inputs)


def _sum(inputs: Sequence[Any]) -> Any:
    import torch

    return reduce(torch.add, inputs)


def _mean(inputs: Sequence[Any]) -> Any:
    import torch

    return reduce(torch.add, inputs) / len(inputs)


def _identity(inputs: Sequence[Any]) -> Any:
    return inputs[0]  # not an activation_* op: observers skip it


def _none(k: int) -> int:
    return 0


OPS: dict[str, OpSpec] = {}


def register_op(spec: OpSpec) -> OpSpec:
    if spec.name in OPS:
        raise ValueError(f"op {spec.name!r} is already registered")
    OPS[spec.name] = spec
    return spec


register_op(OpSpec("linear", 1, None, True, True, "sum_i W_i in_i + b (one bias per node)"))
register_op(OpSpec("blend", 3, 3, False, False, "z*a + (1-z)*b for inputs (z, a, b); order matters",
                   kernel=_blend, macs=lambda k: 2))  # z * a and (1 - z) * b
register_op(OpSpec("elementwise_prod", 2, None, True, False, "product of all inputs",
                   kernel=_prod, macs=lambda k: k - 1))
register_op(OpSpec("elementwise_sum", 2, None, True, False, "sum of all inputs", kernel=_sum, macs=_none))
register_op(OpSpec("activation_tanh", 1, 1, True, False, "tanh", kernel=_tanh, macs=_none,
                   region_thresholds=(-1.0, 0.0, 1.0)))
register_op(OpSpec("activation_sigm", 1, 1, True, False, "logistic sigmoid", kernel=_sigm, macs=_none,
                   region_thresholds=(-2.0, 0.0, 2.0)))
register_op(OpSpec("activation_leaky_relu", 1, 1, True, False, "leaky ReLU, slope 0.01", kernel=_leaky_relu,
                   macs=_none, region_thresholds=(0.0,)))
# Added for the ENAS and DARTS recurrent spaces (zeronas.cells.enas / .darts); NAS-Bench-NLP uses none of them.
register_op(OpSpec("activation_relu", 1, 1, True, False, "ReLU", kernel=_relu, macs=_none,
                   region_thresholds=(0.0,)))  # ReLU's one breakpoint, as leaky ReLU
register_op(OpSpec("identity", 1, 1, True, False, "the input unchanged (the 'identity' activation of ENAS/DARTS)",
                   kernel=_identity, macs=_none))
register_op(OpSpec("elementwise_mean", 2, None, True, False, "average of all inputs", kernel=_mean,
                   macs=lambda k: 1))
