"""Where a refine's candidates come from: cells the user names, the K best of a results store under a proxy spec,
or the cells a search scored; and the reference cells that run beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.cells.resolve import resolve_cell
from zeronas.recommended import RECOMMENDED_METHOD, TRAINABILITY_CHECK
from zeronas.refine.state import Candidate

#: Reference cells run beside the candidates by default: a refine's answer never trains worse than them unnoticed.
REFERENCES: tuple[str, ...] = ("lstm", "gru")


class SourceError(ValueError):
    """Candidates that cannot be had: an empty store, a bad K; the message names the problem."""


def display_name(spec: str, cell: Cell) -> str:
    """A short name for a candidate: a file's name, a named cell, a benchmark id's first 12 hex digits, or the
    inline recipe's sha1 prefix."""
    if spec.lstrip().startswith("{"):
        return f"recipe-{cell.arch_sha1[:8]}"
    path = Path(spec)
    if path.suffix == ".json" or len(path.parts) > 1:
        return path.name
    if len(spec) == 40 and all(ch in "0123456789abcdefABCDEF" for ch in spec):
        return spec[:12].lower()
    return spec


def named(specs: Sequence[str]) -> list[Candidate]:
    """Candidates from recipe files, named cells, inline recipes or benchmark ids (a
    :class:`~zeronas.cells.recipe.RecipeError` names the one that is none of these)."""
    return [Candidate(display_name(s, cell), cell) for s in specs for cell in [resolve_cell(s)]]


def references(names: Sequence[str] = REFERENCES) -> list[Candidate]:
    return [Candidate(n, resolve_cell(n), reference=True) for n in names]


def with_references(candidates: Sequence[Candidate], names: Sequence[str] = REFERENCES) -> list[Candidate]:
    """The candidates, then the reference cells that are not among them already (a candidate that is a reference
    cell is marked as one)."""
    refs = {c.cell.canonical_id: c for c in references(names)}
    out = [Candidate(c.name, c.cell, True) if c.cell.canonical_id in refs else c for c in candidates]
    have = {c.cell.canonical_id for c in out}
    return out + [r for cid, r in refs.items() if cid not in have]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SourceError(f"K must be a positive integer, got {k!r}")


def from_store(store: str, k: int, spec: str = RECOMMENDED_METHOD, config=None) -> list[Candidate]:
    """The ``k`` best cells of ``store`` under proxy ``spec`` (a name, ``a+b`` or ``rank!gate``) among the scores
    stored under scoring ``config`` (default: the default config), ranked as ``zeronas search`` ranks them."""
    from zeronas.core.config import ScoringConfig
    from zeronas.search.core import Candidate as Scored, proxy_members, ranked
    from zeronas.store import open_store

    _check_k(k)
    config = config or ScoringConfig()
    members = proxy_members(spec)
    with open_store(store, read_only=True) as st:
        table = st.scores_table(config, members)
        scored = [Scored(parse_recipe(json.loads(st.recipe(cid) or "null"), source=f"{store} cell {cid}"),
                         dict(row), i) for i, (cid, row) in enumerate(table.items())]
    usable = [c for c in scored if c.ok(members)]
    if not usable:
        raise SourceError(f"{store}: no cell has every score of {spec!r} ({', '.join(members)}) under scoring config "
                          f"{config.config_hash()}; score cells first (zeronas search / evaluate --store)")
    return [Candidate(c.canonical_id[:12], c.cell) for c in ranked(usable, spec)[:k]]


def from_search(result, k: int) -> list[Candidate]:
    """``k`` candidates from what a search scored: the best ``k`` by its ranking among the cells that pass the
    trainability check (:data:`~zeronas.recommended.TRAINABILITY_CHECK`) when the search scored it, else the best
    ``k``. (The shortlist policy of issue 18's replay study is to replace this rule.)"""
    from zeronas.metrics import gate_passes, gate_threshold
    from zeronas.proxies.registry import get_proxy

    _check_k(k)
    best = list(result.best)
    if any(TRAINABILITY_CHECK in c.scores for c in best):
        hib = get_proxy(TRAINABILITY_CHECK).higher_is_better
        threshold = gate_threshold(TRAINABILITY_CHECK)
        best = [c for c in best if gate_passes(c.scores.get(TRAINABILITY_CHECK), hib, threshold)]
    return [Candidate(c.canonical_id[:12], c.cell) for c in best[:k]]


__all__ = ["REFERENCES", "SourceError", "display_name", "from_search", "from_store", "named", "references",
           "with_references"]
