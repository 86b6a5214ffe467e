"""The model contract: everything a proxy may use of a recurrent language model, and nothing else.

A model is token ids ``(T, B)`` -> embedding ``(T, B, E)`` -> a stack of recurrent layers -> a linear decoder to
logits ``(T, B, V)``. Proxies reach the model only through :class:`RecurrentLM`, so any model that satisfies it
is scored by every proxy whose needs it meets: zeronas's own :class:`~zeronas.models.lm.RNNModel` (a cell-language
recipe), and the adapters of :mod:`zeronas.models.adapters` (``torch.nn.LSTM``/``GRU``/``RNN`` language models, an
``nn.Module`` cell stepped in a loop).

Capabilities are what a proxy may need beyond the common part (see ``requires=`` in
:func:`zeronas.proxies.registry.proxy`); a model that lacks one gets an ``unsupported`` score with the reason, never
a number that describes some other model:

- ``activations``: ``run_layers(..., observer=fn)`` calls ``fn(node, op, pre, post)`` for every activation of every
  layer at every step (``op`` is a cell-language activation such as ``activation_tanh``), on the autograd graph.
- ``recipe``: ``model.cell`` is a cell-language :class:`~zeronas.cells.recipe.Cell` that computes exactly what each
  layer's step computes (weights aside), so structural proxies (depth, op counts, MACs) describe this model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import nn

if TYPE_CHECKING:
    from zeronas.cells.recipe import Cell

Tensor = torch.Tensor
# observer(node, op, pre_activation, output), for every activation node at every step
Observer = Callable[[str, str, Tensor, Tensor], None]
State = list[tuple[Tensor, ...]]

ACTIVATIONS = "activations"
RECIPE = "recipe"
CAPABILITIES = (ACTIVATIONS, RECIPE)


@runtime_checkable
class RecurrentLayer(Protocol):
    """One recurrent layer over a whole sequence, time-major. ``fast_backward`` lets the layer use a fused or
    deferred kernel; proxies turn it off where they need plain autograd (forward-mode AD, double backward).

    Optional, used where a layer offers them (zeronas's cell layer does; any other layer works without): ``run(
    inputs, state, on_step=fn, input_repeats=r)``, a forward pass that calls ``fn(t, state)`` after every step (to
    replace the carried state or stop) over inputs repeated ``r`` times along the batch; ``frozen()`` and
    ``prepared()``, contexts within which the layer prepares its weights once for many forward passes."""

    input_size: int
    hidden_size: int  # the width of the layer's output
    fast_backward: bool

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """The width of each tensor the layer carries from step to step (LSTM: ``(H, H)`` for ``(h, c)``)."""

    def init_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, ...]: ...

    def __call__(self, inputs: Tensor, state: Optional[Sequence[Tensor]] = None,
                 observer: Optional[Observer] = None) -> tuple[Tensor, tuple[Tensor, ...]]: ...


@runtime_checkable
class RecurrentLM(Protocol):
    """A recurrent language model as proxies see it. ``layers`` is an ``nn.ModuleList`` of
    :class:`RecurrentLayer`; ``decoder`` the output ``nn.Linear`` (tied to the embedding or not)."""

    vocab_size: int
    emb_size: int
    layers: nn.ModuleList
    decoder: nn.Linear
    cell: Optional["Cell"]  # the recipe of every layer's step when one describes it exactly, else None

    def capabilities(self) -> frozenset[str]: ...

    def embed(self, tokens: Tensor) -> Tensor: ...

    def run_layers(self, emb: Tensor, hidden: Optional[State] = None, observer: Optional[Observer] = None,
                   return_all: bool = False) -> tuple[Tensor | list[Tensor], State]: ...

    def decode(self, hidden_out: Tensor) -> Tensor: ...

    def __call__(self, tokens: Tensor, hidden: Optional[State] = None) -> tuple[Tensor, State]: ...

    def loss(self, tokens: Tensor, targets: Tensor, hidden: Optional[State] = None) -> tuple[Tensor, State]: ...

    def init_hidden(self, batch_size: int) -> State: ...

    def recurrent_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The recurrent layers' weights and biases (not the embedding or the decoder), by name."""

    def weight_matrices(self) -> list[tuple[str, nn.Parameter]]:
        """Every weight matrix (``dim >= 2``: embedding, recurrent layers, decoder; biases excluded), each once,
        in ``named_parameters`` order: the set the pruning-at-init proxies sum over."""

    def num_parameters(self) -> int: ...

    def macs_per_token(self) -> Optional[int]:
        """Multiply-accumulates per token of the whole model, or None when they are not known."""

    def named_parameters(self, *args, **kwargs): ...

    def parameters(self, *args, **kwargs): ...


def model_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
