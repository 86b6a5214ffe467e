"""What a proxy sees: the model (a fresh copy per call), a seeded probe batch of real tokens, a cache.

The model is either built from a cell-language recipe with the config's seeded initialisation, or a user's own
model (:class:`~zeronas.models.contract.RecurrentLM`, e.g. an adapted ``nn.LSTM`` language model) scored with
the weights it has."""

from __future__ import annotations

import copy
from functools import cached_property
from typing import Any

import torch

from zeronas.cells.recipe import Cell
from zeronas.models.contract import CAPABILITIES, RecurrentLM, model_dtype
from zeronas.models.lm import ModelConfig, build_model
from zeronas.models.macs import lm_macs
from zeronas.core.config import ScoringConfig

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
        self._template: RecurrentLM | None = None  # never handed out: model() returns copies
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
        own weights).

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

    def randn(self, *shape: int, offset: int = 0, dtype: torch.dtype | None = None) -> Tensor:
        """Seeded Gaussian draws, in the model's dtype unless ``dtype`` is given."""
        return torch.randn(*shape, generator=self.generator(offset), device=self.device, dtype=dtype or self.dtype)
