"""The shortlist study (issue 18): which shortlist, K, rungs and eta to train, chosen by cross-validation over cells
on the released WikiText-2 learning curves, then every policy replayed beside the baselines.

Grid (fixed before any figure was seen): shortlist families x schedules. Families: ``random`` (K random cells),
``random[state_escape]`` (K random among the cells that pass the trainability check), ``top[SPEC]`` (the K best by
SPEC), ``top25%[SPEC]`` / ``top50%[SPEC]`` (K random from the best quarter / half by SPEC), ``diverse[SPEC]`` (the
best by SPEC in turn from each hidden tuple size), for each SPEC of ``--specs``. Schedules: the whole-epoch rungs and
eta of :data:`SCHEDULES` (the curves are per epoch, so no fractional rung can be replayed). For each family and
schedule, K is the largest that fits the budget: ``--budget`` epochs (63, the issue's goal) for a pool of 142 cells
(80% of the 177 candidates), scaled by pool size on smaller tables.

Cross-validation over cells: ``--splits`` seeded splits of the candidate cells into two halves, stratified by final
perplexity (the cells sorted by it are dealt in pairs, one to each half, so the best two cells land in different
halves). For each split and each half, every grid policy is replayed on pools of the half (80% each,
``--cv-repeats`` pools) and the one with the lowest mean pick percentile (the share of the half's trained cells that
trained better than the pick; a diverged pick counts 1; ``--criterion p_best1``: the highest share of picks that are
the half's best 1%, then the percentile) is chosen; it is then replayed on the *other* half, whose
cells the choice never saw, and those held-out figures are reported. The default is the (family, schedule) chosen
most often over the 2 x ``--splits`` choices (ties: the lower mean held-out percentile). Finally the default and the
baselines are replayed on the whole table (``--repeats`` pools), references left out and then in.

    python benchmarks/refine_study.py [--probe wikitext-2] [--store URL] [--specs 'hidden_cov!state_escape']
        [--splits 10] [--cv-repeats 100] [--repeats 300] [--json docs/results/refine-study.json]

No proxy is computed (``--no-score`` is implied): every member of the specs must be in the store under the probe's
default scoring config (``docs/results/refine-wt2-scores.db`` for wikitext-2, made by
``python benchmarks/refine_scores.py``; ``docs/results/nbnlp-dev-scores.db`` for ptb).

An external ranking (``--ranking NAME=FILE``, repeatable) joins the specs as one more member: FILE is JSON whose
``"scores"`` maps each curve cell's canonical id to a number, higher better (null: no score, ranks last), e.g. the
learned predictor's ranking score made by ``python benchmarks/refine_predictor.py``. NAME can then be used in
``--specs`` like a proxy (``predictor``, ``predictor!state_escape``); the whole-table replay adds, per external
ranking, its top :data:`~zeronas.refine.policies.DEFAULT_K` under the default rungs and eta, that shortlist fully
trained, and its top-1 without training.

    python benchmarks/refine_study.py --ranking predictor=docs/results/refine-predictor.json \
        --specs 'hidden_cov!state_escape,predictor' --json docs/results/refine-study-predictor.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score
from zeronas.recommended import RECOMMENDED_METHOD, TRAINABILITY_CHECK
from zeronas.refine.curves import CurveCell, CurveTable
from zeronas.refine.halving import Schedule
from zeronas.refine.policies import (DEFAULT_ETA, DEFAULT_K, DEFAULT_RUNGS, DiverseTopK, FullTraining, Halving,
                                     Oracle, RandomK, Ranker, TopFractionK, TopK, TrainingFreeTop1)
from zeronas.refine.replay import format_table, replay
from zeronas.refine.scores import curve_scores, directions, spec_members

SCHEDULES = (((1, 3, 9), 3), ((1, 2, 6), 3), ((1, 3), 3), ((2, 6), 3), ((3, 9), 3), ((1, 2, 4, 8), 2),
             ((2, 4, 8), 2), ((1, 4, 16), 4), ((2, 8), 4), ((1,), 2), ((2,), 2), ((3,), 2))
STORES = {"wikitext-2": "sqlite:///docs/results/refine-wt2-scores.db",
          "ptb": "sqlite:///docs/results/nbnlp-dev-scores.db"}
FULL_POOL = 142  # 80% of the bundled table's 177 candidate cells


FAMILIES = ("random", "random-checked", "top", "top25", "top50", "diverse")


def families(specs: Sequence[str], kinds: Sequence[str] = FAMILIES) -> list[tuple[str, Any]]:
    """(family name, factory k -> Shortlist) for the kinds asked (``--families``)."""
    out: list[tuple[str, Any]] = []
    if "random" in kinds:
        out.append(("random", lambda k: RandomK(k)))
    if "random-checked" in kinds:
        out.append((f"random[{TRAINABILITY_CHECK}]", lambda k: RandomK(k, TRAINABILITY_CHECK)))
    for s in specs:
        ranked = {"top": (f"top[{s}]", lambda k, s=s: TopK(k, s)),
                  "top25": (f"top25%[{s}]", lambda k, s=s: TopFractionK(k, 0.25, s)),
                  "top50": (f"top50%[{s}]", lambda k, s=s: TopFractionK(k, 0.5, s)),
                  "diverse": (f"diverse[{s}]", lambda k, s=s: DiverseTopK(k, s))}
        out += [ranked[kind] for kind in kinds if kind in ranked]
    return out


def largest_k(schedule: Schedule, budget: float) -> int:
    k = 0
    while schedule.cost(k + 1) <= budget + 1e-9:
        k += 1
    return k


def grid(specs: Sequence[str], pool_size: int, budget: float,
         kinds: Sequence[str] = FAMILIES) -> list[tuple[str, Halving]]:
    """Every (family, schedule) as a halving policy whose K fits ``budget`` scaled to ``pool_size``."""
    scaled = budget * pool_size / FULL_POOL
    out = []
    for fname, make in families(specs, kinds):
        for rungs, eta in SCHEDULES:
            schedule = Schedule(tuple(float(r) for r in rungs), eta)
            k = largest_k(schedule, scaled)
            if k >= 2:
                key = f"{fname} {schedule.describe()}"
                out.append((key, Halving(make(k), schedule, label=f"{key} K={k}")))
    return out


def halves(cells: Sequence[CurveCell], seed: int) -> tuple[list[CurveCell], list[CurveCell]]:
    """Two halves stratified by final perplexity (diverged cells last), each pair split by a seeded coin."""
    ranked = sorted(cells, key=lambda c: (c.final_ppl, c.log.log_id))
    rng = np.random.default_rng(seed)
    a, b = [], []
    for i in range(0, len(ranked), 2):
        pair = ranked[i:i + 2]
        if rng.random() < 0.5:
            pair = pair[::-1]
        a.append(pair[0])
        b.extend(pair[1:])
    return a, b


def sub_table(table: CurveTable, cells: Sequence[CurveCell], name: str) -> CurveTable:
    keep = {c.canonical_id for c in cells}
    return CurveTable(tuple(c for c in table if c.canonical_id in keep), table.final_epoch, name)


def percentile(picks: Sequence[float], cells: Sequence[CurveCell]) -> float:
    """Mean over pools of the share of trained cells that trained better than the pick (diverged pick: 1)."""
    finals = sorted(c.final_ppl for c in cells if c.trained)
    return statistics.fmean(1.0 if not math.isfinite(p) else
                            sum(f < p for f in finals) / len(finals) for p in picks)


def run_grid(table: CurveTable, policies: list[tuple[str, Halving]], ranker: Ranker, repeats: int,
             seed: int) -> dict[str, dict[str, Any]]:
    rep = replay(table, [p for _, p in policies], ranker, default=policies[0][1].name, repeats=repeats, seed=seed)
    cells = list(table)
    out = {}
    for key, p in policies:
        s = rep.policies[p.name]
        out[key] = {"policy": p.name, "percentile": percentile(s.picks, cells), **s.to_dict()}
    return out


CRITERIA = {"percentile": lambda r: (r["percentile"], r["mean_epochs"]),
            "p_best1": lambda r: (-r["p_best1"], r["percentile"], r["mean_epochs"])}


def cross_validate(table: CurveTable, ranker: Ranker, specs: Sequence[str], budget: float, splits: int,
                   repeats: int, criterion: str = "percentile", kinds: Sequence[str] = FAMILIES
                   ) -> list[dict[str, Any]]:
    """Choose on one half, report on the other, for every split and both directions."""
    cands = [c for c in table if not c.reference]
    folds = []
    for split in range(splits):
        a, b = halves(cands, seed=split)
        for side, (fit, held) in enumerate(((a, b), (b, a))):
            fit_t, held_t = sub_table(table, fit, f"split {split} fit"), sub_table(table, held, f"split {split} held")
            fit_res = run_grid(fit_t, grid(specs, round(0.8 * len(fit)), budget, kinds), ranker, repeats, seed=split)
            key = min(fit_res, key=lambda k: CRITERIA[criterion](fit_res[k]))
            held_grid = dict(grid(specs, round(0.8 * len(held)), budget, kinds))
            held_res = run_grid(held_t, [(key, held_grid[key])], ranker, repeats, seed=1000 + split)[key]
            folds.append({"split": split, "side": side, "chosen": key, "fit": fit_res[key], "held_out": held_res})
            print(f"split {split}/{side}: {key}: fit pct {fit_res[key]['percentile']:.3f}, held-out pct "
                  f"{held_res['percentile']:.3f} p_best1 {held_res['p_best1']:.2f}", file=sys.stderr, flush=True)
    return folds


def choose_default(folds: list[dict[str, Any]]) -> str:
    counts = Counter(f["chosen"] for f in folds)
    held = {k: statistics.fmean(f["held_out"]["percentile"] for f in folds if f["chosen"] == k) for k in counts}
    return min(counts, key=lambda k: (-counts[k], held[k]))


def cv_summary(folds: list[dict[str, Any]], default_key: str) -> dict[str, Any]:
    """Held-out figures of the selection procedure (every fold, whatever it chose), and how often the default won."""
    def mean(name: str) -> float:
        return statistics.fmean(float(f["held_out"][name]) for f in folds)

    return {"default": default_key, "chosen_in": sum(f["chosen"] == default_key for f in folds), "folds": len(folds),
            "held_out_mean": {k: mean(k) for k in ("percentile", "p_best1", "p_best5", "mean_epochs")},
            "held_out_median_pick_ppl": statistics.median(float(f["held_out"]["median_pick_ppl"]) for f in folds)}


def external_policies(names: Sequence[str]) -> list[Any]:
    """Per external ranking: its top ``DEFAULT_K`` under the default rungs and eta, that shortlist fully trained,
    and its top-1 without training."""
    schedule = Schedule(DEFAULT_RUNGS, DEFAULT_ETA)
    out: list[Any] = []
    for name in names:
        top = TopK(DEFAULT_K, name)
        out += [Halving(top, schedule, label=f"top {DEFAULT_K} [{name}] {schedule.describe()}"),
                FullTraining(top, label=f"top {DEFAULT_K} [{name}] fully trained"),
                TrainingFreeTop1(name)]
    return out


def final_policies(default_key: str, specs: Sequence[str], budget: float, kinds: Sequence[str] = FAMILIES,
                   external: Sequence[str] = ()) -> list[Any]:
    """The default beside the baselines: training-free top-1, random K and checked random K under the default's
    schedule, the default's shortlist fully trained, the issue's earlier baselines, the external rankings'
    policies (:func:`external_policies`), and the oracle."""
    full = dict(grid(specs, FULL_POOL, budget, kinds))
    default = full[default_key]
    k, schedule = default.shortlist.k, default.schedule  # type: ignore[attr-defined]
    s119 = Schedule((1.0, 3.0, 9.0), 3)
    pols = [Halving(default.shortlist, schedule, label=f"default: {default.name}"),
            TrainingFreeTop1(RECOMMENDED_METHOD),
            Halving(RandomK(k), schedule, label=f"random K={k} {schedule.describe()}"),
            Halving(RandomK(k, TRAINABILITY_CHECK), schedule, label=f"random[{TRAINABILITY_CHECK}] K={k} "
                                                                    f"{schedule.describe()}"),
            FullTraining(default.shortlist, label=f"default shortlist K={k} fully trained"),
            Halving(RandomK(27), s119, label="issue: random 27, rungs 1,3,9, eta 3"),
            Halving(RandomK(27, TRAINABILITY_CHECK), s119, label="issue: random[state_escape] 27, rungs 1,3,9"),
            Halving(TopK(27, RECOMMENDED_METHOD), s119, label=f"issue: top 27 [{RECOMMENDED_METHOD}], rungs 1,3,9"),
            Halving(RandomK(40, TRAINABILITY_CHECK), Schedule((1.0, 2.0, 6.0)),
                    label="issue: random[state_escape] 40, rungs 1,2,6"),
            *external_policies(external), Oracle()]
    seen: set[str] = set()
    return [p for p in pols if not (p.name in seen or seen.add(p.name))]


def read_ranking(arg: str) -> tuple[str, dict[str, float | None]]:
    """``NAME=FILE`` -> (NAME, ``{canonical_id: value or None}``) from FILE's ``"scores"``; a bad one exits."""
    from zeronas.proxies.registry import list_proxies

    name, sep, path = arg.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not path:
        raise SystemExit(f"--ranking {arg!r}: give NAME=FILE, NAME a plain word")
    if name in {p.name for p in list_proxies()}:
        raise SystemExit(f"--ranking {arg!r}: {name} is a registered proxy; choose another name")
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--ranking {arg!r}: cannot read {path}: {exc}")
    raw = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        raise SystemExit(f"--ranking {arg!r}: {path}: \"scores\" must map canonical ids to numbers")
    out: dict[str, float | None] = {}
    for cid, v in raw.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise SystemExit(f"--ranking {arg!r}: {path}: cell {cid}: {v!r} is not a number or null")
        out[str(cid)] = None if v is None or not math.isfinite(v) else float(v)
    return name, out


