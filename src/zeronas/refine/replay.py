"""Replay shortlist policies on logged learning curves: many seeded pools, one pick per policy and pool.

Each of ``repeats`` pools is a seeded random ``pool_fraction`` of the table's candidate cells (the reference cells
are never candidates: with ``references=True`` they run beside every trained shortlist and are in the oracle's
view; without, they are left out altogether). Every policy builds its shortlist from the pool, its validation
perplexities come from the curves (:meth:`CurveCell.ppl_at`) and it is charged the logged seconds. A pick is judged
by its final-epoch test perplexity against the whole table: the best 1% and best 5% are of the trained cells in play
(the candidates, plus the references when they are in), at least one cell each.

:func:`replay` returns a :class:`ReplayReport`; :meth:`ReplayReport.to_dict` is the ``--json`` form
``{"default": NAME, "policies": {NAME: {"median_pick_ppl", "p_best1", "p_best5", "mean_epochs",
"mean_seconds", ...}}, "meta": {...}}`` and :func:`format_table` the terminal table.
"""

from __future__ import annotations

import math
import statistics
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zeronas.core.config import ScoringConfig
from zeronas.recommended import RECOMMENDED_METHOD
from zeronas.refine.curves import CurveCell, CurveTable
from zeronas.refine.halving import Schedule
from zeronas.refine.policies import Outcome, Policy, PolicyError, Ranker, standard_policies
from zeronas.refine.scores import curve_scores, directions, spec_members
from zeronas.store import ResultStore


class ReplayError(ValueError):
    """Replay arguments that cannot be used; the message names the option."""


@dataclass(frozen=True)
class PolicySummary:
    """One policy over every pool. ``picks``: each pool's pick's final test perplexity (``inf`` = diverged or no
    pick). ``p_worse_than_reference``: share of pools whose pick trained worse than the best reference (only with
    the references in)."""

    name: str
    picks: tuple[float, ...]
    epochs: tuple[float, ...]
    seconds: tuple[float, ...]
    best1: float
    best5: float
    reference_ppl: float | None

    @property
    def median_pick_ppl(self) -> float:
        return float(statistics.median(self.picks))

    def share(self, threshold: float) -> float:
        return sum(p <= threshold for p in self.picks) / len(self.picks)

    @property
    def p_diverged(self) -> float:
        return sum(not math.isfinite(p) for p in self.picks) / len(self.picks)

    @property
    def p_worse_than_reference(self) -> float | None:
        if self.reference_ppl is None:
            return None
        return sum(p > self.reference_ppl for p in self.picks) / len(self.picks)

    def to_dict(self) -> dict[str, Any]:
        out = {"median_pick_ppl": _json_float(self.median_pick_ppl), "p_best1": self.share(self.best1),
               "p_best5": self.share(self.best5), "mean_epochs": statistics.fmean(self.epochs),
               "mean_seconds": statistics.fmean(self.seconds), "p_diverged": self.p_diverged}
        if self.reference_ppl is not None:
            out["p_worse_than_reference"] = self.p_worse_than_reference
        return out


@dataclass(frozen=True)
class ReplayReport:
    default: str
    policies: dict[str, PolicySummary]
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"default": self.default, "policies": {n: s.to_dict() for n, s in self.policies.items()},
                "meta": self.meta}


def best_thresholds(cells: Sequence[CurveCell], fractions: Sequence[float] = (0.01, 0.05)) -> tuple[float, ...]:
    """The final test perplexity of the last cell inside each best fraction of the trained cells (at least one)."""
    finals = sorted(c.final_ppl for c in cells if c.trained)
    if not finals:
        raise ReplayError("the curve table has no trained cell to judge picks against")
    return tuple(finals[max(1, math.ceil(f * len(finals))) - 1] for f in fractions)


