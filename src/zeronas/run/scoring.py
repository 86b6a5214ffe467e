"""Score what a store lacks, then read what it holds: the one way every analysis gets its scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score
from zeronas.proxies.registry import proxy_revisions
from zeronas.run.executor import RunSummary, score_many
from zeronas.store import ResultStore, open_store


def score_and_read(cells: Iterable[Any], proxies: Sequence[str], config: ScoringConfig,
                   store: str | Path | ResultStore, *, score: bool = True,
                   **run: Any) -> tuple[RunSummary | None, dict[str, dict[str, Score]]]:
    """Score ``cells`` (cells or benchmark architectures) with ``proxies`` where the store lacks them (not with
    ``score=False``, which only reads, opening the store read-only), then read each cell's current scores:
    ``(the run's summary or None, {canonical_id: {proxy: Score}})`` in the cells' order (an empty dict for a cell
    with none). A store URL is opened once for both (an in-memory store lives only while it is open) and closed;
    a store object is used as it is. ``run``: options of :func:`zeronas.run.score_many`."""
    cells = list(cells)
    names = list(dict.fromkeys(proxies))
    own = isinstance(store, (str, Path))
    st = open_store(store, read_only=not score) if own else store
    try:
        summary = score_many(cells, names, config, st, **run) if score else None
        table = st.scores_table(config, names, revisions=proxy_revisions(names))
    finally:
        if own:
            st.close()
    return summary, {c.canonical_id: table.get(c.canonical_id, {}) for c in cells}
