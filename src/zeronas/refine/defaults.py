"""The default refine in one place: the schedule, the shortlist size and the shortlist policy that ``zeronas
refine``, ``zeronas search --refine K`` and ``zeronas refine --replay`` use when not told otherwise, and the policy
set a replay reports beside the default.

Interim values until issue 18's study (``benchmarks/refine_study.py``, cross-validated over cells on the released
curves) chooses them: rungs 1, 3 and 9 epochs with eta 3 (27 cells for 63 epochs, the issue's budget) and the top K
by the recommended method, which puts every cell that passes the trainability check first.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from zeronas.recommended import RECOMMENDED_METHOD
from zeronas.refine.halving import Schedule
from zeronas.refine.policies import (FullTraining, Halving, Oracle, Policy, RandomK, Ranker, Shortlist, TopK,
                                     TrainingFreeTop1)

DEFAULT_RUNGS: tuple[float, ...] = (1.0, 3.0, 9.0)
DEFAULT_ETA = 3
DEFAULT_K = 27


def default_shortlist(k: int = DEFAULT_K, spec: str = RECOMMENDED_METHOD) -> Shortlist:
    """The default shortlist of ``k`` cells out of a pool."""
    return TopK(k, spec)


def replay_policies(k: int = DEFAULT_K, schedule: Schedule | None = None,
                    spec: str = RECOMMENDED_METHOD) -> tuple[str, list[Policy]]:
    """(the default policy's name, the policies a replay reports): the default shortlist under the schedule, the
    training-free top-1, ``k`` random cells under the same schedule, the default shortlist fully trained, and the
    oracle."""
    schedule = schedule or Schedule(DEFAULT_RUNGS, DEFAULT_ETA)
    default = Halving(default_shortlist(k, spec), schedule)
    return default.name, [default, TrainingFreeTop1(spec), Halving(RandomK(k), schedule),
                          FullTraining(default_shortlist(k, spec)), Oracle()]


class _Scored:
    """A cell seen by a shortlist: its canonical id and hidden tuple size (all a shortlist reads of it)."""

    def __init__(self, item: Any) -> None:
        self.item = item
        self.canonical_id = item.cell.canonical_id
        self.hidden_tuple_size = item.cell.hidden_tuple_size


def shortlist_scored(items: Sequence[Any], scores: Mapping[str, Mapping[str, Any]], k: int,
                     spec: str = RECOMMENDED_METHOD, seed: int = 0) -> list[Any]:
    """The default shortlist drawn from scored cells (objects with a ``.cell``, e.g. a search's candidates), given
    their scores ``{canonical_id: {proxy: Score}}``: ``k`` of them, in shortlist order."""
    from zeronas.proxies.registry import get_proxy
    from zeronas.refine.scores import spec_members

    shortlist = default_shortlist(k, spec)
    members = spec_members(shortlist.specs)
    ranker = Ranker(scores, {m: get_proxy(m).higher_is_better for m in members})
    wrapped = [_Scored(i) for i in items]
    picked = shortlist(wrapped, ranker, np.random.default_rng(seed))  # type: ignore[arg-type]
    return [w.item for w in picked]


__all__ = ["DEFAULT_ETA", "DEFAULT_K", "DEFAULT_RUNGS", "default_shortlist", "replay_policies", "shortlist_scored"]
