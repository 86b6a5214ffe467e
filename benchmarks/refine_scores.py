"""Score the bundled learning-curve cells (NAS-Bench-NLP's WikiText-2 runs of the development split) with
training-free proxies, through a results store, for the shortlist study (benchmarks/refine_study.py).

    python benchmarks/refine_scores.py [--corpus wikitext-2] [--proxies 'hidden_cov!state_escape']
        [--store sqlite:///docs/results/refine-wt2-scores.db] [--workers 1]

What the store already holds under the corpus's default scoring config is not scored again, so a killed run resumes.
The committed ``docs/results/refine-wt2-scores.db`` was made by the command above (180 cells, the three reference
cells included).
"""

from __future__ import annotations

import argparse
import sys
import time

from zeronas.core.config import ScoringConfig
from zeronas.refine.curves import CurveTable
from zeronas.refine.scores import curve_scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="wikitext-2")
    ap.add_argument("--proxies", default="hidden_cov!state_escape", help="comma-separated proxy specs")
    ap.add_argument("--store", default="sqlite:///docs/results/refine-wt2-scores.db")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    table = CurveTable.bundled()
    config = ScoringConfig().with_corpus(args.corpus)
    start = time.monotonic()
    specs = [s.strip() for s in args.proxies.split(",") if s.strip()]
    scores = curve_scores(table.cells, specs, config, args.store, workers=args.workers, progress=True)
    print(f"{len(scores)} of {len(table)} cells scored under config {config.config_hash()} "
          f"({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
