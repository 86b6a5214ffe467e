"""The published anchor, measured with our metrics: Serianni & Kalita's own proxy scores against the same ground truth.

README compares our proxies with the figures Serianni & Kalita (ACL 2023) report for NAS-Bench-NLP (hidden
covariance, Kendall tau 0.372 at architecture level). This script puts their *published scores* (bundled in
``zeronas/data/serianni_kalita``) through exactly the metric code ``zeronas evaluate`` uses, on the same
architectures, so the comparison is like for like:

- rows ``S&K <column>``: their score, per canonical architecture (their scores are one value per recipe sha1; when
  several sha1s are the same canonical architecture, the mean of their finite scores). Architectures they did not
  score, or scored as NaN/inf, count as failed.
- rows ``ours <proxy>``: our score from the results store (default config unless ``--config-hash``), restricted to
  the same architectures (those with a finite published score), so both rows rank the same cells.

Directions are those of our registry for the proxy each column corresponds to.

    python benchmarks/published_anchor.py [--store sqlite:///docs/results/nbnlp-dev-scores.db] [--json OUT]
        [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from typing import Any

from zeronas.bench.nbnlp import Benchmark
from zeronas.bench.published import published_scores
from zeronas.metrics import ProxyData, ProxyMetrics, collect, proxy_metrics, results_to_dict
from zeronas.proxies import ScoringConfig, get_proxy
from zeronas.proxies.registry import proxy_revisions
from zeronas.store import open_store

# published column -> our proxy that reimplements it (its registered direction is used for both)
COLUMNS: dict[str, str] = {
    "Layer 1 Hidden Covariance": "hidden_cov",
    "Layer 2 Hidden Covariance": "hidden_cov_l2",
    "Layer 3 Hidden Covariance": "hidden_cov_l3",
    "Activation Distance": "naswot",
    "Synaptic Saliency": "synflow",
    "Jacobian Covariance": "jacob_cov",
}


def published_by_arch(bench: Benchmark, column: str) -> dict[str, float | None]:
    """``{canonical_id: mean finite published score}``; None when the architecture has no finite published score."""
    by_sha1: dict[str, list[float]] = defaultdict(list)
    for row in published_scores():
        v = row.get(column)
        if v is not None and math.isfinite(v):
            by_sha1[row["arch_sha1"]].append(float(v))
    out: dict[str, float | None] = {}
    for arch in bench.architectures:
        vals = [v for sha in arch.arch_sha1s for v in by_sha1.get(sha, [])]
        out[arch.canonical_id] = math.fsum(vals) / len(vals) if vals else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="sqlite:///docs/results/nbnlp-dev-scores.db")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--json", dest="json_out", default=None, help="write the metrics as JSON to this file")
    args = ap.parse_args(argv)

    bench = Benchmark.nbnlp()
    targets = {a.canonical_id: a.mean_test_loss for a in bench.architectures}
    config = ScoringConfig()
    st = open_store(args.store)
    try:
        table = st.scores_table(config, list(COLUMNS.values()), revisions=proxy_revisions(COLUMNS.values()))
    finally:
        st.close()

    results: dict[str, ProxyMetrics] = {}
    coverage: dict[str, dict[str, int]] = {}
    for column, proxy in COLUMNS.items():
        hib = get_proxy(proxy).higher_is_better
        theirs = published_by_arch(bench, column)
        ids = [cid for cid in targets if theirs[cid] is not None]
        sub_targets = {cid: targets[cid] for cid in ids}
        data = ProxyData.from_values(f"S&K {column}", [theirs[cid] for cid in ids],
                                     [sub_targets[cid] for cid in ids], higher_is_better=hib, arch_ids=ids)
        results[data.proxy] = proxy_metrics(data, n_boot=args.n_boot, seed=0)
        ours_scores = {cid: table[cid] for cid in ids if cid in table}
        ours = collect(proxy, ours_scores, sub_targets, {proxy: hib})
        ours = ProxyData(f"ours {proxy}", ours.higher_is_better, ours.arch_ids, ours.values, ours.losses,
                         ours.statuses, ours.seconds)
        results[ours.proxy] = proxy_metrics(ours, n_boot=args.n_boot, seed=0)
        coverage[column] = {"n_archs": len(ids), "n_ours_scored": len(ours_scores),
                            "n_diverged": sum(sub_targets[c] is None for c in ids)}

    print(f"{'row':38s} {'archs':>6s} {'tau':>7s} {'95% CI':>17s} {'rho':>7s} {'top-1 ppl':>10s} {'div AUC':>8s}")
    for name, m in results.items():
        ci = m.kendall_tau_ci
        cis = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "-"
        top1 = "diverged" if m.top1_ppl is not None and math.isinf(m.top1_ppl) else (
            "-" if m.top1_ppl is None else f"{m.top1_ppl:.1f}")
        auc = "-" if m.divergence_auc is None else f"{m.divergence_auc:.2f}"
        tau = "-" if m.kendall_tau is None else f"{m.kendall_tau:+.3f}"
        rho = "-" if m.spearman is None else f"{m.spearman:+.3f}"
        print(f"{name:38s} {m.n:6d} {tau:>7s} {cis:>17s} {rho:>7s} {top1:>10s} {auc:>8s}")
    if args.json_out:
        payload: dict[str, Any] = {"config_hash": config.config_hash(), "coverage": coverage,
                                   "metrics": results_to_dict(results, json_safe=True)}
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
