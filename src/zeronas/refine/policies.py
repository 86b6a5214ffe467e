"""Shortlist policies: how a pool of candidate cells becomes one pick, and what finding it costs.

A policy sees a pool of :class:`~zeronas.refine.curves.CurveCell` (their training-free scores through a
:class:`Ranker`, their learning curves through ``ppl_at``) and returns an :class:`Outcome`: the pick, the training
it spent (epochs and logged seconds) and the shortlist. Shortlist builders (:class:`TopK`, :class:`RandomK`,
:class:`TopFractionK`, :class:`DiverseTopK`) say which cells are trained; :class:`Halving` trains them under a
successive-halving schedule, :class:`FullTraining` trains all of them to the last epoch, :class:`TrainingFreeTop1`
trains nothing, and :class:`Oracle` knows every result (its cost is training the whole pool).

Random draws come from the generator handed in, so a replay seeds them per pool and per policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

import numpy as np

from zeronas.core.spec import SpecError, parse_spec
from zeronas.metrics import MetricsError, collect, gate_passes, gate_threshold
from zeronas.core.score import Score
from zeronas.recommended import RECOMMENDED_METHOD, TRAINABILITY_CHECK
from zeronas.refine.curves import CurveCell
from zeronas.refine.halving import HalvingResult, Schedule, successive_halving


class PolicyError(ValueError):
    """A policy that cannot run: a bad K or fraction, a spec the scores cannot rank."""


class Ranker:
    """Orders cells by a proxy spec (``a``, ``a+b``, ``a!gate``) from stored scores, as ``zeronas evaluate`` and
    ``zeronas search`` do (:func:`zeronas.metrics.collect`); a combination ranks within the cells given. Cells
    whose score failed or is missing rank last; ties keep the order given."""

    def __init__(self, scores: Mapping[str, Mapping[str, Score]], directions: Mapping[str, bool]) -> None:
        self.scores = scores
        self.directions = dict(directions)
        self._orders: dict[tuple[str, tuple[str, ...]], list[int]] = {}  # pools repeat across policies

    def check(self, spec: str) -> None:
        try:
            parse_spec(spec, list(self.directions))
        except (MetricsError, SpecError) as exc:
            raise PolicyError(f"spec {spec!r}: {exc}") from None

    def order(self, spec: str, cells: Sequence[CurveCell]) -> list[CurveCell]:
        """The cells best first under ``spec``."""
        ids = tuple(c.canonical_id for c in cells)
        if (spec, ids) not in self._orders:
            scores = {cid: self.scores[cid] for cid in ids if cid in self.scores}
            data = collect(spec, scores, {cid: None for cid in ids}, self.directions)
            sign = 1.0 if data.higher_is_better else -1.0

            def key(i: int) -> tuple[int, float, int]:
                v = data.values[i]
                return (1, 0.0, i) if v is None else (0, -sign * v, i)

            self._orders[(spec, ids)] = sorted(range(len(cells)), key=key)
        return [cells[i] for i in self._orders[(spec, ids)]]

    def passes(self, gate: str, cells: Sequence[CurveCell]) -> list[CurveCell]:
        """The cells that pass a trainability check (its score ok and on the good side of its threshold)."""
        hib, threshold = self.directions[gate], gate_threshold(gate)
        return [c for c in cells if gate_passes(self.scores.get(c.canonical_id, {}).get(gate), hib, threshold)]


class Shortlist(Protocol):
    """Which cells of a pool are trained; ``name`` is shown in reports."""

    @property
    def name(self) -> str: ...

    @property
    def specs(self) -> tuple[str, ...]: ...

    def __call__(self, pool: Sequence[CurveCell], ranker: Ranker, rng: np.random.Generator) -> list[CurveCell]: ...


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise PolicyError(f"k must be an integer >= 1: got {k!r}")


@dataclass(frozen=True)
class TopK:
    """The ``k`` best cells of the pool by ``spec``."""

    k: int
    spec: str = RECOMMENDED_METHOD

    def __post_init__(self) -> None:
        _check_k(self.k)

    @property
    def name(self) -> str:
        return f"top{self.k}[{self.spec}]"

    @property
    def specs(self) -> tuple[str, ...]:
        return (self.spec,)

    def __call__(self, pool: Sequence[CurveCell], ranker: Ranker, rng: np.random.Generator) -> list[CurveCell]:
        return ranker.order(self.spec, pool)[:self.k]


@dataclass(frozen=True)
class RandomK:
    """``k`` cells drawn at random from the pool, or from the cells that pass ``gate`` (a trainability check)."""

    k: int
    gate: str = ""

    def __post_init__(self) -> None:
        _check_k(self.k)

    @property
    def name(self) -> str:
        return f"random{self.k}" + (f"[{self.gate}]" if self.gate else "")

    @property
    def specs(self) -> tuple[str, ...]:
        return (self.gate,) if self.gate else ()

    def __call__(self, pool: Sequence[CurveCell], ranker: Ranker, rng: np.random.Generator) -> list[CurveCell]:
        cells = ranker.passes(self.gate, pool) if self.gate else list(pool)
        return _draw(cells, self.k, rng)


@dataclass(frozen=True)
class TopFractionK:
    """``k`` cells drawn at random from the best ``fraction`` of the pool by ``spec`` (at least ``k`` cells)."""

    k: int
    fraction: float
    spec: str = RECOMMENDED_METHOD

    def __post_init__(self) -> None:
        _check_k(self.k)
        if not 0 < self.fraction <= 1:
            raise PolicyError(f"fraction must be in (0, 1]: got {self.fraction!r}")

    @property
    def name(self) -> str:
        return f"random{self.k}-of-top{100 * self.fraction:g}%[{self.spec}]"

    @property
    def specs(self) -> tuple[str, ...]:
        return (self.spec,)

    def __call__(self, pool: Sequence[CurveCell], ranker: Ranker, rng: np.random.Generator) -> list[CurveCell]:
        ranked = ranker.order(self.spec, pool)
        return _draw(ranked[:max(self.k, math.ceil(self.fraction * len(ranked)))], self.k, rng)


@dataclass(frozen=True)
class DiverseTopK:
    """The best cells by ``spec`` taken in turn from each hidden tuple size (1, 2, 3 states), so that no one kind
    of cell fills the shortlist."""

    k: int
    spec: str = RECOMMENDED_METHOD

    def __post_init__(self) -> None:
        _check_k(self.k)

    @property
    def name(self) -> str:
        return f"diverse{self.k}[{self.spec}]"

    @property
    def specs(self) -> tuple[str, ...]:
        return (self.spec,)

    def __call__(self, pool: Sequence[CurveCell], ranker: Ranker, rng: np.random.Generator) -> list[CurveCell]:
        groups: dict[int, list[CurveCell]] = {}
        for c in ranker.order(self.spec, pool):
            groups.setdefault(c.hidden_tuple_size, []).append(c)
        queues = [groups[h] for h in sorted(groups)]
        out: list[CurveCell] = []
        while len(out) < self.k and any(queues):
            for q in queues:
                if q and len(out) < self.k:
                    out.append(q.pop(0))
        return out


def _draw(cells: Sequence[CurveCell], k: int, rng: np.random.Generator) -> list[CurveCell]:
    if len(cells) <= k:
        return list(cells)
    return [cells[i] for i in sorted(rng.choice(len(cells), size=k, replace=False))]


@dataclass(frozen=True)
class Outcome:
    """What a policy did on one pool: its pick (``None``: every candidate diverged), the training spent in epochs
    and logged seconds, the cells it trained and, for :class:`Halving`, the halving result."""

    pick: CurveCell | None
    epochs: float
    seconds: float
    shortlist: tuple[CurveCell, ...] = ()
    halving: HalvingResult[CurveCell] | None = field(default=None, compare=False)


def _with_references(cells: Sequence[CurveCell], references: Sequence[CurveCell]) -> list[CurveCell]:
    seen = {c.canonical_id for c in cells}
    return list(cells) + [r for r in references if r.canonical_id not in seen]


@dataclass(frozen=True)
class Halving:
    """Train the shortlist (and the references beside it) under successive halving; the winner is the pick."""

    shortlist: Shortlist
    schedule: Schedule
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.description

    @property
    def description(self) -> str:
        return f"{self.shortlist.name}+halving({self.schedule.describe()})"

    @property
    def specs(self) -> tuple[str, ...]:
        return self.shortlist.specs

    def run(self, pool: Sequence[CurveCell], references: Sequence[CurveCell], ranker: Ranker,
            rng: np.random.Generator) -> Outcome:
        if any(r != int(r) for r in self.schedule.rungs) or self.schedule.unit != "epochs":
            raise PolicyError(f"{self.schedule.describe()}: curves are replayed at whole epochs only")
        cells = _with_references(self.shortlist(pool, ranker, rng), references)
        res = successive_halving(cells, self.schedule, lambda c, budget: c.ppl_at(int(budget)))
        seconds = math.fsum(t.candidate.seconds_to(int(self.schedule.rungs[t.rung])) for t in res.traces)
        return Outcome(res.winner, res.spent, seconds, tuple(cells), res)


@dataclass(frozen=True)
class FullTraining:
    """Train every shortlisted cell (and the references) to the last epoch; the best validation perplexity
    there is the pick."""

    shortlist: Shortlist
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.description

    @property
    def description(self) -> str:
        return f"{self.shortlist.name}+full-training"

    @property
    def specs(self) -> tuple[str, ...]:
        return self.shortlist.specs

    def run(self, pool: Sequence[CurveCell], references: Sequence[CurveCell], ranker: Ranker,
            rng: np.random.Generator) -> Outcome:
        cells = _with_references(self.shortlist(pool, ranker, rng), references)
        final = cells[0].final_epoch if cells else 0
        res = successive_halving(cells, Schedule((float(final),)), lambda c, budget: c.ppl_at(int(budget)))
        seconds = math.fsum(c.seconds_to(final) for c in cells)
        return Outcome(res.winner, res.spent, seconds, tuple(cells), res)


@dataclass(frozen=True)
class TrainingFreeTop1:
    """The pool's best cell by ``spec``: no training at all (references are not trained either)."""

    spec: str = RECOMMENDED_METHOD
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.description

    @property
    def description(self) -> str:
        return f"top1[{self.spec}]"

    @property
    def specs(self) -> tuple[str, ...]:
        return (self.spec,)

    def run(self, pool: Sequence[CurveCell], references: Sequence[CurveCell], ranker: Ranker,
            rng: np.random.Generator) -> Outcome:
        ranked = ranker.order(self.spec, pool)
        return Outcome(ranked[0] if ranked else None, 0.0, 0.0, tuple(ranked[:1]))


