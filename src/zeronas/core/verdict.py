"""A proxy spec's verdict for one cell or one model, where a ranking among many does not exist.

A spec (:mod:`zeronas.core.spec`) ranks a population: ``a+b`` by the sum of the members' ranks, ``rank!gate`` every
cell that passes the gate above every cell that does not. For a single cell (``zeronas score``) or model
(``zeronas score-model``, :func:`zeronas.score_model`) the verdict is what that rule would use:

- ``rank!gate``: the ranking proxy's value (and status), plus whether the cell passes every gate (``passes``).
  A cell passes a gate when its gate score is ok and on the good side of the gate's threshold
  (:func:`gate_passes`, the same rule as in ``zeronas evaluate`` and ``zeronas search``).
- ``a+b``: no value (a sum of ranks needs other cells); the status is the members' (ok only when every member is),
  and the members' own scores stand beside it.

Pure: the directions and thresholds are the caller's to give (the registry's, in :mod:`zeronas.proxies.runner`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

from zeronas.core.score import Score
from zeronas.core.spec import parse_spec

__all__ = ["SpecScore", "gate_passes", "spec_verdict"]


@dataclass(frozen=True)
class SpecScore(Score):
    """A :class:`Score` of a spec. ``members``: the ranking proxies; ``gates``: the gate proxies; ``passes``:
    whether every gate passes (None when the spec has no gate). ``value`` is the ranking proxy's for a gated single
    proxy, None for a combination (whose value is a rank among cells)."""

    members: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()
    passes: bool | None = None


def gate_passes(score: Score | None, higher_is_better: bool, threshold: float | None) -> bool:
    """Does a cell pass a gate? Its gate score must be ok and, when the gate has a threshold, on the good side of
    it (``value <= threshold`` for a lower-is-better proxy, ``>=`` otherwise)."""
    if score is None or not score.ok or score.value is None or not math.isfinite(score.value):
        return False
    if threshold is None:
        return True
    return score.value >= threshold if higher_is_better else score.value <= threshold


def _gate_text(gate: str, score: Score | None, higher_is_better: bool, threshold: float | None) -> str:
    passed = gate_passes(score, higher_is_better, threshold)
    word = "passes" if passed else "fails"
    if score is None or not score.ok or score.value is None:
        return f"{word} {gate} ({score.status if score is not None else 'not scored'})"
    if threshold is None:
        return f"{word} {gate} (ok)"
    sign = (">=" if higher_is_better else "<=") if passed else ("<" if higher_is_better else ">")
    return f"{word} {gate} ({score.value:.4g} {sign} {threshold:g})"


def spec_verdict(spec: str, scores: Mapping[str, Score], higher_is_better: Callable[[str], bool],
                 threshold: Callable[[str], float | None]) -> SpecScore:
    """The verdict of ``spec`` from the scores of its proxies (``scores`` holds every member and gate)."""
    members, gates = parse_spec(spec)
    parts = [scores[m] for m in members]
    failed = next((s for s in parts if not s.ok), None)
    status = failed.status if failed is not None else "ok"
    seconds = math.fsum(scores[p].seconds for p in dict.fromkeys(members + gates))
    notes = []
    if len(members) == 1:
        value = parts[0].value if failed is None else None
        if failed is not None:
            notes.append(f"{members[0]} {failed.status}")
    else:
        value = None
        notes.append("a sum of ranks: a value only among several cells (zeronas evaluate, search)")
    passes = None
    if gates:
        passes = all(gate_passes(scores.get(g), higher_is_better(g), threshold(g)) for g in gates)
        notes.extend(_gate_text(g, scores.get(g), higher_is_better(g), threshold(g)) for g in gates)
    return SpecScore(spec, value, status, "; ".join(notes), seconds, members, gates, passes)
