"""Training-free scores of a curve table's cells, through a results store like every other command: what the store
lacks under the scoring config is scored (``zeronas.run.score_many``), what it holds is reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from zeronas.core.spec import spec_proxies
from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score
from zeronas.refine.curves import CurveCell
from zeronas.store import ResultStore

Scores = Mapping[str, Mapping[str, Score]]


def spec_members(specs: Iterable[str]) -> list[str]:
    """Every proxy the specs need scored (ranking members and gates), each once, in order."""
    out: list[str] = []
    for spec in specs:
        for m in spec_proxies(spec):
            if m not in out:
                out.append(m)
    return out


def directions(proxies: Iterable[str]) -> dict[str, bool]:
    """``{proxy: higher_is_better}`` from the registry (a KeyError names the known proxies)."""
    from zeronas.proxies.registry import get_proxy

    return {p: get_proxy(p).higher_is_better for p in proxies}


def curve_scores(cells: Sequence[CurveCell], specs: Sequence[str], config: ScoringConfig,
                 store: str | Path | ResultStore, *, score: bool = True, workers: int | None = None,
                 timeout_s: float | None = None, progress: bool = False, executor: str = "local",
                 ray_address: str | None = None) -> dict[str, dict[str, Score]]:
    """``{canonical_id: {proxy: Score}}`` for the cells and every proxy the specs need, under ``config``. With
    ``score=False`` nothing is computed: cells the store lacks are missing (they rank last). ``executor``,
    ``ray_address``, ``workers``, ``timeout_s``: as :func:`zeronas.run.score_many`."""
    from zeronas.cells.recipe import Cell
    from zeronas.run.scoring import score_and_read

    members = spec_members(specs)
    if not members:
        return {}
    todo = [Cell.from_recipe(json.loads(c.recipe_json), source=f"curve cell {c.label}") for c in cells]
    _, table = score_and_read(todo, members, config, store, score=score, workers=workers, timeout_s=timeout_s,
                              progress=progress, executor=executor, ray_address=ray_address)
    return {cid: dict(row) for cid, row in table.items() if row}