@dataclass(frozen=True)
class Oracle:
    """The pool's (and references') best trained cell by final test perplexity, as if every cell had been
    trained to the end: the ceiling of any policy, charged the cost of training them all."""

    label: str = "oracle"

    @property
    def name(self) -> str:
        return self.label

    @property
    def description(self) -> str:
        return "the pool's best trained cell (every cell trained to the end)"

    @property
    def specs(self) -> tuple[str, ...]:
        return ()

    def run(self, pool: Sequence[CurveCell], references: Sequence[CurveCell], ranker: Ranker,
            rng: np.random.Generator) -> Outcome:
        cells = _with_references(pool, references)
        trained = [c for c in cells if c.trained]
        pick = min(trained, key=lambda c: c.final_ppl) if trained else None
        final = cells[0].final_epoch if cells else 0
        return Outcome(pick, float(final * len(cells)), math.fsum(c.seconds_to(final) for c in cells), tuple(cells))


#: The default shortlist policy (chosen by ``benchmarks/refine_study.py``; docs/findings.md, "Refine"): the
#: ``DEFAULT_K`` best cells of the pool by the recommended method, trained under successive halving with
#: ``DEFAULT_RUNGS`` (epochs) and ``DEFAULT_ETA``.
DEFAULT_K = 19
DEFAULT_RUNGS: tuple[float, ...] = (2.0, 6.0)
DEFAULT_ETA = 3


