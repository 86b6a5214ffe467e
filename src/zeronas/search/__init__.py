"""Training-free architecture search: random search, regularized evolution and TE-NAS-style pruning, driven by
the proxies and scored through the results store (see :func:`run_search` and ``zeronas search``)."""

from zeronas.search.core import (ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_BUDGET, DEFAULT_PROXY, Budget, Candidate,
                                 SearchError, SearchResult, default_proxy, fitness, ranked)
from zeronas.search.engine import BENCHMARK_SPACE, DEFAULT_ROUND, ground_truth_for, run_search
from zeronas.search.prune import PRUNE_CONFIG, PRUNE_PROXY, Supernet, supernet_for
from zeronas.search.sources import BenchmarkSource, SpaceSource, wl_distance, wl_features

__all__ = ["ALGORITHMS", "BENCHMARK_SPACE", "BenchmarkSource", "Budget", "Candidate", "DEFAULT_ALGORITHM",
           "DEFAULT_BUDGET", "DEFAULT_PROXY", "DEFAULT_ROUND", "PRUNE_CONFIG", "PRUNE_PROXY",
           "SearchError", "SearchResult", "SpaceSource", "Supernet", "default_proxy", "fitness", "ground_truth_for",
           "ranked", "run_search", "supernet_for", "wl_distance", "wl_features"]
