"""What every recurrent language model of zeronas shares: embedding -> a stack of recurrent layers -> decoder.

:class:`LayerStackLM` implements the layer-stack part of the :class:`~zeronas.models.contract.RecurrentLM`
contract once, for the recipe model (:class:`~zeronas.models.lm.RNNModel`) and the adapters
(:class:`~zeronas.models.adapters.AdaptedLM`). A subclass sets ``encoder``, ``layers``, ``decoder`` and
``vocab_size`` and defines ``embed`` and ``decode``; ``between_layers`` is where it may regularise (dropout).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from zeronas.models.contract import Observer, State

Tensor = torch.Tensor


class LayerStackLM(nn.Module):
    encoder: nn.Embedding
    layers: nn.ModuleList
    decoder: nn.Linear
    vocab_size: int

    def embed(self, tokens: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, hidden_out: Tensor) -> Tensor:
        raise NotImplementedError

    def between_layers(self, out: Tensor) -> Tensor:
        """Applied to every layer's output but the last before the next layer reads it; nothing by default."""
        return out

    def init_hidden(self, batch_size: int) -> State:
        ref = self.encoder.weight
        return [layer.init_state(batch_size, ref) for layer in self.layers]

    def run_layers(self, emb: Tensor, hidden: Optional[State] = None, observer: Optional[Observer] = None,
                   return_all: bool = False) -> tuple[Tensor | list[Tensor], State]:
        """The recurrent part: from embedding-level input ``(T, B, E)`` to the last layer's outputs (every
        layer's with ``return_all``). The observer sees node names prefixed with the layer index."""
        out = emb
        new_hidden: State = []
        per_layer: list[Tensor] = []
        for i, layer in enumerate(self.layers):
            layer_observer = None
            if observer is not None:
                layer_observer = (lambda node, op, pre, post, _i=i: observer(f"{_i}.{node}", op, pre, post))
            out, h = layer(out, hidden[i] if hidden is not None else None, layer_observer)
            new_hidden.append(h)
            per_layer.append(out)
            if i < len(self.layers) - 1:
                out = self.between_layers(out)
        return (per_layer if return_all else out), new_hidden

    def forward(self, tokens: Tensor, hidden: Optional[State] = None) -> tuple[Tensor, State]:
        out, new_hidden = self.run_layers(self.embed(tokens), hidden)
        return self.decode(out), new_hidden  # type: ignore[arg-type]

    def loss(self, tokens: Tensor, targets: Tensor, hidden: Optional[State] = None) -> tuple[Tensor, State]:
        """Mean cross-entropy per token (nats)."""
        logits, new_hidden = self(tokens, hidden)
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1)), new_hidden

    def recurrent_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The recurrent layers' weights and biases (not the embedding or the decoder), by name."""
        return [(n, p) for n, p in self.named_parameters() if n.startswith("layers.")]

    def weight_matrices(self) -> list[tuple[str, nn.Parameter]]:
        """The contract's one weight-matrix selection: parameters with ``dim >= 2`` in ``named_parameters`` order
        (which lists a tied embedding/decoder matrix once); biases excluded."""
        return [(n, p) for n, p in self.named_parameters() if p.dim() >= 2]

    def num_parameters(self) -> int:
        """Trainable parameters, a tied embedding/decoder matrix counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
