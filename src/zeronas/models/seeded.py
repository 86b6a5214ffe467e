"""The seeded initial model of a recipe, built part by part: only the parts a proxy reads, each drawn once.

:func:`~zeronas.models.lm.build_model` with a seed draws, from one generator seeded with it: the embedding
(U(-0.1, 0.1)), the decoder weight when it is not tied, then every parameter of layer 1, layer 2, ... in parameter
order. :class:`SeededParts` makes exactly those draws, in that order, but only as far as asked: a proxy that
reads the embedding and layer 1 never pays for the other layers or the decoder, and layer 1's weights are the
full model's, bit for bit. (``build_model`` also draws the default initialisation from the global generator
before overwriting it; here nothing is drawn twice and the global generator is not touched.)

The embedding (and an untied decoder) come first and depend on the seed and sizes alone, not on the cell, so they
are drawn once per process (:func:`seeded_head`) and shared, read-only, by every cell's parts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import torch
import torch.nn.functional as F

from zeronas.cells.recipe import Cell
from zeronas.models.cell import CellLayer
from zeronas.models.lm import ModelConfig, RNNModel

Tensor = torch.Tensor


@lru_cache(maxsize=2)
def seeded_head(vocab_size: int, emb_size: int, decoder_in: Optional[int], seed: int
                ) -> tuple[Tensor, Optional[Tensor], Tensor]:
    """``(embedding, untied decoder weight or None, the generator's state after them)`` of a seeded model on the
    CPU: the draws ``build_model`` makes first. Shared by every caller: never modify them."""
    gen = torch.Generator().manual_seed(seed)
    embedding = torch.empty(vocab_size, emb_size).uniform_(-0.1, 0.1, generator=gen)
    decoder = None
    if decoder_in is not None:
        decoder = torch.empty(vocab_size, decoder_in).uniform_(-0.1, 0.1, generator=gen)
    return embedding, decoder, gen.get_state()


class SeededParts:
    """The parts of ``build_model(cell, vocab_size, seed=seed, config=config)`` (in eval mode, on ``device``),
    each built when first asked for. Layers are built in order (layer ``k`` needs the draws of the layers before
    it); the parts are this object's own, read-only: :meth:`model` assembles a model that shares them."""

    def __init__(self, cell: Cell, vocab_size: int, config: ModelConfig, seed: int,
                 device: torch.device | str = "cpu") -> None:
        self.cell = cell
        self.config = config
        self.device = torch.device(device)
        sizes = config.layer_sizes()
        head = seeded_head(vocab_size, config.emb_size, None if config.tie_weights else sizes[-1][1], seed)
        self.embedding = head[0].to(self.device)
        self.decoder_weight = head[1].to(self.device) if head[1] is not None else None
        self._generator = torch.Generator().set_state(head[2])
        self._layers: list[CellLayer] = []
        self._model: Optional[RNNModel] = None

    @property
    def n_layers(self) -> int:
        return self.config.n_layers

    def embed(self, tokens: Tensor) -> Tensor:
        """The embedding of token ids, as the model in eval mode computes it (no dropout); no gradient."""
        with torch.no_grad():
            return F.embedding(tokens, self.embedding)

    def layer(self, index: int) -> CellLayer:
        """Layer ``index`` (0-based), drawing the layers before it first if they are not built yet."""
        if not 0 <= index < self.config.n_layers:
            raise IndexError(f"layer {index} does not exist: the model has {self.config.n_layers} layer(s)")
        sizes = self.config.layer_sizes()
        while len(self._layers) <= index:
            n_in, n_out = sizes[len(self._layers)]
            layer = CellLayer(self.cell, n_in, n_out, weight_drop=self.config.wdrop, generator=self._generator)
            self._layers.append(layer.to(self.device).eval())
        return self._layers[index]

    def model(self) -> RNNModel:
        """The whole model (every layer built), sharing these parts."""
        if self._model is None:
            layers = [self.layer(i) for i in range(self.config.n_layers)]
            model = RNNModel.from_parts(self.cell, self.config, self.embedding, layers, self.decoder_weight)
            self._model = model.to(self.device).eval()
        return self._model
