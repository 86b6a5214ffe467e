"""Score a cell with a list of proxies. A failure is a result with a status, never a made-up number."""

from __future__ import annotations

import math
import time
import traceback
from typing import Any, Iterable

import torch

from zeronas.cells.recipe import Cell
from zeronas.proxies.config import ScoringConfig
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import get_proxy
from zeronas.proxies.score import Score

def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


def run_proxy(name: str, ctx: ScoringContext) -> Score:
    """Run one proxy; NaN, inf, out-of-memory and exceptions become statuses with a message."""
    spec = get_proxy(name)
    start = time.perf_counter()
    try:
        value = spec.fn(ctx)
        value = float(value)
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
    ctx = ScoringContext(cell, config, corpus)
    results: dict[str, Score] = {}
    with torch.random.fork_rng(devices=[]):
        for name in proxies:
            torch.manual_seed(config.seed)  # for any library code that draws from the global generator
            results[name] = run_proxy(name, ctx)
    return results
