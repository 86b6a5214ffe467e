"""What a proxy sees: the cell, a freshly initialised model, a seeded probe batch of real tokens, a cache."""

from __future__ import annotations

import copy
from functools import cached_property
from typing import Any

import torch

from zeronas.cells.recipe import Cell
from zeronas.models.lm import ModelConfig, RNNModel, build_model
from zeronas.proxies.config import ScoringConfig

Tensor = torch.Tensor


class ScoringContext:
    """One per (cell, config). Every call to :meth:`model` returns a new model with identical weights, so a
    proxy may modify its model freely; :attr:`cache` lets related proxies share work (e.g. the NTK)."""

    def __init__(self, cell: Cell, config: ScoringConfig, corpus: Any | None = None) -> None:
        self.cell = cell
        self.config = config
        self._corpus = corpus
        self.cache: dict[str, Any] = {}
        self.device = torch.device(config.device)
        self._template: RNNModel | None = None  # never handed out: model() returns copies

    @cached_property
    def corpus(self):
        if self._corpus is None:
            from zeronas.data.corpus import load_ptb

            if self.config.corpus != "ptb":
                raise ValueError(f"unknown corpus {self.config.corpus!r}")
            self._corpus = load_ptb()
        return self._corpus

    @property
    def vocab_size(self) -> int:
        return len(self.corpus.vocab)

    @cached_property
    def _probe(self) -> tuple[Tensor, Tensor]:
        from zeronas.data.corpus import probe_batch

        split = self.corpus.split(self.config.probe_split)
        inputs, targets = probe_batch(split, self.config.batch_size, self.config.seq_len, self.config.seed)
        return inputs.to(self.device), targets.to(self.device)

    @property
    def inputs(self) -> Tensor:
        """Probe token ids, time-major ``(seq_len, batch_size)``."""
        return self._probe[0]

    @property
    def targets(self) -> Tensor:
        return self._probe[1]

    def model_config(self) -> ModelConfig:
        c = self.config
        return ModelConfig(emb_size=c.emb_size, hidden_size=c.hidden_size, n_layers=c.n_layers).without_dropout()

    def model(self, fast_backward: bool = True) -> RNNModel:
        """A new model in eval mode (no dropout) with the config's seeded initial weights.

        The seeded initialisation runs once per context; each call returns a deep copy of that model (a fifth
        of the cost of drawing 11M random weights again), with the same weights bit for bit."""
        if self._template is None:
            if self.config.init != "nasbench-nlp":
                raise ValueError(f"unknown initialisation {self.config.init!r}")
            template = build_model(self.cell, self.vocab_size, seed=self.config.seed, config=self.model_config())
            self._template = template.to(self.device).eval()
        model = copy.deepcopy(self._template)
        for layer in model.layers:
            layer.fast_backward = fast_backward
        return model

    def generator(self, offset: int = 0) -> torch.Generator:
        """A seeded generator for a proxy's own random draws (noise, Gaussian inputs)."""
        return torch.Generator(device=self.device).manual_seed(self.config.seed * 1_000_003 + offset)

    def randn(self, *shape: int, offset: int = 0, dtype: torch.dtype = torch.float32) -> Tensor:
        return torch.randn(*shape, generator=self.generator(offset), device=self.device, dtype=dtype)
