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
    """Replay the standard policies (:func:`zeronas.refine.policies.standard_policies`, the default first) on
    ``repeats`` seeded pools of the table's cells (:func:`zeronas.refine.replay.replay_curves`); the training-free
    scores come through the store, computed on --corpus where missing, after every input is checked."""
    from zeronas.recommended import RECOMMENDED_METHOD
    from zeronas.refine.policies import PolicyError
    from zeronas.refine.replay import format_table, replay_curves

    table = load_table(spec)
    schedule = schedule_of(opts)
    config = scoring_config(None, None, None, None, config_file, opts.corpus)
    try:
        with bad_input("--replay: "):
            report = replay_curves(table, store, config, k=k, schedule=schedule, spec=proxy or RECOMMENDED_METHOD,
                                   repeats=repeats, pool_fraction=pool_fraction, seed=opts.seed,
                                   references=opts.references, progress=not opts.quiet)
    except PolicyError as exc:
        raise fail(f"--k/--proxy: {exc}")
    if opts.as_json:
        print(json.dumps(report.to_dict()))
        return
    out.print(format_table(report), highlight=False, markup=False)
    if not opts.quiet:
        err.print(f"scores: {store} under scoring config {config.config_hash()}", highlight=False, markup=False)
