"""How good are the cells a training-free search picks? Benchmark-mode searches of NAS-Bench-NLP over several seeds.

For each seed and algorithm (random search, aging evolution), the search evaluates ``--budget`` distinct benchmark
cells, ranked by ``--proxy``, and picks its top cell; the benchmark tells that cell's true test perplexity (mean
over the runs that did not diverge; a pick whose every run diverged counts as ``inf``). Baselines, at the same
budget:

- **random cell**: pick one benchmark cell uniformly at random, no search. Its expected outcome is exact (no
  sampling): the benchmark median perplexity (133.3 over the 2,515 canonical architectures), the mean percentile
  over all cells, and a 20 % chance of a cell that diverged.
- **params**: the same search, ranked by the parameter count (the proxy-free baseline). In random mode it sees the
  very same cells as the proxy (the candidates depend on the seed only), so the two picks are directly comparable.

Reported per method (over seeds): the median and mean true perplexity of the top-1 pick (mean over picks that did
not diverge), how many picks diverged, the mean percentile of the pick among all benchmark cells by true loss
(0 % = the best cell, diverged = 100 %), the median of the best true perplexity among the top 5 picks (a user
would train a short list), and, for context, the best true perplexity among all cells the search evaluated (an
oracle that would need ``budget`` trainings: it measures what the search *looked at*, not what it picked).

The proxy is scored with a cheap config by default (``CHEAP_CONFIG``: the default sizes with one layer; the
layer-1 proxies such as ``hidden_cov`` only look at layer 1), params with the default config (it runs no data).
Scores go to ``--store``, so a second run is fast and an interrupted run resumes. ``--exhaustive`` also scores
every benchmark cell with the proxy and reports the proxy's global pick: what a search by this proxy can at best
find, and how often the searches found it.

    python benchmarks/search_quality.py --seeds 5 --budget 100 --proxy hidden_cov
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from typing import Any

from zeronas.bench.nbnlp import Benchmark
from zeronas.core.config import ScoringConfig
from zeronas.search import default_proxy, run_search
from zeronas.store import DEFAULT_STORE

CHEAP_CONFIG = ScoringConfig(n_layers=1)
BASELINE = "params"


def _percentiles(bench: Benchmark) -> dict[str, float]:
    """Canonical id -> fraction of benchmark cells with a strictly lower true loss (diverged: 1.0)."""
    finite = sorted(a.mean_test_loss for a in bench if not a.diverged)
    n = len(bench)
    out = {}
    for a in bench:
        if a.diverged:
            out[a.canonical_id] = 1.0
        else:
            lo, hi = 0, len(finite)
            while lo < hi:  # bisect_left on the loss
                mid = (lo + hi) // 2
                if finite[mid] < a.mean_test_loss:
                    lo = mid + 1
                else:
                    hi = mid
            out[a.canonical_id] = lo / n
    return out


def _ppl(arch: Any) -> float:
    return math.inf if arch.diverged else float(arch.test_ppl)


PREDICTOR = "predictor"


def run(seeds: list[int], budget: int, proxy: str, store: str, algorithms: list[str], workers: int,
        config: ScoringConfig, exhaustive: bool = False, predictor: str | None = None) -> dict[str, Any]:
    bench = Benchmark.nbnlp()
    by_id = {a.canonical_id: a for a in bench}
    pct = _percentiles(bench)
    methods = [(alg, p) for alg in algorithms for p in dict.fromkeys([proxy, BASELINE])]
    fitted: set[str] = set()
    if predictor is not None:  # ranked by a fitted model instead of a proxy (its own scoring config)
        from zeronas.predict.model import load_predictor

        fitted = set(load_predictor(predictor).training.get("canonical_ids", []))
        methods += [(alg, PREDICTOR) for alg in algorithms]
    rows: dict[str, list[dict[str, Any]]] = {}
    for alg, p in methods:
        key = f"{alg} / {p}"
        for seed in seeds:
            cfg = ScoringConfig() if p in (BASELINE, PREDICTOR) else config
            t0 = time.monotonic()
            if p == PREDICTOR:
                result = run_search(algorithm=alg, predictor=predictor, budget=budget, seed=seed, store=store,
                                    workers=workers, config=cfg)
            else:
                result = run_search(algorithm=alg, proxy=p, budget=budget, seed=seed, store=store, workers=workers,
                                    config=cfg)
            top = [by_id[c.canonical_id] for c in result.best]
            rows.setdefault(key, []).append({
                "seed": seed,
                "top1_ppl": _ppl(top[0]),
                "top1_percentile": pct[top[0].canonical_id],
                "top5_best_ppl": min(_ppl(a) for a in top[:5]),
                "evaluated_best_ppl": min(_ppl(a) for a in top),
                "seconds": time.monotonic() - t0,
                "computed": result.computed,
                "proxy": p,
                "top1_id": top[0].canonical_id,
                "top1_in_fitted_sample": top[0].canonical_id in fitted if p == PREDICTOR else None,
            })
            print(f"{key:28s} seed {seed}: top-1 ppl {rows[key][-1]['top1_ppl']:.1f} "
                  f"({result.computed} cells scored, {rows[key][-1]['seconds']:.0f} s)", file=sys.stderr)
    finite = sorted(_ppl(a) for a in bench if not a.diverged)
    if exhaustive:  # the proxy's pick among ALL benchmark cells: the best a search by this proxy can do
        full = run_search(algorithm="random", proxy=proxy, budget=len(bench), seed=0, store=store,
                          workers=workers, config=config)
        best = full.best[0]
        found = sum(r["top1_id"] == best.canonical_id for rs in rows.values() for r in rs if r["proxy"] == proxy)
        exhaustive_info = {"global_pick_ppl": _ppl(by_id[best.canonical_id]),
                           "global_pick_percentile": pct[best.canonical_id],
                           "global_top10_ppl": [_ppl(by_id[c.canonical_id]) for c in full.best[:10]],
                           "runs_that_picked_it": found}
    summary = {"budget": budget, "seeds": seeds, "proxy": proxy, "config_hash": config.config_hash(),
               "benchmark_best_ppl": finite[0], "benchmark_median_ppl": statistics.median(finite),
               "benchmark_diverged_fraction": sum(a.diverged for a in bench) / len(bench),
               "random_cell_mean_finite_ppl": statistics.fmean(finite),
               "random_cell_mean_percentile": statistics.fmean(pct.values()), "methods": {}}
    if exhaustive:
        summary["exhaustive"] = exhaustive_info
    for key, rs in rows.items():
        top1 = [r["top1_ppl"] for r in rs]
        ok = [x for x in top1 if math.isfinite(x)]
        summary["methods"][key] = {
            "top1_ppl_median": statistics.median(top1),
            "top1_ppl_mean_finite": statistics.fmean(ok) if ok else math.inf,
            "top1_diverged": len(top1) - len(ok),
            "top1_percentile_mean": statistics.fmean(r["top1_percentile"] for r in rs),
            "top5_best_ppl_median": statistics.median(r["top5_best_ppl"] for r in rs),
            "evaluated_best_ppl_median": statistics.median(r["evaluated_best_ppl"] for r in rs),
            "seconds_mean": statistics.fmean(r["seconds"] for r in rs),
            "top1_in_fitted_sample": sum(bool(r.get("top1_in_fitted_sample")) for r in rs),
            "runs": rs,
        }
    return summary


def markdown(summary: dict[str, Any]) -> str:
    n = len(summary["seeds"])
    lines = [f"Benchmark-mode search, budget {summary['budget']} cells, {n} seeds, proxy {summary['proxy']} "
             f"(config {summary['config_hash']}); NAS-Bench-NLP best {summary['benchmark_best_ppl']:.1f}, "
             f"median {summary['benchmark_median_ppl']:.1f} test ppl.", "",
             "| method | top-1 ppl (median) | top-1 ppl (mean, finite) | diverged picks | top-1 percentile | "
             "best of top-5 (median) | best evaluated (oracle, median) | s/run |",
             "|---|---|---|---|---|---|---|---|",
             f"| random cell (exact) | {summary['benchmark_median_ppl']:.1f} | "
             f"{summary['random_cell_mean_finite_ppl']:.1f} | {100 * summary['benchmark_diverged_fraction']:.0f} % | "
             f"{100 * summary['random_cell_mean_percentile']:.1f} % | - | - | 0 |"]
    for key, m in summary["methods"].items():
        lines.append(f"| {key} | {m['top1_ppl_median']:.1f} | {m['top1_ppl_mean_finite']:.1f} | "
                     f"{m['top1_diverged']}/{n} | {100 * m['top1_percentile_mean']:.1f} % | "
                     f"{m['top5_best_ppl_median']:.1f} | {m['evaluated_best_ppl_median']:.1f} | "
                     f"{m['seconds_mean']:.0f} |")
    if "exhaustive" in summary:
        ex = summary["exhaustive"]
        lines += ["", f"Scoring every benchmark cell, the proxy's own top cell has test ppl "
                      f"{ex['global_pick_ppl']:.1f} (percentile {100 * ex['global_pick_percentile']:.1f} %); "
                      f"{ex['runs_that_picked_it']} of the searches above with this proxy picked that very cell. "
                      f"The proxy's global top 10: "
                      + ", ".join(f"{x:.1f}" for x in ex["global_top10_ppl"]) + "."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="5", help="a count N (seeds 0..N-1) or a comma-separated list")
    parser.add_argument("--budget", type=int, default=100, help="distinct cells per search")
    parser.add_argument("--proxy", default=None, help="a proxy or combination a+b (default: DEFAULT_PROXY)")
    parser.add_argument("--store", default=DEFAULT_STORE, help="results store URL")
    parser.add_argument("--algorithms", default="random,evolution")
    parser.add_argument("--workers", type=int, default=1, help="1: in this process (cheap configs: fastest)")
    parser.add_argument("--scoring-config", default=None,
                        help="JSON file of ScoringConfig fields for the proxy, or 'default' for ScoringConfig() (the "
                             "config of zeronas search and of the committed results store)")
    parser.add_argument("--exhaustive", action="store_true",
                        help="also score every benchmark cell with the proxy: its global pick, for reference")
    parser.add_argument("--predictor", default=None,
                        help="also search ranked by this model of `zeronas predict fit` (default scoring config); "
                             "each run records whether its pick was among the model's labelled cells")
    parser.add_argument("--json", default=None, help="also write the summary (with every run) to this file")
    args = parser.parse_args()
    seeds = ([int(s) for s in args.seeds.split(",")] if "," in args.seeds else list(range(int(args.seeds))))
    config = CHEAP_CONFIG
    if args.scoring_config == "default":
        config = ScoringConfig()
    elif args.scoring_config:
        with open(args.scoring_config, encoding="utf-8") as fh:
            config = ScoringConfig.from_dict(json.load(fh))
    summary = run(seeds, args.budget, args.proxy or default_proxy(), args.store,
                  [a.strip() for a in args.algorithms.split(",") if a.strip()], args.workers, config,
                  args.exhaustive, args.predictor)
    print(markdown(summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
