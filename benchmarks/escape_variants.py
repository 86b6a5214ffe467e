"""Cheaper probes for ``state_escape``: what a shorter horizon, one probe sequence or fewer radii would cost in
divergence ROC-AUC over the development split (NAS-Bench-NLP, PTB), beside the registered probe.

The registered probe runs 7 radii x 2 sequences for 60 steps. Every variant here is a subset of it (its first
``H`` steps, one of the two sequences, some of the radii): a trajectory's growth up to step ``H`` does not depend
on the later steps or on the other trajectories, so one run of the registered probe per cell records every step's
log-growth and finiteness, and each variant's rates are read off that record with the probe's own rules (first
step that escapes or stops being finite; +inf when a radius-1 state is not finite after one step). Variant
``H60-S2-R7`` is the registered probe (its values are those of ``state_escape``, bit for bit). A variant's cost is
its share of the trajectory-steps. The AUC and its interval come from ``zeronas.metrics`` (as ``zeronas evaluate``).

    python benchmarks/escape_variants.py [--record /tmp/escape-record.pt] [--workers 2] [--limit N] [--json FILE]

The record (one file) is resumable: cells already in it are not run again.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
from pathlib import Path

import torch

from zeronas.bench.nbnlp import Benchmark
from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score
from zeronas.metrics import collect, proxy_metrics, targets_from_architectures
from zeronas.proxies import _escape
from zeronas.proxies.context import ScoringContext

VARIANTS = {  # name: (horizon, sequences, radii indices)
    "H60-S2-R7": (60, (0, 1), tuple(range(7))),
    "H40-S2-R7": (40, (0, 1), tuple(range(7))),
    "H30-S2-R7": (30, (0, 1), tuple(range(7))),
    "H60-S1-R7": (60, (0,), tuple(range(7))),
    "H60-S2-R4": (60, (0, 1), (0, 2, 4, 6)),
    "H40-S1-R7": (40, (0,), tuple(range(7))),
}


class _Recorder(_escape._Trajectories):
    """The probe's bookkeeping, also keeping every step's log-growth and finiteness."""

    def __init__(self, log_r: torch.Tensor) -> None:
        super().__init__(log_r)
        self.g: list[torch.Tensor] = []
        self.finite: list[torch.Tensor] = []

    def _look(self) -> None:
        flat = torch.stack([torch.cat(state, dim=1) for _, state in self._pending]).double()
        finite = torch.isfinite(flat).all(dim=2)
        self.state_finite = getattr(self, "state_finite", finite[0])
        g = flat.pow(2).mean(dim=2).sqrt().log() - self.log_r
        self.g.append(g)
        self.finite.append(finite & torch.isfinite(g))
        super()._look()


def record(recipe_json: str, corpus) -> dict:
    """One cell's record: per step (up to where the probe stopped) and trajectory, g and finite; and the
    registered probe's rates."""
    from zeronas.cells.recipe import parse_recipe

    ctx = ScoringContext(parse_recipe(recipe_json), ScoringConfig(), corpus)
    recorders: list[_Recorder] = []
    original = _escape._Trajectories

    def make(log_r):
        recorders.append(_Recorder(log_r))
        return recorders[-1]

    _escape._Trajectories = make  # type: ignore[assignment]
    try:
        rates = _escape.escape_rates(ctx)
    finally:
        _escape._Trajectories = original  # type: ignore[misc]
    rec = recorders[0]
    return {"rates": rates, "g": torch.cat(rec.g), "finite": torch.cat(rec.finite),
            "state_finite0": rec.state_finite}


def variant_rate(rec: dict, horizon: int, seqs: tuple[int, ...], radii: tuple[int, ...]) -> float:
    """The variant's score (max rate), by the probe's rules over its trajectories and steps."""
    n_seq = len(_escape.N_SEQUENCES_ROWS)
    rows = [r * n_seq + s for r in radii for s in seqs]
    radius1 = [0 * n_seq + s for s in seqs]
    if not bool(rec["state_finite0"][radius1].all()):
        return math.inf
    g, finite = rec["g"][:horizon, rows], rec["finite"][:horizon, rows]
    best = -math.inf
    for j in range(len(rows)):
        growth, steps = 0.0, float(horizon)
        for t in range(g.shape[0]):
            if not bool(finite[t, j]):
                steps = float(max(t, 1))
                break
            growth = float(g[t, j])
            if growth > _escape.ESCAPE_LOG:
                steps = float(t + 1)
                break
        best = max(best, growth / steps)
    return best


