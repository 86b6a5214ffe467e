"""Do failed scores at initialisation foretell divergence in training? A training-free filter, measured on a store.

A proxy whose computation overflows on the untrained network (status ``nan``/``inf``: SynFlow's float64 flow with
absolute weights, Zen-score's float64 forward on Gaussian inputs) says the network amplifies signals without
bound. This script measures, over every benchmark architecture the store holds, how well "one of ``--guards``
failed" predicts that the cell diverged in training (every run), and what the ranking by each ``--rank`` proxy picks
with and without the flagged cells.

    python benchmarks/divergence_filter.py [--store sqlite:///docs/results/nbnlp-dev-scores.db]
        [--guards zen,synflow] [--rank hidden_cov,hidden_cov_l2,naswot] [--top 10]
"""

from __future__ import annotations

import argparse
import math
import sys

from zeronas.bench.nbnlp import Benchmark
from zeronas.proxies import ScoringConfig, get_proxy
from zeronas.proxies.registry import proxy_revisions
from zeronas.store import open_store


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="sqlite:///docs/results/nbnlp-dev-scores.db")
    ap.add_argument("--guards", default="zen,synflow", help="proxies whose failure flags a cell")
    ap.add_argument("--rank", default="hidden_cov,hidden_cov_l2,naswot", help="proxies whose picks are shown")
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args(argv)
    guards = [g for g in args.guards.split(",") if g]
    ranks = [r for r in args.rank.split(",") if r]
    for name in guards + ranks:
        get_proxy(name)  # KeyError naming the known proxies

    config = ScoringConfig()
    with open_store(args.store) as store:
        table = store.scores_table(config, guards + ranks, revisions=proxy_revisions(guards + ranks))
    archs = {a.canonical_id: a for a in Benchmark.nbnlp() if a.canonical_id in table}
    complete = [cid for cid in archs if all(g in table[cid] for g in guards)]
    if not complete:
        print("no architecture in the store has every guard proxy scored", file=sys.stderr)
        return 1
    diverged = {cid for cid in complete if archs[cid].diverged}
    flagged = {cid for cid in complete if any(not table[cid][g].ok for g in guards)}
    caught = flagged & diverged
    print(f"{len(complete)} architectures with every guard scored (config {config.config_hash()}); "
          f"{len(diverged)} diverged in every training run")
    print(f"flag = any of {', '.join(guards)} failed at initialisation: {len(flagged)} cells flagged, "
          f"{len(caught)} of them diverged ({len(caught) / max(len(flagged), 1):.0%}; base rate "
          f"{len(diverged) / len(complete):.0%})")
    print(f"  diverged cells caught: {len(caught)}/{len(diverged)}; trained cells flagged: "
          f"{len(flagged) - len(caught)}/{len(complete) - len(diverged)}")

    def ppl(cid: str) -> float:
        a = archs[cid]
        return math.inf if a.diverged else float(a.test_ppl)

    def show(values: list[float]) -> str:
        return ", ".join("diverged" if math.isinf(v) else f"{v:.1f}" for v in values)

    for name in ranks:
        hib = get_proxy(name).higher_is_better
        ok = [cid for cid in complete if name in table[cid] and table[cid][name].ok]
        ranked = sorted(ok, key=lambda cid: table[cid][name].value, reverse=hib)
        kept = [cid for cid in ranked if cid not in flagged]
        print(f"\n{name}: top {args.top} picks' true test ppl")
        print(f"  all cells:      {show([ppl(c) for c in ranked[:args.top]])}")
        print(f"  flagged removed: {show([ppl(c) for c in kept[:args.top]])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
