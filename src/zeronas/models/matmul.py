"""Matrix products through oneDNN on the CPU where it is faster than the BLAS behind ``torch.mm``.

On some processors (AMD EPYC among them) PyTorch's BLAS runs float32 GEMMs at about half the speed of oneDNN,
which is what ``torch.nn.LSTM`` uses on the CPU. These helpers give the cell layer the same kernels, through
oneDNN's linear primitive on ordinary (strided) tensors: no format conversions, and transposed operands are
read in place. Results equal ``torch.mm`` up to float32 rounding; the plain path is used on GPUs, for other
dtypes, for small matrices, and where this PyTorch build has no oneDNN linear op.
"""

from __future__ import annotations

from typing import Any

import torch

Tensor = torch.Tensor

# Below this size the oneDNN call costs more than it saves (tiny test models).
ONEDNN_MIN_DIM = 128


def _onednn_linear_op() -> Any:
    """PyTorch's oneDNN linear on dense tensors (the op its compiler uses for CPU linears), if this build has it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return None


_ONEDNN_LINEAR = _onednn_linear_op()


def use_onednn(*tensors: Tensor) -> bool:
    return _ONEDNN_LINEAR is not None and all(
        t.device.type == "cpu" and t.dtype == torch.float32 and min(t.shape) >= ONEDNN_MIN_DIM for t in tensors)


def onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight^T (+ bias)`` for 2-D float32 CPU tensors, either of which may be a transposed view.
    Only where :func:`use_onednn` holds. No autograd: for use inside Functions."""
    return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")


def mm(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` (2-D), through oneDNN when that is the faster path. No autograd: for use inside Functions."""
    if use_onednn(a, b):
        return onednn_linear(a, b.t())
    return a @ b


class _Linear(torch.autograd.Function):
    """``x @ W^T + b`` for 2-D x, with every product (forward and both gradients) through :func:`mm`."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = mm(x, weight.t())
        return out + bias if bias is not None else out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = mm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_w = mm(grad.t(), x) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def fast_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear`` over the last dimension of x, through oneDNN on the CPU (not for torch.func transforms)."""
    if not use_onednn(weight) or x.device.type != "cpu":
        return torch.nn.functional.linear(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1])
    return _Linear.apply(flat, weight, bias).reshape(*x.shape[:-1], weight.shape[0])