_escape.N_SEQUENCES_ROWS = tuple(range(_escape.N_SEQUENCES))


def _work(item: tuple[str, str]) -> tuple[str, dict]:
    from zeronas.data.corpus import load_ptb

    torch.set_num_threads(1)
    cid, recipe = item
    return cid, record(recipe, load_ptb())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", default="/tmp/escape-record.pt")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N architectures (a quick look)")
    ap.add_argument("--json", default="", help="write the table as JSON to this file")
    ap.add_argument("--store", default="sqlite:///docs/results/nbnlp-dev-scores.db",
                    help="where the hidden_cov scores of the recommended method come from")
    args = ap.parse_args(argv)
    bench = Benchmark.nbnlp()
    archs = list(bench)[: args.limit or None]
    path = Path(args.record)
    done: dict = torch.load(path, weights_only=True) if path.exists() else {}
    todo = [(a.canonical_id, a.cell.to_json()) for a in archs if a.canonical_id not in done]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for i, (cid, rec) in enumerate(pool.imap_unordered(_work, todo, chunksize=4), 1):
            done[cid] = rec
            if i % 100 == 0 or i == len(todo):
                torch.save(done, path)
                print(f"{i}/{len(todo)} recorded", file=sys.stderr, flush=True)
    targets = targets_from_architectures(archs)
    registered = [float(done[a.canonical_id]["rates"].max()) for a in archs]
    replayed = [variant_rate(done[a.canonical_id], *VARIANTS["H60-S2-R7"]) for a in archs]
    same = sum(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(registered, replayed))
    print(f"H60-S2-R7 read off the record equals state_escape on {same} of {len(archs)} cells")
    from zeronas.store import open_store

    with open_store(args.store, read_only=True) as store:
        hidden = store.scores_table(ScoringConfig(), ["hidden_cov"])
    table = {}
    for name, (horizon, seqs, radii) in VARIANTS.items():
        scores = {}
        for a in archs:
            v = variant_rate(done[a.canonical_id], horizon, seqs, radii)
            scores[a.canonical_id] = {"state_escape": Score("state_escape", v if math.isfinite(v) else None,
                                                            "ok" if math.isfinite(v) else "inf")}
        m = proxy_metrics(collect("state_escape", scores, targets, {"state_escape": False}), n_boot=1000, seed=0)
        for cid in scores:
            scores[cid]["hidden_cov"] = hidden[cid]["hidden_cov"]
        rec = proxy_metrics(collect("hidden_cov!state_escape", scores, targets,
                                    {"hidden_cov": True, "state_escape": False}, {"state_escape": 0.0}),
                            n_boot=1000, seed=0)
        cost = horizon * len(seqs) * len(radii) / (60 * 2 * 7)
        table[name] = {"divergence_auc": m.divergence_auc, "divergence_auc_ci": m.divergence_auc_ci,
                       "trajectory_steps_share": cost,
                       "recommended": {"kendall_tau": rec.kendall_tau, "kendall_tau_ci": rec.kendall_tau_ci,
                                       "top1_ppl": rec.top1_ppl, "top10_mean_ppl": rec.top10_mean_ppl,
                                       "top10_diverged": rec.top10_diverged, "divergence_auc": rec.divergence_auc}}
        print(f"{name}: divergence AUC {m.divergence_auc:.3f} [{m.divergence_auc_ci[0]:.3f}, "
              f"{m.divergence_auc_ci[1]:.3f}], {cost:.2f} of the steps; hidden_cov!{name}: tau "
              f"{rec.kendall_tau:+.3f} [{rec.kendall_tau_ci[0]:+.3f}, {rec.kendall_tau_ci[1]:+.3f}], top-1 "
              f"{rec.top1_ppl:.1f}, top-10 mean {rec.top10_mean_ppl:.1f} ({rec.top10_diverged} diverged), AUC "
              f"{rec.divergence_auc:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
