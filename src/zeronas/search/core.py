"""What every search algorithm shares: scoring through the store, ranking by a proxy, budgets, results.

Scoring goes through :func:`zeronas.run.score_many` and the same results store as ``zeronas evaluate``, so a
(cell, proxy, config) is never computed twice, across runs and commands alike. Every decision of a search depends
only on its seed and on the scores, which are deterministic, so running a killed search again with the same
arguments replays the same candidates and finds their scores stored: it resumes where it was stopped.

Ranking (:func:`fitness`): one proxy ranks by its value in its registered direction; a combination ``a+b`` ranks
by the sum of the members' ranks (:func:`zeronas.metrics.combine_ranks`, average ranks) over the candidates this
search has scored so far, as TE-NAS aggregates its indicators. A candidate whose score failed (``nan``, ``inf``,
``error``, ``timeout``...) for any member ranks after every scored one. Ties keep the order of evaluation.

Gates: a spec ``RANK!g1!g2`` also scores the gate proxies ``g1``, ``g2``; a candidate passes a gate when its gate
score is ok and on the good side of the gate's registered ``gate`` threshold (a proxy without one: ok is enough).
Candidates that pass every gate rank above all others, each group ordered by ``RANK``; the gates' values do not
rank. ``hidden_cov!state_escape`` ranks by ``hidden_cov`` the cells whose untrained state does not
escape from a large starting state, then the others (on NAS-Bench-NLP most of those diverge in training). The same
rule is :mod:`zeronas.metrics`'s, so ``zeronas evaluate --proxies 'hidden_cov!state_escape'`` measures exactly
what the search ranks by.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np
import torch

from zeronas.cells.recipe import Cell
from zeronas.core.spec import SpecError, spec_name
from zeronas.core.spec import parse_spec as grammar_parse_spec
from zeronas.metrics import combine_ranks, gate_order, gate_passes, gate_threshold
from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score
from zeronas.proxies.registry import get_proxy, proxy_revisions, registered_names
from zeronas.recommended import RECOMMENDED_METHOD
from zeronas.store import ResultStore

__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "DEFAULT_BUDGET", "DEFAULT_PROXY", "Budget", "Candidate",
           "ProgressFn", "Ranking", "Scorer", "SearchError", "SearchResult", "default_proxy", "fitness", "normal_spec",
           "parse_spec", "proxy_members"]

#: The proxy of ``zeronas search`` when none is named (random search and evolution): the recommended method, the
#: best-ranking proxy gated by the trainability check (see :mod:`zeronas.recommended`).
DEFAULT_PROXY = RECOMMENDED_METHOD
#: Fallback when :data:`DEFAULT_PROXY` is not registered.
FALLBACK_PROXY = "params"
ALGORITHMS: tuple[str, ...] = ("random", "evolution", "prune")
DEFAULT_ALGORITHM = "evolution"
#: Distinct candidates scored when neither a budget nor a time budget is given. Measured: the default
#: ``zeronas search`` (evolution, ``hidden_cov!state_escape`` at the default scoring config, 2 workers, an empty
#: store) takes about 80 s on 2 shared cores, well inside the 10 minutes a default run may take; in benchmark mode
#: evolution with this budget picks a cell of median test ppl 99.4 over 10 seeds, none diverged
#: (benchmarks/search_quality.py --proxy 'hidden_cov!state_escape' --scoring-config default).
DEFAULT_BUDGET = 200

ProgressFn = Callable[[int, "int | None", "Candidate | None"], None]  # (evaluated, budget, best so far)


class SearchError(ValueError):
    """A search that cannot run: bad arguments, a space without what the algorithm needs."""


def default_proxy() -> str:
    """:data:`DEFAULT_PROXY` if every member is registered, else :data:`FALLBACK_PROXY`."""
    known = registered_names()
    try:
        grammar_parse_spec(DEFAULT_PROXY, known)
    except SpecError:
        return FALLBACK_PROXY
    return DEFAULT_PROXY


def parse_spec(spec: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(ranking members, gates)`` of ``RANK[!GATE...]`` (RANK a name or a combination ``a+b``), validated
    against the registry (:func:`zeronas.core.spec.parse_spec`)."""
    try:
        return grammar_parse_spec(spec, registered_names())
    except SpecError as exc:
        raise SearchError(str(exc)) from None


def normal_spec(spec: str) -> str:
    """``spec`` written canonically (``a+b!g``), after validation."""
    return spec_name(*parse_spec(spec))


def proxy_members(spec: str) -> tuple[str, ...]:
    """Every proxy a spec needs scored: the ranking members, then the gates not among them."""
    members, gates = parse_spec(spec)
    return members + tuple(g for g in gates if g not in members)


