"""``run_search``: the one entry point behind ``zeronas search`` (choose the source, the config, the budget, run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zeronas.cells.spaces import get_space
from zeronas.core.config import ScoringConfig
from zeronas.proxies.device import check_config
from zeronas.search.core import (ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_BUDGET, GUARD, Budget, Candidate,
                                 ProgressFn, Ranking, Scorer, SearchError, SearchResult, default_proxy, evaluate_cells,
                                 normal_spec, proxy_members, ranked)
from zeronas.search.evolution import DEFAULT_POPULATION, DEFAULT_SAMPLE, evolution
from zeronas.search.prune import DEFAULT_FRACTION, PRUNE_CONFIG, PRUNE_PROXY, prune, supernet_for
from zeronas.search.random_search import random_search
from zeronas.search.sources import BenchmarkSource, CandidateSource, SpaceSource
from zeronas.store import ResultStore, open_store

__all__ = ["BENCHMARK_SPACE", "DEFAULT_ROUND", "DEFAULT_STORE", "run_search"]

DEFAULT_STORE = "sqlite:///zeronas.db"  # the store of ``zeronas evaluate``: scores are shared
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
               ray_address: str | None = None, round_size: int | None = None, guards: Sequence[str] = (),
               population_size: int = DEFAULT_POPULATION, sample_size: int = DEFAULT_SAMPLE,
               prune_fraction: float = DEFAULT_FRACTION, progress: ProgressFn | None = None,
               predictor: str | Path | None = None) -> SearchResult:
    """Search ``space`` with ``algorithm`` ranked by ``proxy`` (a name or a combination ``a+b``, optionally with
    guards ``a+b!g``: see :mod:`zeronas.search.core`). ``guards`` adds guard proxies to ``proxy`` (or to the
    default one).

    Defaults: ``proxy`` :data:`~zeronas.search.core.DEFAULT_PROXY` (prune: ``ntk_cond+linear_regions``);
    ``benchmark`` True for the NAS-Bench-NLP space (candidates are benchmark cells) unless pruning; ``config`` the
    default :class:`ScoringConfig` (prune: :data:`~zeronas.search.prune.PRUNE_CONFIG`); a budget of
    :data:`~zeronas.search.core.DEFAULT_BUDGET` cells when neither ``budget`` nor ``time_budget`` is given (prune:
    no limit; its budget counts trial networks). ``seed`` drives every random choice of the search (not the
    scoring, whose seed is ``config.seed``).

    ``predictor``: a model file of ``zeronas predict fit`` to rank by instead of a proxy (random search and
    evolution; the scoring config must be the one it was fitted on)."""
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
    config = check_config(config or (PRUNE_CONFIG if pruning else ScoringConfig()))
    ranking: str | Ranking
    if predictor is not None:
        if pruning:
            raise SearchError("pruning ranks trial supernets by proxies; it cannot use a predictor")
        if proxy or guards:
            raise SearchError("rank by a proxy (--proxy/--guard) or by a predictor (--predictor), not both")
        from zeronas.predict.model import PredictorError
        from zeronas.predict.ranking import PredictorRanking

        try:
            ranking = PredictorRanking.load(predictor, config.config_hash())
        except PredictorError as exc:
            raise SearchError(str(exc)) from None
        members = ranking.members
        proxy = str(ranking)
    else:
        proxy = proxy or (PRUNE_PROXY if pruning else default_proxy())
        proxy = normal_spec(proxy + "".join(GUARD + g for g in guards))
        members = proxy_members(proxy)
        ranking = proxy
    if budget is None and time_budget is None and not pruning:
        budget = DEFAULT_BUDGET
    limits = Budget(budget, time_budget)
    if workers is not None and workers < 1:
        raise SearchError(f"workers must be at least 1, got {workers}")
    if round_size is None:
        round_size = max(DEFAULT_ROUND, workers or 1)
    if round_size < 1:
        raise SearchError(f"the round size must be at least 1, got {round_size}")
    if pruning:
        net = supernet_for(search_space)  # before opening the store: a bad space fails fast

    own = not isinstance(store, ResultStore)
    db = open_store(store) if own else store
    scorer: Scorer | None = None
    try:
        scorer = Scorer(db, config, members, workers=workers, timeout_s=timeout_s, executor=executor,
                        ray_address=ray_address)
        rng = np.random.default_rng(seed)
        info: dict[str, Any] = {}
        if pruning:
            cell, rounds, trials = prune(net, scorer, proxy, limits, fraction=prune_fraction, progress=progress)
            candidates: list[Candidate] = []
            evaluate_cells(scorer, [cell], candidates)
            info = {"trials": trials, "prune_fraction": prune_fraction, "rounds": rounds,
                    "supernet_candidates": sum(len(c) for c in net.initial())}
        else:
            lookup = _benchmark_lookup() if benchmark else None
            source: CandidateSource
            if lookup is not None:
                source = BenchmarkSource([a.cell for a in lookup.values()], search_space)
            else:
                source = SpaceSource(search_space)
            if algorithm == "random":
                candidates = random_search(source, scorer, ranking, limits, rng, round_size=round_size,
                                           progress=progress)
            else:
                candidates = evolution(source, scorer, ranking, limits, rng, round_size=round_size,
                                       population_size=population_size, sample_size=sample_size,
                                       progress=progress)
                info = {"population": population_size, "sample": sample_size}
            info["round_size"] = round_size
        return SearchResult(algorithm=algorithm, space=space, proxy=proxy, config=config, seed=seed,
                            benchmark=bool(benchmark), candidates=candidates, best=ranked(candidates, ranking),
                            computed=scorer.computed, reused=scorer.reused, seconds=limits.elapsed(), info=info)
    finally:
        if scorer is not None:
            scorer.close()
        if own:
            db.close()


def ground_truth_for(result: SearchResult) -> dict[str, Any] | None:
    """Benchmark architectures by canonical id when the result's cells can be in the bundled benchmark."""
    return _benchmark_lookup() if result.space == BENCHMARK_SPACE else None
