"""``run_search``: the one entry point behind ``zeronas search`` (choose the source, the config, the budget, run)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zeronas.cells.spaces import SearchSpace, get_space
from zeronas.core.config import ScoringConfig
from zeronas.core.spec import GATE
from zeronas.proxies.device import check_config
from zeronas.search.core import (ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_BUDGET, Budget, Candidate, ProgressFn,
                                 Ranking, Scorer, SearchError, SearchResult, default_proxy, evaluate_cells, normal_spec,
                                 proxy_members, ranked)
from zeronas.search.evolution import DEFAULT_POPULATION, DEFAULT_SAMPLE, evolution
from zeronas.search.prune import DEFAULT_FRACTION, PRUNE_CONFIG, PRUNE_PROXY, Supernet, prune, supernet_for
from zeronas.search.random_search import random_search
from zeronas.search.sources import BenchmarkSource, CandidateSource, SpaceSource
from zeronas.store import DEFAULT_STORE, ResultStore, open_store

__all__ = ["BENCHMARK_SPACE", "DEFAULT_ROUND", "run_search"]

BENCHMARK_SPACE = "nb-nlp"  # the space whose cells the bundled benchmark holds
#: Cells scored per round (at least one per worker). Fixed rather than equal to the worker count so that the
#: candidate sequence of a seed does not depend on the machine (up to 8 workers), and large enough that the
#: seconds a local worker pool takes to start are spread over several cells.
DEFAULT_ROUND = 8


def _benchmark_lookup() -> dict[str, Any]:
    from zeronas.bench.nbnlp import Benchmark

    return {a.canonical_id: a for a in Benchmark.nbnlp()}


def run_search(*, space: str = BENCHMARK_SPACE, proxy: str | None = None, algorithm: str = DEFAULT_ALGORITHM,
               budget: int | None = None, time_budget: float | None = None, seed: int = 0,
               store: str | ResultStore = DEFAULT_STORE, benchmark: bool | None = None, workers: int | None = None,
               timeout_s: float | None = None, config: ScoringConfig | None = None, executor: str | None = None,
               ray_address: str | None = None, round_size: int | None = None, gates: Sequence[str] = (),
               population_size: int = DEFAULT_POPULATION, sample_size: int = DEFAULT_SAMPLE,
               prune_fraction: float = DEFAULT_FRACTION, progress: ProgressFn | None = None,
               predictor: str | Path | None = None, guards: Sequence[str] | None = None) -> SearchResult:
    """Search ``space`` with ``algorithm`` ranked by ``proxy`` (a name or a combination ``a+b``, optionally with
    gates ``a+b!g``: see :mod:`zeronas.search.core`). ``gates`` adds gate proxies to ``proxy`` (or to the
    default one); ``guards`` is its former name (deprecated).

    Defaults: ``proxy`` :data:`~zeronas.search.core.DEFAULT_PROXY` (prune: ``ntk_cond+linear_regions``);
    ``benchmark`` True for the NAS-Bench-NLP space (candidates are benchmark cells) unless pruning; ``config`` the
    default :class:`ScoringConfig` (prune: :data:`~zeronas.search.prune.PRUNE_CONFIG`); a budget of
    :data:`~zeronas.search.core.DEFAULT_BUDGET` cells when neither ``budget`` nor ``time_budget`` is given (prune:
    no limit; its budget counts trial networks). ``seed`` drives every random choice of the search (not the
    scoring, whose seed is ``config.seed``).

    ``predictor``: a model file of ``zeronas predict fit`` to rank by instead of a proxy (random search and
    evolution; the scoring config must be the one it was fitted on)."""
    gates = _gates(gates, guards)
    search_space, benchmark = _check_search(space, algorithm, seed, benchmark, workers)
    pruning = algorithm == "prune"
    config = check_config(config or (PRUNE_CONFIG if pruning else ScoringConfig()))
    ranking, proxy, members = _ranking(proxy, gates, predictor, pruning, config)
    if budget is None and time_budget is None and not pruning:
        budget = DEFAULT_BUDGET
    limits = Budget(budget, time_budget)
    round_size = max(DEFAULT_ROUND, workers or 1) if round_size is None else round_size
    if round_size < 1:
        raise SearchError(f"the round size must be at least 1, got {round_size}")
    net = supernet_for(search_space) if pruning else None  # before opening the store: a bad space fails fast

    own = not isinstance(store, ResultStore)
    db = open_store(store) if own else store
    scorer: Scorer | None = None
    try:
        scorer = Scorer(db, config, members, workers=workers, timeout_s=timeout_s, executor=executor,
                        ray_address=ray_address)
        if net is not None:
            candidates, info = _prune(net, scorer, proxy, limits, prune_fraction, progress)
        else:
            source = _candidate_source(search_space, benchmark)
            candidates, info = _sample(algorithm, source, scorer, ranking, limits, np.random.default_rng(seed),
                                       round_size, population_size, sample_size, progress)
        return SearchResult(algorithm=algorithm, space=space, proxy=proxy, config=config, seed=seed,
                            benchmark=bool(benchmark), candidates=candidates, best=ranked(candidates, ranking),
                            computed=scorer.computed, reused=scorer.reused, seconds=limits.elapsed(), info=info,
                            ranking=None if isinstance(ranking, str) else ranking)
    finally:
        if scorer is not None:
            scorer.close()
        if own:
            db.close()


def _gates(gates: Sequence[str], guards: Sequence[str] | None) -> list[str]:
    if guards is not None:
        warnings.warn("run_search(guards=...) is deprecated: use gates=...", DeprecationWarning, stacklevel=3)
        return [*gates, *guards]
    return list(gates)


def _check_search(space: str, algorithm: str, seed: int, benchmark: bool | None,
                  workers: int | None) -> tuple[SearchSpace, bool]:
    """The search space and whether the candidates are benchmark cells, after checking the arguments."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise SearchError(f"the seed must be an integer from 0 to 2**63-1, got {seed!r}")
    if algorithm not in ALGORITHMS:
        raise SearchError(f"unknown algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
    try:
        search_space = get_space(space)
    except KeyError as exc:
        raise SearchError(str(exc.args[0])) from None
    pruning = algorithm == "prune"
    if benchmark is None:
        benchmark = space == BENCHMARK_SPACE and not pruning
    if benchmark and space != BENCHMARK_SPACE:
        raise SearchError(f"benchmark mode needs the {BENCHMARK_SPACE} space (the bundled benchmark holds its "
                          f"cells), not {space!r}")
    if benchmark and pruning:
        raise SearchError("pruning builds its own cells from a supernet: it has no benchmark mode")
    if workers is not None and workers < 1:
        raise SearchError(f"workers must be at least 1, got {workers}")
    return search_space, benchmark


def _ranking(proxy: str | None, gates: Sequence[str], predictor: str | Path | None, pruning: bool,
             config: ScoringConfig) -> tuple[str | Ranking, str, tuple[str, ...]]:
    """(what ranks the candidates, its name, the proxies it needs scored): a proxy spec or a predictor."""
    if predictor is None:
        proxy = proxy or (PRUNE_PROXY if pruning else default_proxy())
        proxy = normal_spec(proxy + "".join(GATE + g for g in gates))
        return proxy, proxy, proxy_members(proxy)
    if pruning:
        raise SearchError("pruning ranks trial supernets by proxies; it cannot use a predictor")
    if proxy or gates:
        raise SearchError("rank by a proxy (--proxy/--gate) or by a predictor (--predictor), not both")
    from zeronas.predict.model import PredictorError
    from zeronas.predict.ranking import PredictorRanking

    try:
        ranking = PredictorRanking.load(predictor, config.config_hash())
    except PredictorError as exc:
        raise SearchError(str(exc)) from None
    return ranking, str(ranking), ranking.members


def _prune(net: Supernet, scorer: Scorer, proxy: str, limits: Budget, fraction: float,
           progress: ProgressFn | None) -> tuple[list[Candidate], dict[str, Any]]:
    cell, rounds, trials = prune(net, scorer, proxy, limits, fraction=fraction, progress=progress)
    candidates: list[Candidate] = []
    evaluate_cells(scorer, [cell], candidates)
    return candidates, {"trials": trials, "prune_fraction": fraction, "rounds": rounds,
                        "supernet_candidates": sum(len(c) for c in net.initial())}


def _candidate_source(space: SearchSpace, benchmark: bool) -> CandidateSource:
    if benchmark:
        return BenchmarkSource([a.cell for a in _benchmark_lookup().values()], space)
    return SpaceSource(space)


def _sample(algorithm: str, source: CandidateSource, scorer: Scorer, ranking: str | Ranking, limits: Budget,
            rng: np.random.Generator, round_size: int, population_size: int, sample_size: int,
            progress: ProgressFn | None) -> tuple[list[Candidate], dict[str, Any]]:
    """Random search or evolution over ``source``."""
    if algorithm == "random":
        candidates = random_search(source, scorer, ranking, limits, rng, round_size=round_size, progress=progress)
        return candidates, {"round_size": round_size}
    candidates = evolution(source, scorer, ranking, limits, rng, round_size=round_size,
                           population_size=population_size, sample_size=sample_size, progress=progress)
    return candidates, {"population": population_size, "sample": sample_size, "round_size": round_size}


def ground_truth_for(result: SearchResult) -> dict[str, Any] | None:
    """Benchmark architectures by canonical id when the result's cells can be in the bundled benchmark."""
    return _benchmark_lookup() if result.space == BENCHMARK_SPACE else None