@dataclass
class Candidate:
    """One evaluated cell. ``index``: its position in the order of evaluation (0 = first)."""

    cell: Cell
    scores: dict[str, Score]
    index: int
    fitness: float = -math.inf  # filled by :func:`fitness`; only comparable within one search at one moment

    @property
    def canonical_id(self) -> str:
        return self.cell.canonical_id

    def ok(self, members: Sequence[str]) -> bool:
        return all(m in self.scores and self.scores[m].ok for m in members)


class Ranking(Protocol):
    """A ranking that is not a proxy spec (e.g. a fitted predictor): the proxies it needs scored, and a fitness
    per candidate (higher is better, ``-inf`` = failed), which depends on the candidate alone."""

    @property
    def members(self) -> tuple[str, ...]: ...

    def fitness(self, candidates: Sequence[Candidate]) -> np.ndarray: ...


def fitness(candidates: Sequence[Candidate], spec: "str | Ranking") -> np.ndarray:
    """Higher is better, ``-inf`` for a failed candidate; also written to each ``Candidate.fitness``.

    One proxy: its value oriented by its direction. A combination: the sum of per-member ranks over the
    candidates whose every member is ok. With gates (``rank!g``), as in :mod:`zeronas.metrics`: the rank of
    that score among the ranked candidates, plus their number for a candidate that passes every gate (its gate
    score is ok and on the good side of the gate's registered ``gate`` threshold), so every passing candidate
    ranks above every other one. A :class:`Ranking` object gives its own fitness."""
    if not isinstance(spec, str):
        out = np.asarray(spec.fitness(candidates), dtype=float)
        for c, f in zip(candidates, out):
            c.fitness = float(f)
        return out
    members, gates = parse_spec(spec)
    n = len(candidates)
    out = np.full(n, -math.inf)
    ok = np.array([c.ok(members) for c in candidates], dtype=bool)
    if ok.any():
        hib = [get_proxy(m).higher_is_better for m in members]
        cols = [np.array([c.scores[m].value for c, good in zip(candidates, ok) if good], dtype=float)
                for m in members]
        if len(members) == 1:
            out[ok] = cols[0] if hib[0] else -cols[0]
        else:
            out[ok] = combine_ranks(cols, hib)
        if gates:
            passes = np.array([all(gate_passes(c.scores.get(g), get_proxy(g).higher_is_better, gate_threshold(g))
                                   for g in gates) for c, good in zip(candidates, ok) if good], dtype=bool)
            out[ok] = gate_order(out[ok], passes)
    for c, f in zip(candidates, out):
        c.fitness = float(f)
    return out


def ranked(candidates: Sequence[Candidate], spec: "str | Ranking") -> list[Candidate]:
    """The candidates best first (ties: evaluated earlier first)."""
    fit = fitness(candidates, spec)
    order = sorted(range(len(candidates)), key=lambda i: (-fit[i], candidates[i].index))
    return [candidates[i] for i in order]


@dataclass
class Budget:
    """How much a search may do: ``cells`` distinct candidates and/or ``seconds`` of wall-clock time, whichever
    ends first (neither: no limit). The time is checked between rounds of scoring, so a run can overshoot by one
    round."""

    cells: int | None = None
    seconds: float | None = None
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.cells is not None and self.cells < 1:
            raise SearchError(f"the budget must be at least 1 cell, got {self.cells}")
        if self.seconds is not None and not self.seconds > 0:
            raise SearchError(f"the time budget must be positive, got {self.seconds}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def out_of_time(self) -> bool:
        return self.seconds is not None and self.elapsed() >= self.seconds

    def left(self, done: int) -> int | None:
        """Cells left (None: no cell limit)."""
        return None if self.cells is None else max(0, self.cells - done)

    def exhausted(self, done: int) -> bool:
        """No cell left, or out of time once something was done (a search always runs its first round)."""
        return self.left(done) == 0 or (done > 0 and self.out_of_time())


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's thread count set to ``n`` (None: left alone) for the ``with`` block, then put back as it was.

    The serial executor scores in this process with one thread, as each worker process of the local executor
    does: on a shared machine, torch's threads spin-wait on every small op (measured: the NTK's 150 small
    matmuls of a supernet take 2.3 s with 2 threads on 2 busy cores, 1 ms with one)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Scorer:
    """Scores cells with the members of a proxy spec through :func:`~zeronas.run.score_many` and one open store.

    ``computed`` counts the cells this search had to score, ``reused`` those the store already held."""

    def __init__(self, store: ResultStore, config: ScoringConfig, members: Sequence[str], *,
                 workers: int | None = None, timeout_s: float | None = None, executor: str | None = None,
                 ray_address: str | None = None) -> None:
        self.store = store
        self.config = config
        self.members = list(members)
        self.workers = workers or os.cpu_count() or 1
        self.timeout_s = timeout_s
        # One worker and no time limit: score in this process. Otherwise one pool of workers serves every
        # round (each worker loads torch and the corpus once, which takes seconds), started on first use.
        if executor is None:
            executor = "serial" if self.workers == 1 and timeout_s is None else "local"
        self.executor = executor
        self.ray_address = ray_address
        self._pool: Any = None
        self.computed = 0
        self.reused = 0
        self.failed = 0
        self.seconds = 0.0

    def close(self) -> None:
        """Stop the workers, if any were started (idempotent)."""
        if self._pool is not None:
            self._pool.close()

    def score(self, cells: Sequence[Cell]) -> list[dict[str, Score]]:
        """The members' scores of each cell (scoring those the store lacks), in the order given."""
        from zeronas.run.executor import score_many

        if not cells:
            return []
        if self.executor != "serial" and self._pool is None:
            from zeronas.run.executor import WorkerPool

            self._pool = WorkerPool(self.config, workers=self.workers, executor=self.executor,  # type: ignore[arg-type]
                                    ray_address=self.ray_address)
        with _threads(1 if self.executor == "serial" else None):
            summary = score_many(list(cells), self.members, self.config, self.store, workers=self.workers,
                                 timeout_s=self.timeout_s, progress=False,
                                 executor=self.executor,  # type: ignore[arg-type]
                                 ray_address=self.ray_address, pool=self._pool)
        self.computed += summary.scored
        self.reused += summary.skipped
        self.failed += summary.failed
        self.seconds += summary.seconds
        revisions = proxy_revisions(self.members)
        out = []
        for cell in cells:
            row = self.store.get(cell.canonical_id, self.config, revisions=revisions)
            out.append({m: row[m] for m in self.members if m in row})
        return out


