"""Score a cell with a list of proxies. A failure is a result with a status, never a made-up number."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import traceback
import warnings
from typing import Any, Callable, Iterable, Iterator

import torch

from zeronas.cells.recipe import Cell
from zeronas.core.config import ScoringConfig
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import Unsupported, get_proxy
from zeronas.core.score import UNSUPPORTED, Score
from zeronas.core.spec import parse_spec, spec_name, spec_proxies
from zeronas.core.verdict import spec_verdict

ProgressFn = Callable[[int, int, str], None]  # (proxies done, total, the proxy now running; "" at the end)

_NEEDS = {"activations": "per-activation observations (run_layers' observer)",
          "recipe": "a cell-language recipe of the layers' step"}


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


class _CtrlC:
    """Tells a Ctrl-C from a ``KeyboardInterrupt`` a proxy raises: while proxies run in this process (the main
    thread), SIGINT goes through :meth:`handler`, which notes it."""

    def __init__(self) -> None:
        self.active = False
        self.seen = False

    def handler(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def raised_by_proxy(self) -> bool:
        return self.active and not self.seen

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        if self.active or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self.handler)
        self.active, self.seen = True, False
        try:
            yield
        finally:
            self.active = False
            signal.signal(signal.SIGINT, previous)


_CTRL_C = _CtrlC()


class ProxyReturnError(TypeError):
    """A proxy returned something that is not a real number (a string, None, a complex number, a tensor of many
    elements): a fault of the proxy's code, not a result of the cell, so the run stops (nothing is stored) with a
    message naming the proxy and the module that registered it."""


def _real(name: str, fn: Any, value: Any) -> float:
    """``value`` as a float if it is a real number (a Python or NumPy int or float, or a one-element real tensor
    or array); :class:`ProxyReturnError` otherwise."""
    import numbers

    import numpy as np

    try:
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            return float(value)
        if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fiu":
            return float(value.item())
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex() \
                and value.dtype != torch.bool:
            return float(value.item())
    except Exception:  # noqa: BLE001 - a number that cannot be read as a float (10**400, a meta tensor)
        pass
    if isinstance(value, (torch.Tensor, np.ndarray)):
        what = f"a {type(value).__module__.split('.')[0]} {type(value).__name__} of shape {tuple(value.shape)}"
    else:
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001
            text = "(unprintable)"
        what = f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"
    origin = getattr(fn, "__module__", None) or "?"
    raise ProxyReturnError(f"proxy {name!r} (registered by {origin}) returned {what}, not a real number; a proxy "
                           "returns a float (NaN and inf are recorded as such): fix the proxy")


def run_proxy(name: str, ctx: ScoringContext, *, catch_interrupt: bool = False) -> Score:
    """Run one proxy; NaN, inf, out-of-memory and exceptions become statuses with a message, and so does a proxy
    that calls ``sys.exit`` (and, with ``catch_interrupt``, one that raises ``KeyboardInterrupt``: in a worker
    process, where Ctrl-C is ignored, it can only come from the proxy). A proxy that needs a capability the model
    lacks is not run: its score is ``unsupported`` with the reason. A return value that is not a real number is a
    :class:`ProxyReturnError`, never a score."""
    spec = get_proxy(name)
    missing = sorted(spec.requires - ctx.capabilities())
    if missing:
        return Score(name, None, UNSUPPORTED, f"needs {_NEEDS[missing[0]]}, which this model does not offer")
    start = time.perf_counter()
    try:
        value = spec.fn(ctx)
    except Unsupported as exc:
        return Score(name, None, UNSUPPORTED, str(exc), time.perf_counter() - start)
    except KeyboardInterrupt as exc:  # the user's Ctrl-C stops the run; one the proxy raised is its error
        if not (catch_interrupt or _CTRL_C.raised_by_proxy()):
            raise
        return _failed(name, exc, time.perf_counter() - start)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of a proxy is recorded, the run goes on
        return _failed(name, exc, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    value = _real(name, spec.fn, value)
    if math.isnan(value):
        return Score(name, None, "nan", "the proxy evaluated to NaN", seconds)
    if math.isinf(value):
        return Score(name, None, "inf", f"the proxy evaluated to {'+' if value > 0 else '-'}inf", seconds)
    return Score(name, value, "ok", "", seconds)


def _failed(name: str, exc: BaseException, seconds: float) -> Score:
    """The score of a proxy that raised (or exited)."""
    if isinstance(exc, SystemExit):
        return Score(name, None, "error", f"the proxy called sys.exit({exc.code!r})", seconds)
    status = "oom" if _is_oom(exc) else "error"
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    loc = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Score(name, None, status, f"{text}{loc}", seconds)


def score_cell(cell: Cell, proxies: Iterable[str], config: ScoringConfig | None = None,
               corpus: Any | None = None, *, progress: ProgressFn | None = None) -> dict[str, Score]:
    """Score ``cell`` with each named proxy or spec (``a+b``, ``rank!gate``: see :func:`resolve_specs`) under
    ``config`` (default: :class:`ScoringConfig`); ``progress(done, total, proxy)`` follows the proxies. A corpus
    too short for the proxies is a :class:`~zeronas.core.config.ConfigError` before anything runs."""
    from zeronas.proxies.needs import check_data_needs

    config = config or ScoringConfig()
    specs = resolve_specs(proxies)
    names = spec_proxy_names(specs)
    check_data_needs(names, config, corpus)
    ctx = ScoringContext(cell, config, corpus)
    return _verdicts(specs, run_proxies(names, ctx, progress))


def resolve_specs(names: Iterable[str]) -> list[str]:
    """The specs ``names`` (proxy names, combinations ``a+b``, gated specs ``rank!gate``), each written
    canonically; a grammar error is a :class:`~zeronas.core.spec.SpecError`, an unregistered proxy a ``KeyError``
    (as :func:`~zeronas.proxies.registry.get_proxy`). One string is read as a comma-separated list."""
    if isinstance(names, str):
        names = [part for part in names.split(",") if part.strip()]
    out = []
    for name in names:
        members, gates = parse_spec(name)
        for proxy_name in members + gates:
            get_proxy(proxy_name)
        out.append(spec_name(members, gates))
    return out


def spec_proxy_names(specs: Iterable[str]) -> list[str]:
    """Every proxy the specs need scored, each once, in order of appearance."""
    return list(dict.fromkeys(p for spec in specs for p in spec_proxies(spec)))


def _verdicts(specs: Iterable[str], scores: dict[str, Score]) -> dict[str, Score]:
    """The proxies' scores, then the verdict of every spec that is not a plain proxy name
    (:func:`~zeronas.core.verdict.spec_verdict`, with the registry's directions and gate thresholds)."""
    out = dict(scores)
    for spec in specs:
        if spec not in out:
            out[spec] = spec_verdict(spec, scores, lambda p: get_proxy(p).higher_is_better,
                                     lambda p: get_proxy(p).gate)
    return out


def run_proxies(proxies: Iterable[str], ctx: ScoringContext, progress: ProgressFn | None = None, *,
                catch_interrupt: bool = False) -> dict[str, Score]:
    """Each proxy on ``ctx``, the global generator seeded before each (for any library code that draws from it)
    and restored afterwards. ``progress(done, total, name)`` is called before each proxy and once at the end."""
    results: dict[str, Score] = {}
    names = list(proxies)
    # in this process, tell the user's Ctrl-C from a proxy's KeyboardInterrupt; a worker (catch_interrupt) ignores
    # SIGINT, and its handler must stay so: Ctrl-C is the parent's to handle, never a proxy's error
    watch = contextlib.nullcontext() if catch_interrupt else _CTRL_C.watching()
    with torch.random.fork_rng(devices=[]), watch:
        for i, name in enumerate(names):
            if progress is not None:
                progress(i, len(names), name)
            torch.manual_seed(ctx.config.seed)
            ctx.upcoming = tuple(names[i + 1:])
            results[name] = run_proxy(name, ctx, catch_interrupt=catch_interrupt)
    ctx.upcoming = None
    if progress is not None:
        progress(len(names), len(names), "")
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
                config: ScoringConfig | None = None, progress: ProgressFn | None = None) -> dict[str, Score]:
    """Score any recurrent language model, as given (its own weights), with each named proxy or spec (``a+b``,
    ``rank!gate``: a spec's verdict follows its proxies' scores, see :mod:`zeronas.core.verdict`; default: every
    proxy).

    ``model`` is a :class:`~zeronas.models.contract.RecurrentLM` (zeronas's own ``RNNModel`` is one) or a module
    an adapter takes (``nn.Embedding`` + ``nn.LSTM``/``GRU``/``RNN`` + ``nn.Linear``, see
    :mod:`zeronas.models.adapters`). The probe batch comes from ``tokens`` (a :class:`~zeronas.data.corpus.Corpus`
    or a 1-D tensor of token ids) or else the config's corpus; ``config`` sets the probe batch, the seed of every
    random draw and the device (its model sizes do not apply). Returns the same :class:`Score` objects as
    :func:`score_cell`: failures are statuses, and a proxy this kind of model cannot support is ``unsupported``
    with its reason. The model itself is never modified. Parts of the model that the adapter leaves out (a
    LayerNorm before the decoder) are named in an :class:`~zeronas.models.adapters.IgnoredPartsWarning`.
    ``progress(done, total, proxy)`` follows the proxies."""
    from zeronas.models.adapters import IgnoredPartsWarning, adapt_lm, ignored_note
    from zeronas.plugins import load_plugins
    from zeronas.proxies.device import check_config
    from zeronas.proxies.registry import list_proxies

    load_plugins()  # an entry point: the installed plugins' adapters and proxies
    config = config or ScoringConfig()
    check_config(config)
    lm = adapt_lm(model)
    note = ignored_note(model, lm)
    if note:
        warnings.warn(IgnoredPartsWarning(note), stacklevel=2)
    names = [s.name for s in list_proxies()] if proxies is None else resolve_specs(proxies)
    source = _probe_source(tokens, lm, config)
    ctx = ScoringContext(None, config, source, model=lm)
    if source is None:
        _probe_source(ctx.corpus.split(config.probe_split), lm, config)
    from zeronas.proxies.needs import check_data_needs

    check_data_needs(spec_proxy_names(names), config, ctx.corpus)  # e.g. state_escape's 60 steps of text
    return _verdicts(names, run_proxies(spec_proxy_names(names), ctx, progress))
