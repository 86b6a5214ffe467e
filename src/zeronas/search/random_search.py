"""Random search: evaluate distinct random cells of the space, rank them by the proxy.

The cells are drawn one after another from one seeded generator, skipping any already drawn, and scored in
rounds (of ``round_size`` cells with a time budget, checked between rounds; of ``CHUNK_ROUNDS * round_size``
otherwise); the round size does not change which cells are drawn, so a stopped run replays the same sequence.
"""

from __future__ import annotations

import numpy as np

from zeronas.search.core import Budget, Candidate, ProgressFn, Ranking, Scorer, distinct, evaluate_cells, ranked
from zeronas.search.sources import CandidateSource

__all__ = ["CHUNK_ROUNDS", "random_search"]

CHUNK_ROUNDS = 4


def random_search(source: CandidateSource, scorer: Scorer, proxy: "str | Ranking", budget: Budget, rng: np.random.Generator,
                  *, round_size: int, progress: ProgressFn | None = None) -> list[Candidate]:
    """Every candidate evaluated, in order of evaluation (rank them with :func:`~zeronas.search.core.ranked`)."""
    candidates: list[Candidate] = []
    seen: set[str] = set()
    exhausted = False
    # Without a time limit nothing needs checking between rounds: bigger rounds start the worker pool less often.
    chunk = round_size if budget.seconds is not None else CHUNK_ROUNDS * round_size
    while not exhausted and not budget.exhausted(len(candidates)):
        left = budget.left(len(candidates))
        n = chunk if left is None else min(chunk, left)
        cells = []
        for _ in range(n):
            cell = source.sample(rng, seen)
            if cell is None:  # the source has nothing new left (a small benchmark, a tiny space)
                exhausted = True
                break
            cells.extend(distinct([cell], seen))
        evaluate_cells(scorer, cells, candidates)
        if progress is not None:
            progress(len(candidates), budget.cells, ranked(candidates, proxy)[0] if candidates else None)
    return candidates
