"""The operations of the cell language: arity and symmetry, independent of PyTorch.

The numeric implementation of each op lives in :mod:`zeronas.models.ops`; this table is what
parsing, validation and canonical ids need. New ops are added here and there (one entry each).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpSpec:
    """What the cell language knows about one op."""

    name: str
    min_inputs: int
    max_inputs: int | None  # None: no upper bound
    commutative: bool
    has_weights: bool = False
    description: str = ""

    def arity_text(self) -> str:
        if self.max_inputs == self.min_inputs:
            return f"exactly {self.min_inputs}"
        if self.max_inputs is None:
            return f"at least {self.min_inputs}"
        return f"{self.min_inputs} to {self.max_inputs}"

    def accepts(self, n_inputs: int) -> bool:
        return n_inputs >= self.min_inputs and (self.max_inputs is None or n_inputs <= self.max_inputs)


OPS: dict[str, OpSpec] = {}


def register_op(spec: OpSpec) -> OpSpec:
    if spec.name in OPS:
        raise ValueError(f"op {spec.name!r} is already registered")
    OPS[spec.name] = spec
    return spec


register_op(OpSpec("linear", 1, None, True, True, "sum_i W_i in_i + b (one bias per node)"))
register_op(OpSpec("blend", 3, 3, False, False, "z*a + (1-z)*b for inputs (z, a, b); order matters"))
register_op(OpSpec("elementwise_prod", 2, None, True, False, "product of all inputs"))
register_op(OpSpec("elementwise_sum", 2, None, True, False, "sum of all inputs"))
register_op(OpSpec("activation_tanh", 1, 1, True, False, "tanh"))
register_op(OpSpec("activation_sigm", 1, 1, True, False, "logistic sigmoid"))
register_op(OpSpec("activation_leaky_relu", 1, 1, True, False, "leaky ReLU, slope 0.01"))
# Added for the ENAS and DARTS recurrent spaces (zeronas.cells.enas / .darts); NAS-Bench-NLP uses none of them.
register_op(OpSpec("activation_relu", 1, 1, True, False, "ReLU"))
register_op(OpSpec("identity", 1, 1, True, False, "the input unchanged (the 'identity' activation of ENAS/DARTS)"))
register_op(OpSpec("elementwise_mean", 2, None, True, False, "average of all inputs"))
