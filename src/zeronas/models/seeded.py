"""The seeded initial model of a recipe, built part by part: only the parts a proxy reads, each drawn once.

:func:`~zeronas.models.lm.build_model` with a seed draws, from one generator seeded with it: the embedding
(U(-0.1, 0.1)), the decoder weight when it is not tied, then every parameter of layer 1, layer 2, ... in parameter
order. :class:`SeededParts` makes exactly those draws, in that order, but only as far as asked: a proxy that
reads the embedding and layer 1 never pays for the other layers or the decoder, and layer 1's weights are the
full model's, bit for bit. (``build_model`` also draws the default initialisation from the global generator
before overwriting it; here nothing is drawn twice and the global generator is not touched.)

The embedding (and an untied decoder) come first and depend on the seed and sizes alone, not on the cell, so they
are drawn once per process (:func:`seeded_head`) and shared, read-only, by every cell's parts. So are the draws
right after them: every cell's first layer takes its weights from the start of that stream (all with the same
bound), so each cell's first layer is a copy of a slice of draws made once per process.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional

import torch
import torch.nn.functional as F

from zeronas.cells.recipe import Cell
from zeronas.models.cell import CellLayer
from zeronas.models.lm import ModelConfig, RNNModel

Tensor = torch.Tensor


class _Draws:
    """The first draws after a seeded model's head, as ``U(-bound, bound)``, kept per process: every cell's first
    layer (whose weights are the first draws after the head, all with the same bound) is a slice of them. Grows
    to the largest first layer asked for, by drawing on from where it stopped; the drawn values are those of
    drawing each parameter in turn (a CPU generator draws one number per element, in order)."""

    def __init__(self, state: Tensor, bound: float) -> None:
        self.values = torch.empty(0)
        self.bound = bound
        self._state = state

    def first(self, n: int) -> Tensor:
        if n > self.values.numel():
            gen = torch.Generator().set_state(self._state)
            more = torch.empty(n - self.values.numel()).uniform_(-self.bound, self.bound, generator=gen)
            self.values = torch.cat([self.values, more])
            self._state = gen.get_state()
        return self.values[:n]


@lru_cache(maxsize=2)
def _first_layer_draws(vocab_size: int, emb_size: int, decoder_in: Optional[int], seed: int, bound: float) -> _Draws:
    return _Draws(seeded_head(vocab_size, emb_size, decoder_in, seed)[2], bound)


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
        self._key = (vocab_size, config.emb_size, None if config.tie_weights else sizes[-1][1], seed)
        head = seeded_head(*self._key)
        self.embedding = head[0].to(self.device)
        self.decoder_weight = head[1].to(self.device) if head[1] is not None else None
        self._head_state = head[2]
        self._generator: Optional[torch.Generator] = None  # where the next layer's draws start, once needed
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
            if not self._layers:  # the first draws after the head: a slice of the per-process ones
                draws = _first_layer_draws(*self._key, 1.0 / math.sqrt(n_out))
                layer = CellLayer(self.cell, n_in, n_out, weight_drop=self.config.wdrop, draws=draws.first)
            else:
                layer = CellLayer(self.cell, n_in, n_out, weight_drop=self.config.wdrop, generator=self._after())
            self._layers.append(layer.to(self.device).eval())
        return self._layers[index]

    def _after(self) -> torch.Generator:
        """The generator where the next layer's draws start: after the head and the layers built so far (the
        first layer's values came from the per-process draws, so the generator skips them by drawing them)."""
        if self._generator is None:
            self._generator = torch.Generator().set_state(self._head_state)
            first = self._layers[0]
            skipped = sum(p.numel() for p in first.parameters())
            bound = 1.0 / math.sqrt(first.hidden_size)
            torch.empty(skipped).uniform_(-bound, bound, generator=self._generator)
        return self._generator

    def model(self) -> RNNModel:
        """The whole model (every layer built), sharing these parts."""
        if self._model is None:
            layers = [self.layer(i) for i in range(self.config.n_layers)]
            model = RNNModel.from_parts(self.cell, self.config, self.embedding, layers, self.decoder_weight)
            self._model = model.to(self.device).eval()
        return self._model
