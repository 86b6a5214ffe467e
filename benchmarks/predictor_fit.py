"""How long does `zeronas predict fit` take on the whole development split, once the scores are in the store?

Reads the feature proxies' stored scores (no proxy is computed: the store must hold them), builds the feature
rows, and times each step and each objective's fit (``--repeats`` times; the median is reported). The goal: under
a minute on 2 CPU cores.

    python benchmarks/predictor_fit.py [--store sqlite:///docs/results/nbnlp-dev-scores.db] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from zeronas.bench.nbnlp import Benchmark
from zeronas.predict.data import default_feature_proxies, labelled_data
from zeronas.run import score_and_read
from zeronas.predict.model import OBJECTIVES, Predictor
from zeronas.proxies import ScoringConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="sqlite:///docs/results/nbnlp-dev-scores.db")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    config = ScoringConfig()
    proxies = default_feature_proxies()
    archs = list(Benchmark.nbnlp())
    start = time.perf_counter()
    _, scores = score_and_read(archs, proxies, config, args.store, score=False)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    data = labelled_data(archs, scores, proxies)
    feature_s = time.perf_counter() - start
    print(f"{len(archs)} cells, {data.X.shape[1]} features ({len(proxies)} proxies + structure); read the store in "
          f"{read_s:.2f} s, built the features in {feature_s:.2f} s")
    for objective in OBJECTIVES:
        times = []
        for r in range(args.repeats):
            start = time.perf_counter()
            Predictor.fit(data.X, data.losses, proxies=proxies, objective=objective, seed=r)
            times.append(time.perf_counter() - start)
        print(f"fit ({objective}): median {statistics.median(times):.2f} s over {args.repeats} fits "
              f"(min {min(times):.2f}, max {max(times):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
