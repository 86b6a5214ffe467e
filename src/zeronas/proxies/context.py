"""What a proxy sees: the model (a fresh copy per call), a seeded probe batch of real tokens, a cache.

The model is either built from a cell-language recipe with the config's seeded initialisation, or a user's own
model (:class:`~zeronas.models.contract.RecurrentLM`, e.g. an adapted ``nn.LSTM`` language model) scored with
the weights it has.

A proxy that reads only part of the model asks for those parts, read-only: :meth:`ScoringContext.embed` (and
:attr:`~ScoringContext.embedded_inputs`, the probe batch embedded once), :meth:`~ScoringContext.layer` and
:meth:`~ScoringContext.layer_outputs`. For a recipe they are built on demand, in the seeded order (see
:mod:`zeronas.models.seeded`), so the other layers and the decoder are never built for it; the embedding is
drawn once per process. A proxy that needs the whole model, or changes it, asks for :meth:`~ScoringContext.model`.
"""

from __future__ import annotations

import copy
from functools import cached_property
from typing import Any

import torch

from zeronas.cells.recipe import Cell
from zeronas.models.contract import CAPABILITIES, RecurrentLM, model_dtype
from zeronas.models.lm import ModelConfig
from zeronas.models.macs import lm_macs
from zeronas.core.config import ScoringConfig
from zeronas.models.seeded import SeededParts

Tensor = torch.Tensor


class ReadOnlyCorpus:
    """What a proxy sees of the corpus: every tensor it hands out is a copy, so a proxy that writes into a split
    (or into the vocabulary) changes nothing for the proxies and cells after it."""

    def __init__(self, corpus: Any) -> None:
        self.raw = corpus

    def split(self, name: str) -> Tensor:
        return self.raw.split(name).clone()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.raw, name)
        if isinstance(value, Tensor):
            return value.clone()
        if name == "vocab":
            return copy.deepcopy(value)
        return value


