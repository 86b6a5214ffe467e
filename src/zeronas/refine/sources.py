"""Where a refine's candidates come from: cells the user names, the K best of a results store under a proxy spec,
or the cells a search scored; and the reference cells that run beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.bench.resolve import resolve_cell
from zeronas.recommended import RECOMMENDED_METHOD
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
    from zeronas.proxies.registry import proxy_revisions
    from zeronas.search.core import Candidate as Scored, proxy_members, ranked
    from zeronas.store import open_store

    _check_k(k)
    config = config or ScoringConfig()
    members = proxy_members(spec)
    with open_store(store, read_only=True) as st:
        table = st.scores_table(config, members, revisions=proxy_revisions(members))
        scored = [Scored(parse_recipe(json.loads(st.recipe(cid) or "null"), source=f"{store} cell {cid}"),
                         dict(row), i) for i, (cid, row) in enumerate(table.items())]
    usable = [c for c in scored if c.ok(members)]
    if not usable:
        raise SourceError(f"{store}: no cell has every score of {spec!r} ({', '.join(members)}) under scoring config "
                          f"{config.config_hash()}; score cells first (zeronas search / evaluate --store)")
    return [Candidate(c.canonical_id[:12], c.cell) for c in ranked(usable, spec)[:k]]


class _Scored:
    """A scored cell as a shortlist sees it: its canonical id and hidden tuple size (all a shortlist reads)."""

    def __init__(self, item: Any) -> None:
        self.item = item
        self.canonical_id = item.cell.canonical_id
        self.hidden_tuple_size = item.cell.hidden_tuple_size


def shortlist_scored(items: Sequence[Any], scores: Mapping[str, Mapping[str, Any]], k: int,
                     spec: str = RECOMMENDED_METHOD, seed: int = 0) -> list[Any]:
    """The default shortlist (:func:`zeronas.refine.policies.default_shortlist`) of ``k`` drawn from scored cells
    (objects with a ``.cell``, e.g. a search's candidates) given their scores ``{canonical_id: {proxy: Score}}``,
    in shortlist order."""
    import numpy as np

    from zeronas.refine.policies import Ranker, default_shortlist
    from zeronas.refine.scores import directions, spec_members

    shortlist = default_shortlist(k, spec)
    ranker = Ranker(scores, directions(spec_members(shortlist.specs)))
    picked = shortlist([_Scored(i) for i in items], ranker, np.random.default_rng(seed))  # type: ignore[arg-type]
    return [w.item for w in picked]


def from_search(result, k: int, seed: int = 0) -> list[Candidate]:
    """``k`` candidates from what a search scored, by the default shortlist policy under the search's proxy spec
    (:func:`shortlist_scored`); a search ranked otherwise (a predictor) gives its own best ``k``."""
    from zeronas.refine.policies import PolicyError
    from zeronas.refine.scores import spec_members

    _check_k(k)
    items = list(result.candidates)
    try:
        members = spec_members([result.proxy])
    except ValueError:  # not a proxy spec (a predictor): the search's own order
        members = []
    if members and all(m in c.scores for c in items for m in members):
        try:
            picked = shortlist_scored(items, {c.canonical_id: c.scores for c in items}, k, result.proxy, seed)
        except PolicyError:
            picked = list(result.best[:k])
    else:
        picked = list(result.best[:k])
    return [Candidate(c.canonical_id[:12], c.cell) for c in picked]


__all__ = ["REFERENCES", "SourceError", "display_name", "from_search", "from_store", "named", "references",
           "shortlist_scored", "with_references"]