@dataclass
class SearchResult:
    """What a search found. ``candidates``: every distinct cell evaluated, in order of evaluation; ``best``:
    them ranked by the proxy (failed last). ``info``: algorithm-specific details (e.g. the pruning rounds)."""

    algorithm: str
    space: str
    proxy: str
    config: ScoringConfig
    seed: int
    benchmark: bool
    candidates: list[Candidate]
    best: list[Candidate]
    computed: int
    reused: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    ranking: Any = None  # a Ranking object (a predictor) when the search did not rank by a proxy spec

    def top(self, k: int) -> list[Candidate]:
        return self.best[:k]

    def entries(self, k: int, ground_truth: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The top ``k`` as JSON-ready dicts: recipe, canonical_id, scores, rank; with ``ground_truth``
        (canonical id -> benchmark Architecture), cells of the benchmark also get ``diverged`` (every run
        diverged), ``test_loss`` (None if so) and ``test_ppl`` (None if it diverged or is too large for a float).
        Ranked by a predictor, each row also gets its ``prediction`` (see ``PredictorRanking.explain``)."""
        rows = []
        top = self.top(k)
        explain = getattr(self.ranking, "explain", None)
        predictions = explain(top) if explain is not None else [None] * len(top)
        for rank, (c, prediction) in enumerate(zip(top, predictions), start=1):
            row: dict[str, Any] = {
                "rank": rank,
                "canonical_id": c.canonical_id,
                "recipe": c.cell.recipe,
                "scores": {m: _score_json(s) for m, s in c.scores.items()},
                "fitness": c.fitness if math.isfinite(c.fitness) else None,
                "evaluated": c.index + 1,
            }
            if explain is not None:
                row["prediction"] = prediction
            if ground_truth is not None:
                arch = ground_truth.get(c.canonical_id)
                row["in_benchmark"] = arch is not None
                if arch is not None:  # diverged: every run diverged; a finite loss too large for exp has no ppl
                    ppl = arch.test_ppl
                    row["diverged"] = bool(arch.diverged)
                    row["test_loss"] = arch.mean_test_loss
                    row["test_ppl"] = ppl if ppl is not None and math.isfinite(ppl) else None
            rows.append(row)
        return rows

    def summary(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "space": self.space, "proxy": self.proxy, "seed": self.seed,
                "benchmark": self.benchmark, "evaluated": len(self.candidates), "computed": self.computed,
                "reused": self.reused, "seconds": round(self.seconds, 3), "config_hash": self.config.config_hash(),
                **{k: v for k, v in self.info.items() if k != "rounds"}}


def _score_json(s: Score) -> dict[str, Any]:
    return {"value": s.value, "status": s.status}


def evaluate_cells(scorer: Scorer, cells: Sequence[Cell], candidates: list[Candidate]) -> list[Candidate]:
    """Score ``cells`` (distinct, none evaluated before) and append them to ``candidates`` in the given order."""
    new = []
    for cell, scores in zip(cells, scorer.score(cells)):
        cand = Candidate(cell, scores, len(candidates))
        candidates.append(cand)
        new.append(cand)
    return new


def distinct(cells: Iterable[Cell], seen: set[str]) -> list[Cell]:
    """The cells whose canonical id is not in ``seen`` (first occurrence kept); ``seen`` is updated."""
    out = []
    for cell in cells:
        if cell.canonical_id not in seen:
            seen.add(cell.canonical_id)
            out.append(cell)
    return out
