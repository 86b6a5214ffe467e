"""Choose the recommended method by cross-validation on a store, and report only the held-out folds' figures.

The choice among the candidate specs (proxies, rank sums ``a+b`` and gated specs ``rank!gate``) is fitted to data,
so it is made inside each fold: the architectures of the ground truth are split into ``--folds`` seeded folds; for
each fold the spec with the best criterion on the other folds is chosen and measured on the held-out fold only.
Criterion: Kendall tau over the trained cells, among the specs whose divergence ROC-AUC on the training folds is
at least ``--min-auc`` (a recommended method must keep untrainable cells out of the top); the held-out figures of
every fold and their mean are printed, and ``--json`` writes them.

    python benchmarks/recommended_cv.py [--store sqlite:///docs/results/nbnlp-dev-scores.db] [--folds 5]
        [--candidates 'hidden_cov!state_escape,hidden_cov+state_escape,...'] [--json out.json]

No proxy is computed: every candidate's members must already be in the store (``zeronas evaluate`` puts them
there). Architectures missing a member's score count as failed for that spec, as in ``zeronas evaluate``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from zeronas.bench.nbnlp import Benchmark
from zeronas.core.spec import spec_proxies
from zeronas.metrics import collect, proxy_metrics, targets_from_architectures
from zeronas.proxies.registry import parse_specs, proxy_revisions
from zeronas.proxies import ScoringConfig
from zeronas.store import open_store

DEFAULT_CANDIDATES = ("hidden_cov", "hidden_cov!state_escape", "hidden_cov_l2!state_escape",
                      "hidden_cov+hidden_cov_l2!state_escape", "hidden_cov+state_escape",
                      "hidden_cov_l2+state_escape")
FIGURES = ("kendall_tau", "tau_top10", "divergence_auc", "top1_ppl", "top10_diverged", "precision_at_k")


def fold_of(ids: list[str], folds: int, seed: int) -> dict[str, int]:
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[i]: pos % folds for pos, i in enumerate(order)}


def figures(spec: str, scores, targets) -> dict[str, float | None]:
    m = proxy_metrics(collect(spec, scores, targets), n_boot=0)
    return {k: getattr(m, k) for k in FIGURES}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="sqlite:///docs/results/nbnlp-dev-scores.db")
    ap.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-auc", type=float, default=0.9)
    ap.add_argument("--json", default=None, help="write the per-fold figures here")
    args = ap.parse_args(argv)
    specs = parse_specs(args.candidates)
    members = sorted({m for s in specs for m in spec_proxies(s)})
    config = ScoringConfig()
    with open_store(args.store) as store:
        table = store.scores_table(config, members, revisions=proxy_revisions(members))
    archs = [a for a in Benchmark.nbnlp() if a.canonical_id in table]
    if not archs:
        print("the store holds none of the benchmark's architectures at the default config", file=sys.stderr)
        return 1
    targets = targets_from_architectures(archs)
    ids = list(targets)
    fold = fold_of(ids, args.folds, args.seed)
    print(f"{len(ids)} architectures, {args.folds} folds (seed {args.seed}); candidates: {', '.join(specs)}")
    rows = []
    for k in range(args.folds):
        train = {a: targets[a] for a in ids if fold[a] != k}
        test = {a: targets[a] for a in ids if fold[a] == k}
        fit = {s: figures(s, {a: table[a] for a in train}, train) for s in specs}
        eligible = [s for s in specs if (fit[s]["divergence_auc"] or 0.0) >= args.min_auc] or specs
        chosen = max(eligible, key=lambda s: fit[s]["kendall_tau"] or -math.inf)
        held = figures(chosen, {a: table[a] for a in test}, test)
        rows.append({"fold": k, "chosen": chosen, "n_test": len(test), **held})
        print(f"fold {k}: chose {chosen} (training tau {fit[chosen]['kendall_tau']:+.3f}, AUC "
              f"{fit[chosen]['divergence_auc']:.3f}); held out ({len(test)} cells): "
              + ", ".join(f"{f} {_fmt(held[f])}" for f in FIGURES))
    print("mean over held-out folds: " + ", ".join(
        f"{f} {_fmt(float(np.mean([r[f] for r in rows if r[f] is not None])))}" for f in FIGURES))
    chosen_all = {r["chosen"] for r in rows}
    print(f"chosen in every fold: {', '.join(sorted(chosen_all))}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"folds": rows, "candidates": specs, "min_auc": args.min_auc, "seed": args.seed}, fh,
                      indent=1, default=lambda v: "inf" if isinstance(v, float) and math.isinf(v) else v)
    return 0


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "diverged"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


if __name__ == "__main__":
    sys.exit(main())
