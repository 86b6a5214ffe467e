"""Where candidates come from: a registered search space, or the cells of the bundled benchmark.

A source draws cells that have not been evaluated yet (``exclude``: canonical ids already seen), so a search
never evaluates a cell twice and its budget counts distinct cells.

- :class:`SpaceSource` wraps a :class:`~zeronas.cells.spaces.SearchSpace`: ``sample`` redraws duplicates;
  ``mutate`` redraws a mutation that lands on a seen cell, and after ``MAX_DUPLICATE_DRAWS`` tries keeps walking
  from its last child (a random walk away from a crowded neighbourhood); only then does it fall back to a sample.
- :class:`BenchmarkSource` restricts a search of the NAS-Bench-NLP space to the cells of the bundled benchmark,
  so that the true perplexity of whatever it picks is known. ``sample`` draws a benchmark cell uniformly among
  those not yet seen. ``mutate`` applies the space's own mutation to the parent (one real edit of the cell), then
  maps the child to the **nearest benchmark cell not yet seen** (the parent excluded); ties are broken at random.
  "Nearest" is the L1 distance between Weisfeiler-Lehman label counts (:func:`wl_features`): every node is
  labelled by its op (outputs also by their name), then ``WL_ITERATIONS`` times by its label and its inputs'
  labels (sorted when the op is commutative); a cell is the multiset of all those labels. Identical cells (same
  canonical id) have distance 0, and each edit changes the labels of the edited node and of the nodes within
  ``WL_ITERATIONS`` steps downstream of it, so small edits give small distances. It is a cheap stand-in for graph
  edit distance (exact GED is NP-hard and far too slow to compare against 2,515 cells at every step).
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from typing import Protocol, Sequence

import numpy as np

from zeronas.cells.ops import OPS
from zeronas.cells.recipe import Cell
from zeronas.cells.spaces import SearchSpace

__all__ = ["BenchmarkSource", "CandidateSource", "MAX_DUPLICATE_DRAWS", "SpaceSource", "WL_ITERATIONS",
           "wl_distance", "wl_features"]

MAX_DUPLICATE_DRAWS = 200
WL_ITERATIONS = 2


class CandidateSource(Protocol):
    name: str

    def sample(self, rng: np.random.Generator, exclude: set[str]) -> Cell | None:
        """A cell whose canonical id is not in ``exclude``; None when there is none left."""

    def mutate(self, cell: Cell, rng: np.random.Generator, exclude: set[str]) -> Cell | None:
        """A neighbour of ``cell`` not in ``exclude``; None when there is none left."""


class SpaceSource:
    """Candidates from a registered search space (see the module docstring for how duplicates are avoided)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.name = space.name

    def sample(self, rng: np.random.Generator, exclude: set[str]) -> Cell | None:
        for _ in range(MAX_DUPLICATE_DRAWS):
            cell = self.space.sample(rng)
            if cell.canonical_id not in exclude:
                return cell
        return None

    def mutate(self, cell: Cell, rng: np.random.Generator, exclude: set[str]) -> Cell | None:
        current = cell
        for attempt in range(2 * MAX_DUPLICATE_DRAWS):
            child = self.space.mutate(current if attempt >= MAX_DUPLICATE_DRAWS else cell, rng)
            if child.canonical_id not in exclude:
                return child
            if attempt >= MAX_DUPLICATE_DRAWS:
                current = child  # walk on: every neighbour nearby has been seen
        return self.sample(rng, exclude)


# ----------------------------------------------------------------------------------------------------------------
# Benchmark-restricted search
# ----------------------------------------------------------------------------------------------------------------

def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def wl_features(cell: Cell, iterations: int = WL_ITERATIONS) -> Counter[str]:
    """The multiset of Weisfeiler-Lehman labels of the cell's nodes, iterations 0..``iterations``."""
    label: dict[str, str] = {name: name for name in cell.inputs}  # x, h_prev_i keep their names
    for node in cell.order:
        op = cell.op(node)
        label[node] = f"{op}@{node}" if node.startswith("h_new_") else op
    counts: Counter[str] = Counter(label[n] for n in cell.order)
    for it in range(1, iterations + 1):
        new = {}
        for node in cell.order:
            ins = [label[i] for i in cell.node_inputs(node)]
            if OPS[cell.op(node)].commutative:
                ins.sort()
            new[node] = _digest(f"{it}|{label[node]}({','.join(ins)})")
        label.update(new)
        counts.update(new.values())
    return counts


