"""Regularized (aging) evolution (Real et al., AAAI 2019, "Regularized Evolution for Image Classifier Architecture
Search", Algorithm 1), with a training-free proxy as the fitness.

- Start with ``population_size`` distinct random cells.
- Each cycle: draw ``sample_size`` members of the population uniformly without replacement, take the best of the
  sample by the proxy (:func:`~zeronas.search.core.fitness`: ties to the one evaluated first), mutate it with the
  space's mutation, evaluate the child, add it to the population and remove the **oldest** member (not the
  worst: the aging that regularizes the search).

Adaptations:

- Cycles run in rounds of ``round_size`` children chosen from the same population, scored together by the
  executor's workers, then added in order while the oldest members leave (Real et al. ran hundreds of
  asynchronous workers; a round is the synchronous form of that).
- A child whose canonical id was evaluated already is never evaluated again: the source redraws the mutation
  (see :class:`~zeronas.search.sources.SpaceSource`), so the budget counts distinct cells.
- With a combination ``a+b`` the fitness is the sum of per-proxy ranks over every cell evaluated so far, so it is
  recomputed each round.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from zeronas.search.core import (Budget, Candidate, ProgressFn, Ranking, Scorer, SearchError, distinct, evaluate_cells,
                                 fitness, ranked)
from zeronas.search.sources import CandidateSource

__all__ = ["DEFAULT_POPULATION", "DEFAULT_SAMPLE", "evolution"]

DEFAULT_POPULATION = 20
DEFAULT_SAMPLE = 5


def evolution(source: CandidateSource, scorer: Scorer, proxy: "str | Ranking", budget: Budget, rng: np.random.Generator, *,
              round_size: int, population_size: int = DEFAULT_POPULATION, sample_size: int = DEFAULT_SAMPLE,
              progress: ProgressFn | None = None) -> list[Candidate]:
    """Every candidate evaluated, in order of evaluation."""
    if population_size < 1 or sample_size < 1:
        raise SearchError(f"population ({population_size}) and sample ({sample_size}) must be at least 1")
    if sample_size > population_size:
        raise SearchError(f"the sample ({sample_size}) cannot be larger than the population ({population_size})")
    candidates: list[Candidate] = []
    seen: set[str] = set()
    population: deque[Candidate] = deque()

    def report() -> None:
        if progress is not None:
            progress(len(candidates), budget.cells, ranked(candidates, proxy)[0] if candidates else None)

    # the initial population: random cells
    while len(population) < population_size and not budget.exhausted(len(candidates)):
        left = budget.left(len(candidates))
        n = min(round_size, population_size - len(population), left if left is not None else round_size)
        cells = []
        for _ in range(n):
            cell = source.sample(rng, seen)
            if cell is None:
                return candidates
            cells.extend(distinct([cell], seen))
        population.extend(evaluate_cells(scorer, cells, candidates))
        report()
    # the cycles
    while not budget.exhausted(len(candidates)):
        left = budget.left(len(candidates))
        n = round_size if left is None else min(round_size, left)
        fitness(candidates, proxy)  # sets Candidate.fitness (rank sums change as cells are added)
        members = list(population)
        children = []
        for _ in range(n):
            picks = rng.choice(len(members), size=sample_size, replace=False)
            parent = min((members[int(i)] for i in picks), key=lambda c: (-c.fitness, c.index))
            child = source.mutate(parent.cell, rng, seen)
            if child is None:
                break
            children.extend(distinct([child], seen))
        if not children:
            break
        for cand in evaluate_cells(scorer, children, candidates):
            population.append(cand)
            if len(population) > population_size:
                population.popleft()
        report()
    return candidates
