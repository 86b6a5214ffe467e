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
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zeronas.cells.ops import OPS
from zeronas.cells.recipe import Cell
from zeronas.models.contract import Observer
from zeronas.models.deferred import deferred_weight, step_matmul
from zeronas.models.matmul import fast_linear, use_onednn

Tensor = torch.Tensor
# on_step(t, new state) -> the state to carry on from, or None to stop (see CellLayer.run)
StepHook = Callable[[int, tuple[Tensor, ...]], Optional[Sequence[Tensor]]]


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


class _Prepared(NamedTuple):
    """What a forward pass computes from the weights alone (see :meth:`CellLayer._prepare`)."""

    recurrent: list[list[tuple[str, object]]]  # per group, (source, weight_t) or, on the fast path, (source, (tape, token))
    x_weight: Optional[Tensor]
    x_bias: Optional[Tensor]
    group_bias: list[Optional[Tensor]]


class CellLayer(nn.Module):
    """One layer: the cell applied at every time step. Inputs and outputs are time-major ``(T, B, D)``.

    ``generator``: the weights' initial draws come from it (NAS-Bench-NLP's uniform init, in parameter order);
    without one, from torch's global generator. ``draws``: instead of drawing, ``draws(n)`` gives the ``n``
    initial values of every parameter, in parameter order (what ``n`` draws from a generator would give)."""

    def __init__(self, cell: Cell, input_size: int, hidden_size: int, weight_drop: float = 0.0,
                 generator: Optional[torch.Generator] = None,
                 draws: Optional[Callable[[int], Tensor]] = None) -> None:
        super().__init__()
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_drop = weight_drop
        # One weight-gradient matmul per sequence (see deferred.py); off for torch.func and double backward.
        self.fast_backward = True
        self.linears = nn.ModuleDict()
        for node in cell.order:
            if cell.op(node) == "linear":
                sizes = [input_size if s == "x" else hidden_size for s in cell.node_inputs(node)]
                self.linears[node] = NodeLinear(sizes, hidden_size)
        self._frozen: Optional[_Prepared] = None
        self._plan()
        if draws is None:
            self.reset_parameters(generator)
        else:
            self._fill(draws(sum(p.numel() for p in self.parameters())))

    def _plan(self) -> None:
        """Group linear nodes that read the same (multi)set of sources; each group is one matmul per source.

        The group's pre-activations are computed when its first member is reached in topological order
        (all members read the same sources, so they are all ready then); members are column slices of it.
        """
        groups: dict[tuple[str, ...], list[str]] = {}
        for node in self.cell.order:
            if self.cell.op(node) == "linear":
                groups.setdefault(tuple(sorted(self.cell.node_inputs(node))), []).append(node)
        # group -> (sources with multiplicity, members, per slot the (member, input position) pairs)
        self._groups: list[tuple[tuple[str, ...], list[str], list[list[tuple[str, int]]]]] = []
        self._member: dict[str, tuple[int, int]] = {}
        for g, (key, members) in enumerate(groups.items()):
            slots: list[list[tuple[str, int]]] = [[] for _ in key]
            for j, node in enumerate(members):
                inputs = self.cell.node_inputs(node)
                positions = sorted(range(len(inputs)), key=lambda i: inputs[i])
                for slot, pos in enumerate(positions):
                    slots[slot].append((node, pos))
                self._member[node] = (g, j)
            self._groups.append((key, members, slots))
        first_member = {members[0]: g for g, (_, members, _) in enumerate(self._groups)}
        self._steps: list[tuple[str, str, tuple[str, ...], int]] = []
        for node in self.cell.order:
            op = self.cell.op(node)
            self._steps.append((node, op, tuple(self.cell.node_inputs(node)), first_member.get(node, -1)))
        self._outputs = self.cell.outputs

    def _fill(self, values: Tensor) -> None:
        """Every parameter from consecutive slices of ``values``, in parameter order."""
        with torch.no_grad():
            start = 0
            for p in self.parameters():
                p.copy_(values[start:start + p.numel()].view_as(p))
                start += p.numel()

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """NAS-Bench-NLP initialisation: every cell weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound, generator=generator)

    def _group_weights(self) -> tuple[list[list[tuple[str, Tensor]]], Optional[Tensor], Optional[Tensor]]:
        """Per group, the (source, stacked weight) of each non-x slot; and the fused x weight and bias of all
        groups that read x (their x projections for all time steps are one matmul)."""
        recurrent: list[list[tuple[str, Tensor]]] = []
        x_weights: list[Tensor] = []
        x_biases: list[Tensor] = []
        self._x_cols: list[Optional[tuple[int, int]]] = []
        col = 0
        for key, members, slots in self._groups:
            per_slot: list[tuple[str, Tensor]] = []
            x_slots = [s for s, src in zip(slots, key) if src == "x"]
            for slot, src in zip(slots, key):
                if src == "x":
                    continue
                if self.fast_backward and not torch.is_grad_enabled():
                    # stacked straight into the (in, out) layout that the fast path's oneDNN products read (the
                    # layout Tape would copy the stacked weight into): the same values, one copy fewer
                    wt = torch.cat([self.linears[n].weight(i).t() for n, i in slot], dim=1)
                    if use_onednn(wt):
                        per_slot.append((src, wt))
                        continue
                w = torch.cat([self.linears[n].weight(i) for n, i in slot], dim=0)
                if self.training and self.weight_drop > 0:
                    w = F.dropout(w, p=self.weight_drop, training=True)
                per_slot.append((src, w.t()))
            recurrent.append(per_slot)
            if x_slots:
                w = torch.cat([self.linears[n].weight(i) for n, i in x_slots[0]], dim=0)
                for extra in x_slots[1:]:  # linear(x, x, ...): the weights of one input simply add up
                    w = w + torch.cat([self.linears[n].weight(i) for n, i in extra], dim=0)
                x_weights.append(w)
                x_biases.append(torch.cat([self.linears[n].bias for n in members]))
                self._x_cols.append((col, col + w.shape[0]))
                col += w.shape[0]
            else:
                self._x_cols.append(None)
        if not x_weights:
            return recurrent, None, None
        return recurrent, torch.cat(x_weights, 0), torch.cat(x_biases, 0)

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * self.cell.hidden_tuple_size

    def init_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, ...]:
        return tuple(like.new_zeros(batch_size, size) for size in self.state_sizes)

    @contextmanager
    def frozen(self) -> Iterator["CellLayer"]:
        """Within: no gradient is formed and the weights must not change, so every forward pass reuses the
        stacked weights (and the fast path's operands) prepared once on entry. For loops that call the layer
        one step at a time (a step costs less than stacking its weights again). The results are those of
        plain forward passes, bit for bit: the same tensors, computed once."""
        with torch.no_grad(), self.prepared():
            yield self

    @contextmanager
    def prepared(self) -> Iterator["CellLayer"]:
        """Within: every forward pass reuses the stacked weights (and the fast path's operands) prepared once on
        entry, on the autograd graph when gradients are on: for many forward and backward passes of the same
        weights (per-sample gradients). Each backward pass must end before the next forward pass (the fast
        path's weight gradient is formed from a tape that each backward pass empties). The weights must not
        change within."""
        self._frozen = self._prepare()
        try:
            yield self
        finally:
            self._frozen = None

    def _prepare(self) -> _Prepared:
        """The stacked weights of every group, the fused x weight and bias, the bias of groups without x and, on
        the fast path, each recurrent weight's tape."""
        recurrent, x_weight, x_bias = self._group_weights()
        return _Prepared(self._tapes(recurrent), x_weight, x_bias, self._group_bias())

    def _group_bias(self) -> list[Optional[Tensor]]:
        return [None if cols is not None else torch.cat([self.linears[n].bias for n in members])
                for cols, (_, members, _) in zip(self._x_cols, self._groups)]

    def _tapes(self, recurrent: list[list[tuple[str, Tensor]]]) -> list[list[tuple[str, object]]]:
        if not self.fast_backward:
            return recurrent  # type: ignore[return-value]
        return [[(src, deferred_weight(wt)) for src, wt in per_slot] for per_slot in recurrent]

    def _x_steps(self, inputs: Tensor, x_weight: Optional[Tensor], x_bias: Optional[Tensor],
                 repeats: int = 1) -> list[Optional[tuple[Tensor, ...]]]:
        """The x projections of every group for all steps: one matmul, then per group and step a view (split and
        unbind have cheap backward passes, unlike column slicing, which zero-fills a full gradient per step).
        With ``repeats``, the projections of ``inputs`` repeated that many times along the batch."""
        x_steps: list[Optional[tuple[Tensor, ...]]] = [None] * len(self._groups)
        if x_weight is not None:
            x_all = (fast_linear if self.fast_backward else F.linear)(inputs, x_weight, x_bias)
            if repeats > 1:
                x_all = x_all.repeat(1, repeats, 1)
            with_x = [g for g, cols in enumerate(self._x_cols) if cols is not None]
            chunks = x_all.split([self._x_cols[g][1] - self._x_cols[g][0] for g in with_x], dim=2)
            for g, chunk in zip(with_x, chunks):
                x_steps[g] = chunk.unbind(0)
        return x_steps

    def forward(self, inputs: Tensor, state: Optional[Sequence[Tensor]] = None,
                observer: Optional[Observer] = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        return self.run(inputs, state, observer)

    def run(self, inputs: Tensor, state: Optional[Sequence[Tensor]] = None, observer: Optional[Observer] = None,
            on_step: Optional[StepHook] = None, input_repeats: int = 1) -> tuple[Tensor, tuple[Tensor, ...]]:
        """:meth:`forward`, with ``on_step(t, state)`` called after every step ``t`` with the new carried state:
        it returns the state to carry on from (the same, or a replacement), or None to stop there (the outputs
        then end at that step). ``input_repeats``: the batch is ``inputs.repeat(1, input_repeats, 1)`` (several
        trajectories read the same text), whose x projections are computed once per distinct sequence. Every
        step's values are those of :meth:`forward` on the same (repeated) inputs, and of one :meth:`forward`
        call per step: a row of a matrix product does not depend on the other rows (bit for bit where the BLAS
        computes a row the same way whatever the number of rows, as at the default sizes on the machines we
        measured; else to float32 rounding)."""
        T, B, _ = inputs.shape
        if state is None:
            state = self.init_state(B * input_repeats, inputs)
        if self._frozen is not None:
            recurrent, x_weight, x_bias, group_bias = self._frozen
            x_steps = self._x_steps(inputs, x_weight, x_bias, input_repeats)
        else:  # in this order, which fixes the order of the autograd graph's nodes (and so of its sums)
            weights, x_weight, x_bias = self._group_weights()
            x_steps = self._x_steps(inputs, x_weight, x_bias, input_repeats)
            group_bias = self._group_bias()
            recurrent = self._tapes(weights)
        outputs = []
        h = tuple(state)
        # without a gradient the fast path's products need no autograd Function: the same product, called directly
        direct = self.fast_backward and not torch.is_grad_enabled()
        for t in range(T):
            h = self._step(t, h, x_steps, recurrent, group_bias, observer, direct)
            outputs.append(h[0])
            if on_step is not None:
                carried = on_step(t, h)
                if carried is None:
                    break
                h = tuple(carried)
        return torch.stack(outputs, 0), h

    def _step(self, t: int, h: tuple[Tensor, ...], x_steps: list[Optional[tuple[Tensor, ...]]],
              recurrent: list[list[tuple[str, Any]]], group_bias: list[Optional[Tensor]],
              observer: Optional[Observer], direct: bool = False) -> tuple[Tensor, ...]:
        """One time step: the new carried state from the old one (``x_steps``: the x projections; ``direct``: the
        fast path's products without their autograd Function, which computes the same ``acc + h @ W``)."""
        H = self.hidden_size
        env: dict[str, Tensor] = {f"h_prev_{i}": v for i, v in enumerate(h)}
        pre: list[tuple[Tensor, ...]] = [()] * len(self._groups)
        for node, op, srcs, group in self._steps:
            if op == "linear":
                if group >= 0:  # first member of its group: compute the whole group
                    xs = x_steps[group]
                    acc = xs[t] if xs is not None else group_bias[group]
                    for src, wt in recurrent[group]:
                        if direct:
                            acc = acc + wt[0].matmul(env[src])
                        elif self.fast_backward:
                            acc = step_matmul(acc, env[src], *wt)
                        else:
                            acc = torch.addmm(acc, env[src], wt)
                    pre[group] = acc.split(H, 1)
                g, j = self._member[node]
                env[node] = pre[g][j]
            else:
                args = [env[s] for s in srcs]
                out = OPS[op].apply(args)
                if observer is not None and op.startswith("activation_"):
                    observer(node, op, args[0], out)
                env[node] = out
        return tuple(env[o] for o in self._outputs)
