"""``zeronas refine --replay CURVES``: successive halving replayed from logged learning curves, of named candidates
or (``--repeats N``) of many seeded pools of the table's cells under each shortlist policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from zeronas.cli._common import err, fail, out, scoring_config
from zeronas.cli._refine_common import RefineOptions, bad_input, print_result, schedule_of


def load_table(spec: str):
    """A curve table from a file, or ``bundled`` (the WikiText-2 development curves); exit 2 naming the problem."""
    from zeronas.refine.curves import CurveTable

    with bad_input("--replay: "):
        return CurveTable.bundled() if spec == "bundled" else CurveTable.load(Path(spec))


def replay_candidates(spec: str, candidates: list, opts: RefineOptions) -> None:
    """The refine of ``candidates`` (and the table's reference cells unless --no-references), every validation
    perplexity read from the table: the same table, JSON and plot as a trained refine, no training."""
    from zeronas.refine.logged import refine_logged, table_references
    from zeronas.refine.run import unique

    table = load_table(spec)
    schedule = schedule_of(opts)
    if opts.references:
        candidates = list(candidates) + table_references(table)
    candidates, _ = unique(candidates)
    with bad_input("--replay: "):
        result = refine_logged(candidates, schedule, table)
    if opts.plot is not None:
        from zeronas.refine.plot import plot_curves

        plot_curves(result, opts.plot)
    if opts.as_json:
        print(json.dumps({**result.to_dict(), "continue": None}, allow_nan=False))
    else:
        print_result(result, None, opts)


def replay_pools(spec: str, opts: RefineOptions, repeats: int, pool_fraction: float, k: Optional[int], store: str,
                 proxy: Optional[str], config_file: Optional[Path]) -> None:
    """Replay every policy of :func:`zeronas.refine.defaults.replay_policies` on ``repeats`` seeded pools of the
    table's cells; the training-free scores come through the store (computed on --corpus where missing)."""
    from zeronas.recommended import RECOMMENDED_METHOD
    from zeronas.refine.defaults import DEFAULT_K, replay_policies
    from zeronas.refine.policies import PolicyError, Ranker
    from zeronas.refine.replay import draw_pools, format_table, replay
    from zeronas.refine.scores import curve_scores, directions, spec_members

    table = load_table(spec)
    schedule = schedule_of(opts)
    try:
        default, policies = replay_policies(k if k is not None else DEFAULT_K, schedule, proxy or RECOMMENDED_METHOD)
        specs = sorted({s for p in policies for s in p.specs})
        dirs = directions(spec_members(specs))
        for s in specs:
            Ranker({}, dirs).check(s)
    except (PolicyError, ValueError, KeyError) as exc:
        raise fail(str(exc).strip('"'))
    with bad_input("--replay: "):  # every check before anything is scored
        table.check_schedule(schedule)
        draw_pools([c for c in table if not c.reference], repeats, pool_fraction, opts.seed)
    config = scoring_config(None, None, None, None, config_file, opts.corpus)
    with bad_input():
        scores = curve_scores(list(table), specs, config, store, score=True, progress=not opts.quiet)
        report = replay(table, policies, Ranker(scores, dirs), default=default, repeats=repeats,
                        pool_fraction=pool_fraction, seed=opts.seed, references=opts.references)
    if opts.as_json:
        print(json.dumps(report.to_dict()))
        return
    out.print(format_table(report), highlight=False, markup=False)
    if not opts.quiet:
        err.print(f"scores: {store} under scoring config {config.config_hash()}", highlight=False, markup=False)