def add_rankings(scores: dict[str, dict[str, Score]], dirs: dict[str, bool],
                 external: Mapping[str, Mapping[str, float | None]], cells: Sequence[CurveCell]) -> None:
    """Each external ranking as one more member of ``scores`` (higher is better); a cell it lacks is missing."""
    for name, values in external.items():
        dirs[name] = True
        for c in cells:
            if c.canonical_id in values:
                v = values[c.canonical_id]
                scores.setdefault(c.canonical_id, {})[name] = Score(name, v, "ok" if v is not None else "nan")


def load(probe: str, store: str | None, specs: Sequence[str],
         external: Mapping[str, Mapping[str, float | None]] | None = None) -> tuple[CurveTable, Ranker]:
    table = CurveTable.bundled()
    config = ScoringConfig().with_corpus(probe)
    external = external or {}
    members = [m for m in spec_members(list(specs) + [TRAINABILITY_CHECK, RECOMMENDED_METHOD]) if m not in external]
    scores = curve_scores(table.cells, members, config, store or STORES[probe], score=False)
    lacking = [c.label for c in table.without_references()
               if not all(m in scores.get(c.canonical_id, {}) for m in members)]
    if lacking:
        raise SystemExit(f"the store lacks scores of {len(lacking)} curve cells (e.g. {lacking[0]}) under the "
                         f"{probe} config {config.config_hash()}: run benchmarks/refine_scores.py first")
    for name, values in external.items():
        absent = [c.label for c in table.without_references() if c.canonical_id not in values]
        if absent:
            raise SystemExit(f"--ranking {name}: its file has no entry for {len(absent)} curve cells (e.g. "
                             f"{absent[0]}); give every candidate a number or null")
    dirs = directions(members)
    add_rankings(scores, dirs, external, table.cells)
    return table, Ranker(scores, dirs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probe", default="wikitext-2", choices=sorted(STORES))
    ap.add_argument("--store", default=None)
    ap.add_argument("--specs", default=RECOMMENDED_METHOD, help="comma-separated proxy specs for the ranked families")
    ap.add_argument("--budget", type=float, default=63.0)
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--cv-repeats", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--criterion", default="percentile", choices=sorted(CRITERIA))
    ap.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)}")
    ap.add_argument("--ranking", action="append", default=[], metavar="NAME=FILE",
                    help="an external ranking (JSON {\"scores\": {canonical_id: number}}, higher better) usable "
                         "as NAME in --specs")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    specs = [s.strip() for s in args.specs.split(",") if s.strip()]
    kinds = [k.strip() for k in args.families.split(",") if k.strip()]
    if not kinds or any(k not in FAMILIES for k in kinds):
        ap.error(f"--families: give some of {', '.join(FAMILIES)}")
    external = dict(read_ranking(r) for r in args.ranking)
    table, ranker = load(args.probe, args.store, specs, external)
    folds = cross_validate(table, ranker, specs, args.budget, args.splits, args.cv_repeats,
                           args.criterion, kinds)
    default_key = choose_default(folds)
    pols = final_policies(default_key, specs, args.budget, kinds, list(external))
    out: dict[str, Any] = {"args": vars(args), "default": default_key, "cv": folds,
                           "cv_counts": Counter(f["chosen"] for f in folds).most_common()}
    for refs in (False, True):
        rep = replay(table, pols, ranker, default=pols[0].name, repeats=args.repeats, references=refs)
        print(format_table(rep) + "\n")
        out["references_in" if refs else "references_out"] = rep.to_dict()
    out["cv_summary"] = cv_summary(folds, default_key)
    print(json.dumps(out["cv_summary"], indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
