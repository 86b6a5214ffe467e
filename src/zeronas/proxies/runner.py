"""Score a cell with a list of proxies. A failure is a result with a status, never a made-up number."""

from __future__ import annotations

import math
import time
import traceback
from typing import Any, Iterable

import torch

from zeronas.cells.recipe import Cell
from zeronas.core.config import ScoringConfig
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import Unsupported, get_proxy
from zeronas.core.score import UNSUPPORTED, Score

_NEEDS = {"activations": "per-activation observations (run_layers' observer)",
          "recipe": "a cell-language recipe of the layers' step"}


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


def run_proxy(name: str, ctx: ScoringContext) -> Score:
    """Run one proxy; NaN, inf, out-of-memory and exceptions become statuses with a message. A proxy that needs a
    capability the model lacks is not run: its score is ``unsupported`` with the reason."""
    spec = get_proxy(name)
    missing = sorted(spec.requires - ctx.capabilities())
    if missing:
        return Score(name, None, UNSUPPORTED, f"needs {_NEEDS[missing[0]]}, which this model does not offer")
    start = time.perf_counter()
    try:
        value = spec.fn(ctx)
        value = float(value)
    except Unsupported as exc:
        return Score(name, None, UNSUPPORTED, str(exc), time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - any failure of a proxy is recorded, the run goes on
        seconds = time.perf_counter() - start
        status = "oom" if _is_oom(exc) else "error"
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        loc = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
        return Score(name, None, status, f"{type(exc).__name__}: {exc}{loc}", seconds)
    seconds = time.perf_counter() - start
    if math.isnan(value):
        return Score(name, None, "nan", "the proxy evaluated to NaN", seconds)
    if math.isinf(value):
        return Score(name, None, "inf", f"the proxy evaluated to {'+' if value > 0 else '-'}inf", seconds)
    return Score(name, value, "ok", "", seconds)


def score_cell(cell: Cell, proxies: Iterable[str], config: ScoringConfig | None = None,
               corpus: Any | None = None) -> dict[str, Score]:
    """Score ``cell`` with each named proxy under ``config`` (default: :class:`ScoringConfig`)."""
    config = config or ScoringConfig()
    return _run_proxies(proxies, ScoringContext(cell, config, corpus))


def _run_proxies(proxies: Iterable[str], ctx: ScoringContext) -> dict[str, Score]:
    """Each proxy on ``ctx``, the global generator seeded before each (for any library code that draws from it)
    and restored afterwards."""
    results: dict[str, Score] = {}
    names = list(proxies)
    with torch.random.fork_rng(devices=[]):
        for i, name in enumerate(names):
            torch.manual_seed(ctx.config.seed)
            ctx.upcoming = tuple(names[i + 1:])
            results[name] = run_proxy(name, ctx)
    ctx.upcoming = None
    return results


class TokenStream:
    """A user's token ids ``(N,)`` standing in for a corpus: every split is the same stream."""

    def __init__(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens
        self.name = "tokens"

    def split(self, name: str) -> torch.Tensor:
        return self.tokens


def _probe_source(tokens: Any, model: Any, config: ScoringConfig) -> Any:
    """The corpus (or token stream) to draw probe batches from, checked against the model's vocabulary."""
    from zeronas.data.corpus import Corpus

    if tokens is None:
        return None  # the config's corpus, loaded by the context
    if isinstance(tokens, Corpus):
        source, ids = tokens, tokens.split(config.probe_split)
    elif isinstance(tokens, torch.Tensor):
        if tokens.dim() != 1 or tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"tokens: expected a 1-D tensor of integer token ids, got a {tokens.dim()}-D "
                             f"{tokens.dtype} tensor")
        ids = tokens.long()
        source = TokenStream(ids)
    else:
        raise TypeError(f"tokens: expected a zeronas Corpus or a 1-D tensor of token ids, got {type(tokens).__name__}")
    if ids.numel() < config.seq_len + 1:
        raise ValueError(f"tokens: {ids.numel()} token(s), fewer than one probe sequence needs "
                         f"(seq_len + 1 = {config.seq_len + 1})")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= model.vocab_size:
        raise ValueError(f"tokens: ids run from {low} to {high}, but the model's vocabulary has {model.vocab_size} "
                         "entries (ids 0 to vocab_size - 1)")
    return source


def score_model(model: torch.nn.Module, proxies: Iterable[str] | None = None, *, tokens: Any | None = None,
                config: ScoringConfig | None = None) -> dict[str, Score]:
    """Score any recurrent language model, as given (its own weights), with each named proxy (default: all).

    ``model`` is a :class:`~zeronas.models.contract.RecurrentLM` (zeronas's own ``RNNModel`` is one) or a module
    an adapter takes (``nn.Embedding`` + ``nn.LSTM``/``GRU``/``RNN`` + ``nn.Linear``, see
    :mod:`zeronas.models.adapters`). The probe batch comes from ``tokens`` (a :class:`~zeronas.data.corpus.Corpus`
    or a 1-D tensor of token ids) or else the config's corpus; ``config`` sets the probe batch, the seed of every
    random draw and the device (its model sizes do not apply). Returns the same :class:`Score` objects as
    :func:`score_cell`: failures are statuses, and a proxy this kind of model cannot support is ``unsupported``
    with its reason. The model itself is never modified."""
    from zeronas.models.adapters import adapt_lm
    from zeronas.proxies.device import check_config
    from zeronas.proxies.registry import list_proxies

    config = config or ScoringConfig()
    check_config(config)
    lm = adapt_lm(model)
    names = [s.name for s in list_proxies()] if proxies is None else list(proxies)
    for name in names:
        get_proxy(name)
    source = _probe_source(tokens, lm, config)
    ctx = ScoringContext(None, config, source, model=lm)
    if source is None:
        _probe_source(ctx.corpus.split(config.probe_split), lm, config)
    return _run_proxies(names, ctx)