def draw_pools(cells: Sequence[CurveCell], repeats: int, pool_fraction: float, seed: int) -> list[list[CurveCell]]:
    """``repeats`` pools, each ``round(pool_fraction * len(cells))`` cells (at least 1) in table order; pool ``i``
    depends only on ``(seed, i)``."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ReplayError(f"--repeats must be an integer >= 1: got {repeats!r}")
    if not 0 < pool_fraction <= 1:
        raise ReplayError(f"--pool-fraction must be in (0, 1]: got {pool_fraction!r}")
    if not cells:
        raise ReplayError("no candidate cells to draw pools from")
    size = max(1, round(pool_fraction * len(cells)))
    pools = []
    for i in range(repeats):
        idx = np.random.default_rng([seed, i]).choice(len(cells), size=size, replace=False)
        pools.append([cells[j] for j in sorted(idx)])
    return pools


def _policy_rng(seed: int, pool: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, pool, zlib.crc32(name.encode())])


def _check_policies(policies: Sequence[Policy], ranker: Ranker, default: str, schedule_check) -> None:
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ReplayError(f"two policies share a name: {sorted(n for n in names if names.count(n) > 1)[0]}")
    if default not in names:
        raise ReplayError(f"the default policy {default!r} is not among the policies")
    for p in policies:
        for spec in p.specs:
            ranker.check(spec)
        if getattr(p, "schedule", None) is not None:
            schedule_check(p.schedule)


def replay(table: CurveTable, policies: Sequence[Policy], ranker: Ranker, *, default: str, repeats: int = 300,
           pool_fraction: float = 0.8, seed: int = 0, references: bool = False) -> ReplayReport:
    """Run every policy on every pool (see the module docstring)."""
    _check_policies(policies, ranker, default, table.check_schedule)
    candidates = [c for c in table if not c.reference]
    refs = [c for c in table.references] if references else []
    best1, best5 = best_thresholds(candidates + refs)
    trained_refs = [r.final_ppl for r in refs if r.trained]
    ref_ppl = min(trained_refs) if trained_refs else (math.inf if refs else None)
    pools = draw_pools(candidates, repeats, pool_fraction, seed)
    runs: dict[str, list[Outcome]] = {p.name: [] for p in policies}
    for i, pool in enumerate(pools):
        for p in policies:
            try:
                runs[p.name].append(p.run(pool, refs, ranker, _policy_rng(seed, i, p.name)))
            except PolicyError as exc:
                raise ReplayError(f"policy {p.name}: {exc}") from None
    summaries = {name: PolicySummary(name, tuple(o.pick.final_ppl if o.pick else math.inf for o in outs),
                                     tuple(o.epochs for o in outs), tuple(o.seconds for o in outs),
                                     best1, best5, ref_ppl) for name, outs in runs.items()}
    meta = {"source": table.source, "descriptions": {p.name: p.description for p in policies}, "repeats": repeats, "pool_fraction": pool_fraction, "seed": seed,
            "references": references, "n_candidates": len(candidates), "pool_size": len(pools[0]),
            "n_trained": sum(c.trained for c in candidates + refs), "best1_ppl": best1, "best5_ppl": best5,
            "final_epoch": table.final_epoch,
            **({"best_reference_ppl": _json_float(ref_ppl)} if ref_ppl is not None else {})}
    return ReplayReport(default, summaries, meta)


def replay_curves(curves: "str | Path | CurveTable", store: "str | Path | ResultStore", config: ScoringConfig, *,
                  k: int | None = None, schedule: Schedule | None = None, spec: str = RECOMMENDED_METHOD,
                  policies: Sequence[Policy] | None = None, repeats: int = 300, pool_fraction: float = 0.8,
                  seed: int = 0, references: bool = False, score: bool = True, workers: int | None = None,
                  executor: str = "local", progress: bool = False) -> ReplayReport:
    """What ``zeronas refine --replay CURVES`` runs: load the table, check the schedule against it, score the cells'
    training-free proxies under ``config`` through ``store`` (only what it lacks; ``score=False``: nothing, missing
    cells rank last), then replay ``policies`` (default: :func:`standard_policies` of ``k``, ``schedule`` and
    ``spec``; the first is the default) over ``repeats`` pools. Every bad input raises a ``ValueError`` subclass
    with a one-line message before anything is scored."""
    table = curves if isinstance(curves, CurveTable) else CurveTable.load(curves)
    pols = list(policies) if policies is not None else standard_policies(k, schedule, spec)
    if not pols:
        raise ReplayError("no policy to replay")
    for p in pols:
        if getattr(p, "schedule", None) is not None:
            table.check_schedule(p.schedule)  # type: ignore[attr-defined]
    draw_pools([c for c in table if not c.reference], repeats, pool_fraction, seed)  # checks the arguments
    specs = list(dict.fromkeys(s for p in pols for s in p.specs))
    for spec in specs:
        try:
            spec_members([spec])
        except ValueError as exc:
            raise ReplayError(f"spec {spec!r}: {exc}") from None
    members = spec_members(specs)
    try:
        dirs = directions(members)
    except KeyError as exc:
        raise ReplayError(str(exc.args[0]) if exc.args else str(exc)) from None
    scores = curve_scores(table.cells, specs, config, store, score=score, workers=workers, progress=progress,
                          executor=executor)
    return replay(table, pols, Ranker(scores, dirs), default=pols[0].name, repeats=repeats,
                  pool_fraction=pool_fraction, seed=seed, references=references)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "nan")


def format_table(report: ReplayReport) -> str:
    """A plain-text table, one row a policy, the default marked with ``*``."""
    m = report.meta
    refs = m["references"]
    head = ["policy", "median pick ppl", "best 1%", "best 5%", "epochs", "hours", "diverged"]
    if refs:
        head.append("worse than ref")
    rows = []
    for name, s in report.policies.items():
        row = [("* " if name == report.default else "  ") + name, f"{s.median_pick_ppl:.1f}",
               f"{100 * s.share(s.best1):.0f}%", f"{100 * s.share(s.best5):.0f}%",
               f"{statistics.fmean(s.epochs):.1f}", f"{statistics.fmean(s.seconds) / 3600:.1f}",
               f"{100 * s.p_diverged:.0f}%"]
        if refs:
            row.append(f"{100 * (s.p_worse_than_reference or 0.0):.0f}%")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    lines = [f"{m['repeats']} pools of {m['pool_size']} of {m['n_candidates']} cells ({m['source']}), references "
             f"{'in' if refs else 'out'}; best 1% <= {m['best1_ppl']:.1f} ppl, best 5% <= {m['best5_ppl']:.1f}"]
    for r in [head] + rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)