def default_schedule() -> Schedule:
    return Schedule(DEFAULT_RUNGS, DEFAULT_ETA)


def default_shortlist(k: int | None = None, spec: str = RECOMMENDED_METHOD) -> Shortlist:
    """The shortlist of the default policy: the ``k`` (default ``DEFAULT_K``) best cells by ``spec``."""
    return TopK(DEFAULT_K if k is None else k, spec)


def standard_policies(k: int | None = None, schedule: Schedule | None = None,
                      spec: str = RECOMMENDED_METHOD) -> list["Policy"]:
    """The policies a replay reports, the default first: ``shortlist+halving`` (the default), ``training-free-top1``
    (no training), ``random+halving`` (``k`` random cells, the same schedule), ``shortlist-full-training`` (the
    default's shortlist, every cell trained to the end) and ``oracle``."""
    shortlist = default_shortlist(k, spec)
    schedule = schedule or default_schedule()
    return [Halving(shortlist, schedule, label="shortlist+halving"),
            TrainingFreeTop1(spec, label="training-free-top1"),
            Halving(RandomK(shortlist.k), schedule, label="random+halving"),  # type: ignore[attr-defined]
            FullTraining(shortlist, label="shortlist-full-training"),
            Oracle()]


class Policy(Protocol):
    """A way from a pool to a pick: ``name`` keys it in reports, ``description`` says what it does, ``specs`` are
    the proxy specs it ranks by (checked before a replay starts)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def specs(self) -> tuple[str, ...]: ...

    def run(self, pool: Sequence[CurveCell], references: Sequence[CurveCell], ranker: Ranker,
            rng: np.random.Generator) -> Outcome: ...


__all__ = ["DEFAULT_ETA", "DEFAULT_K", "DEFAULT_RUNGS", "default_schedule", "default_shortlist",
           "standard_policies", "DiverseTopK", "FullTraining", "Halving", "Oracle", "Outcome", "Policy", "PolicyError", "RandomK",
           "Ranker", "Shortlist", "TopFractionK", "TopK", "TrainingFreeTop1", "TRAINABILITY_CHECK"]
