"""A refine of named candidates replayed from logged learning curves instead of trained: each candidate's validation
perplexity at each rung is read from a curve table (:mod:`.curves`) and it is charged the logged seconds. The result
has the same form as a real refine's (:class:`~zeronas.refine.run.RefineResult`), so the same table, JSON and plot
come out; nothing is trained and no folder is written."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from zeronas.refine.curves import CurveCell, CurveError, CurveTable, cells_by_id
from zeronas.refine.halving import Schedule, successive_halving
from zeronas.refine.rungs import RungMeasure
from zeronas.refine.run import RefineResult
from zeronas.refine.state import Candidate


def table_references(table: CurveTable) -> list[Candidate]:
    """The table's reference cells (NAS-Bench-NLP's example cells, zeronas's lstm and gru) as candidates."""
    from zeronas.cells.recipe import parse_recipe

    return [Candidate(c.reference, parse_recipe(c.recipe_json, source=f"{table.source}: {c.reference}"), True)
            for c in table.references]


def _measure(cell: CurveCell, budget: float, epoch: int) -> RungMeasure:
    ppl = cell.ppl_at(epoch)
    ok = math.isfinite(ppl)
    return RungMeasure(budget, math.log(ppl) if ok else None, ppl, 0, 0, cell.seconds_to(epoch), not ok,
                       None if ok else f"the logged run had diverged or failed by epoch {epoch}")


def refine_logged(candidates: Sequence[Candidate], schedule: Schedule, table: CurveTable) -> RefineResult:
    """Successive halving over ``candidates`` with every measurement read from ``table``. A candidate the table
    does not hold, or rungs it cannot replay (fractions, tokens, past its last epoch), raise :class:`CurveError`
    naming them, before anything is replayed."""
    epochs = dict(zip(schedule.rungs, table.check_schedule(schedule)))
    known = cells_by_id(table)
    missing = [c for c in candidates if c.cell.canonical_id not in known]
    if missing:
        raise CurveError(f"{table.source}: no curve of candidate {missing[0].name!r} (canonical id "
                         f"{missing[0].cell.canonical_id}){f' and {len(missing) - 1} more' if len(missing) > 1 else ''}")
    measured: dict[int, list[RungMeasure]] = {i: [] for i in range(len(candidates))}

    def measure(i: int, budget: float) -> float:
        m = _measure(known[candidates[i].cell.canonical_id], budget, epochs[budget])
        measured[i].append(m)
        return m.val_ppl

    halving = successive_halving(list(range(len(candidates))), schedule, measure)
    return RefineResult(Path(table.source), schedule, list(candidates), [measured[i] for i in measured],
                        halving.winner_index, "replay", False, 0)


__all__ = ["refine_logged", "table_references"]
