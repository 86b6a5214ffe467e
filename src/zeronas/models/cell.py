"""A recurrent layer that runs one cell over a sequence, built for speed on the CPU.

Two things make it fast:
- the ``x`` projections of every linear node and every time step are one matmul before the time loop;
- inside the loop, all linear nodes that read the same source share one matmul (the LSTM recipe does a
  single ``h @ W`` of width 4H per step, as ``torch.nn.LSTM`` does).
Weights are still stored per node and input (``linears.<node>.weight_<i>``, ``linears.<node>.bias``) so that
a person, a proxy or a test can find the weight of any node by name.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zeronas.cells.recipe import Cell
from zeronas.models.ops import apply_op

Tensor = torch.Tensor
# observer(node, op, pre_activation, output) is called for every activation node at every step
Observer = Callable[[str, str, Tensor, Tensor], None]


class NodeLinear(nn.Module):
    """``sum_i W_i in_i + b``: one weight per input, one bias per node (the NAS-Bench-NLP MultiLinear)."""

    def __init__(self, input_sizes: Sequence[int], output_size: int) -> None:
        super().__init__()
        self.input_sizes = list(input_sizes)
        for i, size in enumerate(self.input_sizes):
            self.register_parameter(f"weight_{i}", nn.Parameter(torch.empty(output_size, size)))
        self.bias = nn.Parameter(torch.empty(output_size))

    def weight(self, i: int) -> nn.Parameter:
        return getattr(self, f"weight_{i}")


class CellLayer(nn.Module):
    """One layer: the cell applied at every time step. Inputs and outputs are time-major ``(T, B, D)``."""

    def __init__(self, cell: Cell, input_size: int, hidden_size: int, weight_drop: float = 0.0) -> None:
        super().__init__()
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_drop = weight_drop
        self.linears = nn.ModuleDict()
        for node in cell.order:
            if cell.op(node) == "linear":
                sizes = [input_size if s == "x" else hidden_size for s in cell.node_inputs(node)]
                self.linears[node] = NodeLinear(sizes, hidden_size)
        self._plan()
        self.reset_parameters()

    def _plan(self) -> None:
        """Group every (node, input position) by the source it reads; fix each block's column slice."""
        self._readers: dict[str, list[tuple[str, int]]] = {}
        for node in self.cell.order:
            if self.cell.op(node) != "linear":
                continue
            for i, src in enumerate(self.cell.node_inputs(node)):
                self._readers.setdefault(src, []).append((node, i))
        H = self.hidden_size
        self._slice: dict[tuple[str, int], slice] = {}
        for src, readers in self._readers.items():
            for j, key in enumerate(readers):
                self._slice[key] = slice(j * H, (j + 1) * H)
        # A node reading x gets its bias through the x projection (once, at its first x input).
        self._bias_in_x: set[tuple[str, int]] = set()
        for node in self.linears:
            inputs = self.cell.node_inputs(node)
            if "x" in inputs:
                self._bias_in_x.add((node, inputs.index("x")))
        self._steps = [(node, self.cell.op(node), tuple(self.cell.node_inputs(node))) for node in self.cell.order]
        self._outputs = self.cell.outputs

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """NAS-Bench-NLP initialisation: every cell weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound, generator=generator)

    def _fused_weights(self) -> tuple[dict[str, Tensor], Optional[Tensor]]:
        weights: dict[str, Tensor] = {}
        for src, readers in self._readers.items():
            w = torch.cat([self.linears[n].weight(i) for n, i in readers], dim=0)
            if src != "x" and self.training and self.weight_drop > 0:
                w = F.dropout(w, p=self.weight_drop, training=True)
            weights[src] = w
        x_bias = None
        if "x" in self._readers:
            parts = []
            for n, i in self._readers["x"]:
                if (n, i) in self._bias_in_x:
                    parts.append(self.linears[n].bias)
                else:
                    parts.append(self.linears[n].bias.new_zeros(self.hidden_size))
            x_bias = torch.cat(parts)
        return weights, x_bias

    def init_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, ...]:
        return tuple(like.new_zeros(batch_size, self.hidden_size) for _ in range(self.cell.hidden_tuple_size))

    def forward(self, inputs: Tensor, state: Optional[Sequence[Tensor]] = None,
                observer: Optional[Observer] = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        T, B, _ = inputs.shape
        if state is None:
            state = self.init_state(B, inputs)
        weights, x_bias = self._fused_weights()
        x_proj = F.linear(inputs, weights["x"], x_bias).unbind(0) if "x" in weights else None
        linears = self.linears
        slices = self._slice
        bias_in_x = self._bias_in_x
        outputs = []
        h = tuple(state)
        for t in range(T):
            env: dict[str, Tensor] = {f"h_prev_{i}": v for i, v in enumerate(h)}
            proj: dict[str, Tensor] = {"x": x_proj[t]} if x_proj is not None else {}
            for node, op, srcs in self._steps:
                if op == "linear":
                    total: Optional[Tensor] = None
                    has_bias = False
                    for i, src in enumerate(srcs):
                        if src not in proj:
                            proj[src] = F.linear(env[src], weights[src])
                        part = proj[src][:, slices[(node, i)]]
                        has_bias = has_bias or (node, i) in bias_in_x
                        total = part if total is None else total + part
                    if not has_bias:
                        total = total + linears[node].bias
                    env[node] = total
                else:
                    args = [env[s] for s in srcs]
                    out = apply_op(op, args)
                    if observer is not None and op.startswith("activation_"):
                        observer(node, op, args[0], out)
                    env[node] = out
            h = tuple(env[o] for o in self._outputs)
            outputs.append(h[0])
        return torch.stack(outputs, 0), h