class ScoringContext:
    """One per (cell or model, config). Every call to :meth:`model` returns a new model with identical weights,
    so a proxy may modify its model freely; :attr:`cache` lets related proxies share work (e.g. the NTK).

    With ``model`` (a :class:`~zeronas.models.contract.RecurrentLM`), that model is scored as given: its weights,
    its dtype; the config's sizes and initialisation do not apply, and ``cell`` is the model's own recipe (None
    for a model that no recipe describes)."""

    def __init__(self, cell: Cell | None, config: ScoringConfig, corpus: Any | None = None,
                 model: RecurrentLM | None = None) -> None:
        self.config = config
        self._corpus = corpus.raw if isinstance(corpus, ReadOnlyCorpus) else corpus
        self.cache: dict[str, Any] = {}
        self.device = torch.device(config.device)
        self._template: RecurrentLM | None = None  # whole model; model() hands out copies, read_only_model() it
        self._parts: SeededParts | None = None  # a recipe's seeded parts, built as they are asked for
        # the proxies still to run on this context after the current one, when the caller knows them (the
        # runner does): lets a proxy drop shared work from the cache once no later proxy will read it
        self.upcoming: tuple[str, ...] | None = None
        self._user_model = model is not None
        if model is not None:
            self._template = copy.deepcopy(model).to(self.device).eval()
            cell = model.cell
        self.cell = cell
        if corpus is None and config.corpus.startswith("sha256:"):
            # a user's text can fail to load (moved, changed): fail here, not as every proxy's "error" score
            self._raw_corpus  # noqa: B018

    @property
    def corpus(self) -> ReadOnlyCorpus:
        """The config's corpus (ptb, wikitext-2, or a user's text checked against its digest), unless given; what a
        proxy gets of it are copies (:class:`ReadOnlyCorpus`)."""
        return ReadOnlyCorpus(self._raw_corpus)

    @cached_property
    def _raw_corpus(self) -> Any:
        if self._corpus is None:
            from zeronas.data.corpus import load_scoring_corpus

            self._corpus = load_scoring_corpus(self.config.corpus, self.config.corpus_path)
        return self._corpus

    @property
    def user_model(self) -> bool:
        """True when the context scores a user's model (as given), False for a recipe's seeded model."""
        return self._user_model

    def might_run(self, proxy: str) -> bool:
        """Whether ``proxy`` is among :attr:`upcoming` (False when the caller did not say)."""
        return self.upcoming is not None and proxy in self.upcoming

    @property
    def vocab_size(self) -> int:
        if self._user_model:
            return self._template.vocab_size  # type: ignore[union-attr]
        return len(self._raw_corpus.vocab)

    @property
    def emb_size(self) -> int:
        """The width of the embedding (the first layer's input)."""
        return self._template.emb_size if self._user_model else self.config.emb_size  # type: ignore[union-attr]

    @property
    def dtype(self) -> torch.dtype:
        """The model's dtype: float32 for a recipe, whatever a user's model has."""
        return model_dtype(self._template) if self._user_model else torch.float32  # type: ignore[arg-type]

    def capabilities(self) -> frozenset[str]:
        """What the model offers beyond the contract (a recipe's model offers everything)."""
        if self._user_model:
            return self._template.capabilities()  # type: ignore[union-attr]
        return frozenset(CAPABILITIES)

    def macs_per_token(self) -> int | None:
        """The model's MACs per token; for a recipe in closed form, without building the model."""
        if self._user_model:
            return self._template.macs_per_token()  # type: ignore[union-attr]
        return lm_macs(self.cell, self.model_config().layer_sizes(), self.vocab_size)  # type: ignore[arg-type]

    @cached_property
    def _probe(self) -> tuple[Tensor, Tensor]:
        from zeronas.data.corpus import probe_batch

        split = self._raw_corpus.split(self.config.probe_split)  # probe_batch copies the windows it takes
        inputs, targets = probe_batch(split, self.config.batch_size, self.config.seq_len, self.config.seed)
        return inputs.to(self.device), targets.to(self.device)

    @property
    def inputs(self) -> Tensor:
        """Probe token ids, time-major ``(seq_len, batch_size)``: a copy, so a proxy that writes into it changes
        nothing for the proxies after it."""
        return self._probe[0].clone()

    @property
    def targets(self) -> Tensor:
        """The next tokens of :attr:`inputs` (a copy)."""
        return self._probe[1].clone()

    def model_config(self) -> ModelConfig:
        c = self.config
        return ModelConfig(emb_size=c.emb_size, hidden_size=c.hidden_size, n_layers=c.n_layers).without_dropout()

    def model(self, fast_backward: bool = True) -> RecurrentLM:
        """A new model in eval mode (no dropout) with the config's seeded initial weights (a user's model: its
        own weights), which the proxy may change freely.

        The seeded initialisation runs once per context; each call returns a deep copy of that model (a fifth
        of the cost of drawing 11M random weights again), with the same weights bit for bit."""
        model = copy.deepcopy(self._whole())
        for layer in model.layers:
            layer.fast_backward = fast_backward
        return model

    def read_only_model(self, fast_backward: bool = True) -> RecurrentLM:
        """The context's own whole model, not a copy: for a proxy that only runs it (no gradient of its weights,
        no change to them, no dtype conversion), which saves the copy :meth:`model` makes."""
        model = self._whole()
        for layer in model.layers:
            layer.fast_backward = fast_backward
        return model

    def _whole(self) -> RecurrentLM:
        if self._template is None:
            self._template = self._seeded().model()
        return self._template

    def _seeded(self) -> SeededParts:
        if self._parts is None:
            if self.config.init != "nasbench-nlp":
                raise ValueError(f"unknown initialisation {self.config.init!r}")
            self._parts = SeededParts(self.cell, self.vocab_size, self.model_config(),  # type: ignore[arg-type]
                                      self.config.seed, self.device)
        return self._parts

    @property
    def n_layers(self) -> int:
        return len(self._template.layers) if self._user_model else self.config.n_layers  # type: ignore[union-attr]

    def layer(self, index: int, fast_backward: bool = True) -> Any:
        """Layer ``index`` (0-based) of the model, read-only (run it, do not change it); for a recipe built
        without the layers after it or the decoder."""
        if not 0 <= index < self.n_layers:
            raise IndexError(f"layer {index} does not exist: the model has {self.n_layers} layer(s)")
        if self._user_model:
            layer = self._template.layers[index]  # type: ignore[union-attr]
        else:
            layer = self._seeded().layer(index)
        layer.fast_backward = fast_backward
        return layer

    def embed(self, tokens: Tensor) -> Tensor:
        """The model's embedding of token ids ``(T, B)`` (eval mode), without a gradient; for a recipe without
        building any layer."""
        with torch.no_grad():
            if self._user_model:
                return self._template.embed(tokens)  # type: ignore[union-attr]
            return self._seeded().embed(tokens)

    @cached_property
    def _embedded(self) -> Tensor:
        return self.embed(self._probe[0])

    @property
    def embedded_inputs(self) -> Tensor:
        """The probe batch embedded ``(T, B, E)``, computed once per context (a copy, like :attr:`inputs`)."""
        return self._embedded.clone()

    def layer_outputs(self, index: int) -> Tensor:
        """The outputs ``(T, B, H)`` of layer ``index`` (0-based) on the probe batch from the zero state, as
        ``run_layers`` computes them on the fast path, without a gradient; computed once per context (a copy).
        For a recipe only the layers up to ``index`` run (between two layers a recipe in eval mode applies
        nothing); a user's model runs through its own ``run_layers``."""
        return self._layer_outputs(index).clone()

    def _layer_outputs(self, index: int) -> Tensor:
        key = f"context/layer_outputs/{index}"
        if key not in self.cache:
            if not 0 <= index < self.n_layers:
                raise IndexError(f"layer {index} does not exist: the model has {self.n_layers} layer(s)")
            with torch.no_grad():
                if self._user_model:
                    outputs, _ = self.read_only_model().run_layers(self._embedded, return_all=True)
                    for i, out in enumerate(outputs):  # type: ignore[arg-type]
                        self.cache[f"context/layer_outputs/{i}"] = out
                else:
                    below = self._embedded if index == 0 else self._layer_outputs(index - 1)
                    self.cache[key] = self.layer(index)(below)[0]
        return self.cache[key]

    def generator(self, offset: int = 0) -> torch.Generator:
        """A seeded generator for a proxy's own random draws (noise, Gaussian inputs)."""
        return torch.Generator(device=self.device).manual_seed(self.config.seed * 1_000_003 + offset)

    def randn(self, *shape: int, offset: int = 0, dtype: torch.dtype | None = None) -> Tensor:
        """Seeded Gaussian draws, in the model's dtype unless ``dtype`` is given."""
        return torch.randn(*shape, generator=self.generator(offset), device=self.device, dtype=dtype or self.dtype)