def wl_distance(a: Cell, b: Cell, iterations: int = WL_ITERATIONS) -> int:
    """L1 distance between the WL label counts of two cells (0 for the same cell up to renaming)."""
    fa, fb = wl_features(a, iterations), wl_features(b, iterations)
    return sum(abs(fa[k] - fb[k]) for k in fa.keys() | fb.keys())


class _WLIndex:
    """An inverted index of the WL labels of many cells: distances from one cell to all of them at once."""

    def __init__(self, cells: Sequence[Cell], iterations: int) -> None:
        self.iterations = iterations
        postings: dict[str, tuple[list[int], list[int]]] = {}
        norms = np.zeros(len(cells), dtype=np.int64)
        for idx, cell in enumerate(cells):
            feats = wl_features(cell, iterations)
            norms[idx] = sum(feats.values())
            for lab, cnt in feats.items():
                rows, counts = postings.setdefault(lab, ([], []))
                rows.append(idx)
                counts.append(cnt)
        self.norms = norms
        self.postings = {lab: (np.asarray(r, dtype=np.int64), np.asarray(c, dtype=np.int64))
                         for lab, (r, c) in postings.items()}

    def distances(self, cell: Cell) -> np.ndarray:
        """``|a - b|_1 = |a| + |b| - 2 sum_l min(a_l, b_l)`` against every indexed cell."""
        feats = wl_features(cell, self.iterations)
        overlap = np.zeros_like(self.norms)
        for lab, cnt in feats.items():
            hit = self.postings.get(lab)
            if hit is not None:
                np.add.at(overlap, hit[0], np.minimum(hit[1], cnt))
        return self.norms + sum(feats.values()) - 2 * overlap


@functools.lru_cache(maxsize=2)
def _index_for(cells: tuple[Cell, ...], iterations: int) -> _WLIndex:
    """One index per cell list and depth, kept for the process (the benchmark's is built once)."""
    return _WLIndex(cells, iterations)


class BenchmarkSource:
    """Candidates restricted to the cells of a benchmark (see the module docstring): ``space`` provides the
    mutation (the NAS-Bench-NLP space for the bundled benchmark)."""

    def __init__(self, cells: Sequence[Cell], space: SearchSpace, *, iterations: int = WL_ITERATIONS) -> None:
        self.cells = tuple(cells)
        if not self.cells:
            raise ValueError("a benchmark source needs at least one cell")
        self.ids = [c.canonical_id for c in self.cells]
        self.space = space
        self.name = f"{space.name} (benchmark cells)"
        self.iterations = iterations
        self._index: _WLIndex | None = None

    @property
    def index(self) -> _WLIndex:
        if self._index is None:  # built on first use (~1 s for the bundled benchmark), cached per cell list
            self._index = _index_for(self.cells, self.iterations)
        return self._index

    def _available(self, exclude: set[str]) -> np.ndarray:
        return np.array([cid not in exclude for cid in self.ids], dtype=bool)

    def sample(self, rng: np.random.Generator, exclude: set[str]) -> Cell | None:
        n = len(self.cells)
        if len(exclude) < n // 2:  # mostly free: draw until a free one comes up (cheap, and one draw per pick)
            for _ in range(MAX_DUPLICATE_DRAWS):
                i = int(rng.integers(n))
                if self.ids[i] not in exclude:
                    return self.cells[i]
        free = np.flatnonzero(self._available(exclude))
        if free.size == 0:
            return None
        return self.cells[int(free[rng.integers(free.size)])]

    def mutate(self, cell: Cell, rng: np.random.Generator, exclude: set[str]) -> Cell | None:
        child = self.space.mutate(cell, rng)
        dist = self.index.distances(child).astype(float)
        blocked = ~self._available(exclude | {cell.canonical_id})
        dist[blocked] = np.inf
        best = dist.min()
        if not np.isfinite(best):
            return None
        ties = np.flatnonzero(dist == best)
        return self.cells[int(ties[rng.integers(ties.size)])]
