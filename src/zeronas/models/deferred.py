"""Recurrent matmuls whose weight gradient is computed once per sequence instead of once per step.

In a time loop, the weight gradient of ``h_t @ W`` is ``sum_t h_t^T g_t``: a sum of skinny products (inner size =
batch) that autograd computes and accumulates step by step, which dominates the backward pass on a CPU. Here each
step records ``(h_t, g_t)`` on a tape during backward and the weight gradient is one ``H^T G`` matmul over all
steps, as fused RNN kernels do. The gradient is the same; only the order of summation differs.

It is a plain ``torch.autograd.Function`` with side effects on the tape, so it is not for torch.func transforms or
double backward: :class:`zeronas.models.cell.CellLayer` uses it only when ``fast_backward`` is on.
"""

from __future__ import annotations

import torch

from zeronas.models.matmul import mm, onednn_linear, use_onednn

Tensor = torch.Tensor


class Tape:
    """Holds one weight (``(in, out)``, transposed for addmm) and the per-step pairs recorded in backward.

    On the CPU the per-step products go through oneDNN (see :mod:`zeronas.models.matmul`), whose kernels for
    these skinny products (rows = batch) are much faster than the BLAS ``addmm`` on some processors. oneDNN is
    fastest when the weight operand is a transposed view, so the weight is kept in both layouts (one copy per
    sequence). A single-row product (the NTK's per-sample passes) uses the contiguous operand instead: there
    oneDNN's kernel for a transposed weight rounds differently, and this keeps those scores as they were."""

    def __init__(self, weight_t: Tensor) -> None:
        self.onednn = use_onednn(weight_t)
        self.weight_t = weight_t  # (in, out)
        if self.onednn:  # the tape is made for a forward pass, which always uses them
            self._in_out = weight_t.contiguous()
            self._out_in_copy: Tensor | None = None
        self.inputs: list[Tensor] = []
        self.grads: list[Tensor] = []

    @property
    def _out_in(self) -> Tensor:
        """The weight as ``(out, in)``, contiguous: free when the layer stacked it that way, else made once."""
        if self._out_in_copy is None:
            self._out_in_copy = self.weight_t.t().contiguous()
        return self._out_in_copy

    def matmul(self, h: Tensor) -> Tensor:
        """``h @ W`` (h is ``(B, in)``)."""
        if not self.onednn:
            return h @ self.weight_t
        return onednn_linear(h, self._out_in if h.shape[0] == 1 else self._in_out.t())

    def matmul_transposed(self, g: Tensor) -> Tensor:
        """``g @ W^T`` (g is ``(B, out)``), the gradient with respect to h."""
        if not self.onednn:
            return g @ self.weight_t.t()
        return onednn_linear(g, self._in_out if g.shape[0] == 1 else self._out_in.t())


class _DeferredWeight(torch.autograd.Function):
    """weight -> a scalar token that every step depends on; its backward runs after all steps' backward."""

    @staticmethod
    def forward(ctx, weight_t: Tensor, tape: Tape) -> Tensor:  # type: ignore[override]
        ctx.tape = tape
        return weight_t.new_zeros(())

    @staticmethod
    def backward(ctx, _grad_token: Tensor):  # type: ignore[override]
        tape: Tape = ctx.tape
        if not tape.inputs:
            return None, None
        inputs = torch.cat(tape.inputs, 0)
        grads = torch.cat(tape.grads, 0)
        tape.inputs.clear()
        tape.grads.clear()
        return mm(inputs.t(), grads), None


class _StepMatmul(torch.autograd.Function):
    """``acc + h @ W`` for one step; the gradient of W goes on the tape."""

    @staticmethod
    def forward(ctx, acc: Tensor, h: Tensor, token: Tensor, tape: Tape) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(h)
        ctx.tape = tape
        ctx.acc_is_bias = acc.dim() == 1
        return acc + tape.matmul(h)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (h,) = ctx.saved_tensors
        tape: Tape = ctx.tape
        tape.inputs.append(h)
        tape.grads.append(grad)
        grad_h = tape.matmul_transposed(grad) if ctx.needs_input_grad[1] else None
        grad_acc = grad.sum(0) if ctx.acc_is_bias else grad
        return grad_acc, grad_h, grad.new_zeros(()), None


def deferred_weight(weight_t: Tensor) -> tuple[Tape, Tensor]:
    tape = Tape(weight_t.detach())
    return tape, _DeferredWeight.apply(weight_t, tape)


def step_matmul(acc: Tensor, h: Tensor, tape: Tape, token: Tensor) -> Tensor:
    return _StepMatmul.apply(acc, h, token, tape)
