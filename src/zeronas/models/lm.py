"""The NAS-Bench-NLP language model: embedding -> stacked cell layers -> tied decoder (AWD-LSTM style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.models.cell import CellLayer
from zeronas.models.contract import ACTIVATIONS, RECIPE
from zeronas.models.macs import lm_macs
from zeronas.models.matmul import fast_linear
from zeronas.models.stack import LayerStackLM

Tensor = torch.Tensor
State = list[tuple[Tensor, ...]]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and regularisation. Defaults are the NAS-Bench-NLP PTB setup; dropouts are the repo defaults."""

    emb_size: int = 400
    hidden_size: int = 600
    n_layers: int = 3
    tie_weights: bool = True
    dropout: float = 0.4  # on the last layer's output
    dropouth: float = 0.25  # between layers
    dropouti: float = 0.4  # on the embedding output
    dropoute: float = 0.1  # whole words of the embedding
    wdrop: float = 0.5  # recurrent weights (DropConnect)

    def layer_sizes(self) -> list[tuple[int, int]]:
        """(input size, output size) of each recurrent layer; the last one is emb-sized when the decoder is tied."""
        sizes = []
        for layer in range(self.n_layers):
            n_in = self.emb_size if layer == 0 else self.hidden_size
            last = layer == self.n_layers - 1
            n_out = (self.emb_size if self.tie_weights else self.hidden_size) if last else self.hidden_size
            sizes.append((n_in, n_out))
        return sizes

    def without_dropout(self) -> "ModelConfig":
        return ModelConfig(**{**asdict(self), "dropout": 0.0, "dropouth": 0.0, "dropouti": 0.0,
                              "dropoute": 0.0, "wdrop": 0.0})


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Variational dropout: one mask per sequence, shared by all time steps (x is (T, B, D))."""
    if not training or p == 0:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - p) / (1 - p)
    return x * mask


def embedding_dropout(weight: Tensor, tokens: Tensor, p: float, training: bool) -> Tensor:
    """Drop whole words (rows of the embedding matrix)."""
    if training and p > 0:
        mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)
        weight = weight * mask
    return F.embedding(tokens, weight)


class RNNModel(LayerStackLM):
    """Language model over token ids ``(T, B)``; returns logits ``(T, B, V)`` and the new state. Implements the
    :class:`~zeronas.models.contract.RecurrentLM` contract with every capability."""

    def __init__(self, cell: Cell | dict | str, vocab_size: int, config: ModelConfig | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        config = config or ModelConfig()
        if overrides:
            config = ModelConfig(**{**asdict(config), **overrides})
        cell = parse_recipe(cell) if not isinstance(cell, Cell) else cell
        sizes = config.layer_sizes()
        # built in this order (embedding, layers, decoder), which fixes the draws from the global generator
        encoder = nn.Embedding(vocab_size, config.emb_size)
        layers = [CellLayer(cell, i, o, weight_drop=config.wdrop) for i, o in sizes]
        self._attach(cell, config, encoder, layers, nn.Linear(sizes[-1][1], vocab_size))
        self.init_weights()

    @classmethod
    def from_parts(cls, cell: Cell, config: ModelConfig, embedding: Tensor, layers: Sequence[CellLayer],
                   decoder_weight: Optional[Tensor] = None) -> "RNNModel":
        """A model of given parts, drawing nothing: ``embedding`` ``(V, E)`` becomes the encoder's weight (its
        storage shared, not copied; the decoder's too when tied), ``layers`` are used as they are, the decoder
        bias is zero (as :meth:`init_weights` sets it) and ``decoder_weight`` is the untied decoder's weight."""
        model = cls.__new__(cls)
        LayerStackLM.__init__(model)
        vocab_size = embedding.shape[0]
        if len(layers) != config.n_layers:
            raise ValueError(f"from_parts: {len(layers)} layer(s) given, the config has {config.n_layers}")
        decoder = nn.Linear(config.layer_sizes()[-1][1], vocab_size, device="meta")
        decoder.bias = nn.Parameter(torch.zeros(vocab_size, device=embedding.device))
        if not config.tie_weights:
            if decoder_weight is None:
                raise ValueError("from_parts: an untied decoder needs its decoder_weight")
            decoder.weight = nn.Parameter(decoder_weight)
        model._attach(cell, config, nn.Embedding(vocab_size, config.emb_size, _weight=embedding), layers, decoder)
        return model

    def _attach(self, cell: Cell, config: ModelConfig, encoder: nn.Embedding, layers: Sequence[CellLayer],
                decoder: nn.Linear) -> None:
        self.config = config
        self.cell = cell
        self.vocab_size = encoder.num_embeddings
        self.emb_size = config.emb_size
        self.encoder = encoder
        self.layers = nn.ModuleList(layers)
        self.decoder = decoder
        if config.tie_weights:
            self.decoder.weight = self.encoder.weight

    def init_weights(self, generator: Optional[torch.Generator] = None) -> None:
        """AWD-LSTM: embedding ~ U(-0.1, 0.1), decoder bias 0; cells keep NAS-Bench-NLP's uniform init."""
        with torch.no_grad():
            self.encoder.weight.uniform_(-0.1, 0.1, generator=generator)
            self.decoder.bias.zero_()
            if not self.config.tie_weights:
                self.decoder.weight.uniform_(-0.1, 0.1, generator=generator)
        for layer in self.layers:
            layer.reset_parameters(generator)

    def embed(self, tokens: Tensor) -> Tensor:
        emb = embedding_dropout(self.encoder.weight, tokens, self.config.dropoute, self.training)
        return locked_dropout(emb, self.config.dropouti, self.training)

    def between_layers(self, out: Tensor) -> Tensor:
        return locked_dropout(out, self.config.dropouth, self.training)

    def decode(self, hidden_out: Tensor, return_dropped: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Logits of the last layer's outputs (after output dropout); with ``return_dropped``, also the dropped
        outputs (training's activation regularisation reads them)."""
        dropped = locked_dropout(hidden_out, self.config.dropout, self.training)
        if all(layer.fast_backward for layer in self.layers):
            logits = fast_linear(dropped, self.decoder.weight, self.decoder.bias)
        else:
            logits = self.decoder(dropped)
        return (logits, dropped) if return_dropped else logits

    def capabilities(self) -> frozenset[str]:
        return frozenset({ACTIVATIONS, RECIPE})

    def macs_per_token(self) -> int:
        return lm_macs(self.cell, self.config.layer_sizes(), self.vocab_size)


def detach_state(hidden: State) -> State:
    return [tuple(h.detach() for h in layer) for layer in hidden]


def count_parameters(cell: Cell, vocab_size: int = 10000, config: ModelConfig | None = None) -> int:
    """The trainable parameter count of ``RNNModel(cell, vocab_size, config)`` without building it."""
    config = config or ModelConfig()
    total = vocab_size * config.emb_size + vocab_size  # tied embedding/decoder + decoder bias
    if not config.tie_weights:
        raise NotImplementedError("count_parameters assumes tied weights; build the model instead")
    for n_in, n_out in config.layer_sizes():
        for node in cell.order:
            if cell.op(node) == "linear":
                total += n_out + sum((n_in if s == "x" else n_out) * n_out for s in cell.node_inputs(node))
    return total


def build_model(recipe: Cell | dict | str, vocab_size: int = 10000, *, seed: int | None = None,
                config: ModelConfig | None = None, **overrides: Any) -> RNNModel:
    """Build a model; with a seed, the initial weights are a pure function of (recipe, sizes, seed)."""
    if seed is None:
        return RNNModel(recipe, vocab_size, config, **overrides)
    gen = torch.Generator().manual_seed(seed)
    model = RNNModel(recipe, vocab_size, config, **overrides)
    model.init_weights(gen)
    return model


__all__: Sequence[str] = ["ModelConfig", "RNNModel", "build_model", "count_parameters", "detach_state"]
