"""The learned predictor as a shortlist ranking for the refine study (docs/findings.md, section 6).

Fits ``zeronas predict``'s predictor (default settings: every default feature proxy, structure features, the
regression objective, the ``hidden_cov`` prior, trees chosen by 5-fold CV) on the PTB labels of the development
cells that are **not** in the bundled WikiText-2 curve table (matched by canonical architecture id) and are not a
reference cell (zeronas's ``rnn``, ``lstm``, ``gru``; NAS-Bench-NLP's example cells are in the table), so no
label of a cell it ranks is seen. It then predicts the table's 180 cells from the same features (PTB probe, the
committed store) and writes ``{"scores": {canonical_id: ranking score or null}, "summary": ..., "meta": ...}``,
the file ``benchmarks/refine_study.py --ranking predictor=FILE`` reads. The summary says where the table's best
cells rank among its candidates and Kendall tau of the prediction against the WikiText-2 final test perplexity
(trained candidates; positive: a higher score goes with a lower perplexity), beside ``hidden_cov!state_escape`` on
the same probe, and beside the cells' own PTB test losses (held out from the fit: the best a predictor of PTB
loss could do). Ranks count from 1 among the 177 candidates (and among the 174 that trained).

    python benchmarks/refine_predictor.py [--store sqlite:///docs/results/nbnlp-dev-scores.db] [--seed 0]
        [--drop PROXY,...] [--json docs/results/refine-predictor.json]

No proxy is computed: the store must hold every feature of every cell (it does for the development split).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from zeronas.bench.nbnlp import Architecture, Benchmark
from zeronas.cells.recipe import Cell
from zeronas.cells.reference import REFERENCE_RECIPES, reference_cell
from zeronas.core.config import ScoringConfig
from zeronas.predict.data import (
    default_feature_proxies,
    labelled_data,
    predict_cells,
    resolve_prior,
)
from zeronas.predict.model import Predictor
from zeronas.recommended import RECOMMENDED_METHOD, TRAINABILITY_CHECK
from zeronas.refine.curves import CurveCell, CurveTable
from zeronas.refine.policies import Ranker
from zeronas.refine.scores import curve_scores, directions, spec_members
from zeronas.run import score_and_read

from refine_study import add_rankings

STORE = "sqlite:///docs/results/nbnlp-dev-scores.db"


def training_cells(bench: Benchmark, table: CurveTable) -> list[Architecture]:
    """The development cells the predictor may learn from: neither in the curve table nor a reference cell."""
    held = {c.canonical_id for c in table} | {reference_cell(n).canonical_id for n in REFERENCE_RECIPES}
    return [a for a in bench if a.canonical_id not in held]


def fit(train: Sequence[Architecture], store: str, config: ScoringConfig, seed: int,
        drop: Sequence[str] = ()) -> Predictor:
    unknown = [p for p in drop if p not in default_feature_proxies()]
    if unknown:
        raise SystemExit(f"--drop: {', '.join(unknown)} is not a default feature proxy")
    proxies = [p for p in default_feature_proxies() if p not in drop]
    _, scores = score_and_read(train, proxies, config, store, score=False)
    data = labelled_data(train, scores, proxies)
    prior, hib = resolve_prior(None, proxies)
    return Predictor.fit(data.X, data.losses, proxies=proxies, seed=seed, scoring_config=config.to_dict(),
                         config_hash=config.config_hash(), prior=prior, prior_higher_is_better=hib,
                         training={"ground_truth": "nb-nlp minus the WikiText-2 curve cells and references",
                                   "sample_seed": seed})


def predict_table(model: Predictor, table: CurveTable, store: str, config: ScoringConfig
                  ) -> dict[str, float | None]:
    """The ranking score of every table cell; None where a feature is missing from the store."""
    scores = curve_scores(table.cells, model.proxies, config, store, score=False)
    cells = [Cell.from_recipe(json.loads(c.recipe_json), source=f"curve cell {c.label}") for c in table]
    pred, complete = predict_cells(model, cells,
                                   [scores.get(c.canonical_id, {}) for c in table])
    out: dict[str, float | None] = {c.canonical_id: None for c in table}
    for pos, i in enumerate(np.flatnonzero(complete)):
        v = float(pred.score[pos])
        out[table.cells[i].canonical_id] = v if math.isfinite(v) else None
    return out


def rank_summary(order: Sequence[CurveCell], candidates: Sequence[CurveCell], values: Mapping[str, float | None]
                 ) -> dict[str, Any]:
    """Ranks (1 = first) of the two best trained candidates in ``order``, and Kendall tau of the ranking against
    the final test perplexity over trained candidates (the position in ``order`` as the score)."""
    best = sorted((c for c in candidates if c.trained), key=lambda c: c.final_ppl)[:2]
    pos = {c.canonical_id: i + 1 for i, c in enumerate(order)}
    trained = [c for c in candidates if c.trained]
    pos_trained = {c.canonical_id: i + 1 for i, c in enumerate(c for c in order if c.trained)}
    tau = stats.kendalltau([-pos[c.canonical_id] for c in trained], [-c.final_ppl for c in trained]).statistic
    return {"best_cells": {c.label: {"final_ppl": round(c.final_ppl, 2), "rank": pos[c.canonical_id],
                                     "rank_among_trained": pos_trained[c.canonical_id],
                                     "value": values.get(c.canonical_id)} for c in best},
            "kendall_tau_vs_wt2_final_ppl": float(tau), "n_candidates": len(candidates), "n_trained": len(trained),
            "top19": [[c.label, round(c.final_ppl, 1)] for c in order[:19]]}


def summarise(table: CurveTable, predicted: Mapping[str, float | None], probe_ranker: Ranker,
              bench: Benchmark) -> dict[str, Any]:
    """The predictor's ranking, the recommended method's (same probe) and the cells' own PTB labels' (the best
    any predictor of PTB loss could do), each against the WikiText-2 results."""
    cands = list(table.without_references())
    scores: dict[str, dict[str, Any]] = {}
    dirs: dict[str, bool] = {}
    add_rankings(scores, dirs, {"predictor": predicted}, cands)
    ranker = Ranker(scores, dirs)
    out = {"predictor": rank_summary(ranker.order("predictor", cands), cands, predicted)}
    out[RECOMMENDED_METHOD] = rank_summary(probe_ranker.order(RECOMMENDED_METHOD, cands), cands, {})
    ptb = {c.canonical_id: bench.get(c.canonical_id).mean_test_loss if c.canonical_id in bench else None
           for c in cands}
    by_label = sorted(cands, key=lambda c: (ptb[c.canonical_id] is None, ptb[c.canonical_id] or 0.0))
    out["ptb_label"] = rank_summary(by_label, cands, ptb)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default=STORE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drop", default="", help="comma-separated feature proxies left out of the default set")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    config = ScoringConfig()  # the PTB probe at the default config: the predictor's features everywhere
    table = CurveTable.bundled()
    bench = Benchmark.nbnlp()
    train = training_cells(bench, table)
    model = fit(train, args.store, config, args.seed, [p.strip() for p in args.drop.split(",") if p.strip()])
    predicted = predict_table(model, table, args.store, config)
    members = spec_members([RECOMMENDED_METHOD, TRAINABILITY_CHECK])
    probe = Ranker(curve_scores(table.cells, members, config, args.store, score=False), directions(members))
    summary = summarise(table, predicted, probe, bench)
    meta = {"store": args.store, "config_hash": config.config_hash(), "seed": args.seed, "proxies": model.proxies,
            "structure": model.structure, "objective": model.objective, "prior": model.prior,
            "trees": model.params["rounds"], "n_train": len(train),
            "n_train_diverged": model.training["n_diverged"],
            "n_predicted": sum(v is not None for v in predicted.values())}
    print(json.dumps({"meta": meta, "summary": summary}, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "summary": summary, "scores": predicted}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
