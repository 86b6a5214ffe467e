"""Successive halving: the schedule and a deterministic driver, free of torch and of any training code.

The driver never trains anything itself: it asks a ``measure(candidate, budget)`` callable for a candidate's
validation perplexity after ``budget`` (epochs or tokens, the schedule's unit) of *continued* training, so a
candidate that reaches rung 3 has been trained once to ``rungs[2]``, never restarted. A real refine trains inside
``measure``; a replay reads the value from a curve table; a resumed refine replays the driver with a ``measure``
that returns cached values until it reaches the first uncached one.

Determinism (what makes resume by replay work): rungs are visited in order, and at each rung the survivors are
measured in the order they were given, exactly once. Diverged measurements (NaN, inf, or a value below zero) rank
last, ties go to the earlier candidate, and a diverged candidate never goes on to a later rung (training a NaN
model further is wasted budget). If every survivor of a rung diverged, halving stops there with no winner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generic, Literal, Sequence, TypeVar

K = TypeVar("K")
Unit = Literal["epochs", "tokens"]
UNITS: tuple[str, ...] = ("epochs", "tokens")


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message names the field (``rungs``, ``eta``, ``unit``)."""


@dataclass(frozen=True)
class Schedule:
    """Rungs (budgets at which every survivor is measured, strictly increasing), the reduction factor ``eta``
    (after a rung of ``n`` candidates, ``max(1, n // eta)`` go on) and the rungs' unit."""

    rungs: tuple[float, ...]
    eta: int = 3
    unit: Unit = "epochs"

    def __post_init__(self) -> None:
        if isinstance(self.rungs, (str, bytes)):
            raise ScheduleError(f"rungs must be a sequence of numbers (text: parse_rungs): got {self.rungs!r}")
        rungs = tuple(self.rungs)
        if not rungs:
            raise ScheduleError("rungs must hold at least one budget")
        for r in rungs:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r <= 0:
                raise ScheduleError(f"rungs must be positive finite numbers: got {r!r}")
        for prev, r in zip(rungs, rungs[1:]):
            if r <= prev:
                raise ScheduleError(f"rungs must increase: {_fmt(r)} after {_fmt(prev)}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ScheduleError(f"eta must be an integer >= 2: got {self.eta!r}")
        if self.unit not in UNITS:
            raise ScheduleError(f"unit must be one of {', '.join(UNITS)}: got {self.unit!r}")
        if self.unit == "tokens" and any(float(r) != int(r) for r in rungs):
            raise ScheduleError("rungs in tokens must be whole numbers")
        object.__setattr__(self, "rungs", tuple(float(r) for r in rungs))

    @classmethod
    def geometric(cls, first: float, eta: int = 3, n_rungs: int = 3, unit: Unit = "epochs") -> "Schedule":
        """Rungs ``first, first*eta, first*eta**2, ...``: ``Schedule.geometric(1, 3, 3)`` has rungs 1, 3, 9."""
        if isinstance(n_rungs, bool) or not isinstance(n_rungs, int) or n_rungs < 1:
            raise ScheduleError(f"n_rungs must be an integer >= 1: got {n_rungs!r}")
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise ScheduleError(f"eta must be an integer >= 2: got {eta!r}")
        return cls(tuple(first * eta**i for i in range(n_rungs)), eta, unit)

    @property
    def last(self) -> float:
        """The budget of the last rung."""
        return self.rungs[-1]

    def survivors(self, n: int) -> int:
        """How many of ``n`` measured candidates go on after a rung: ``n // eta``, at least 1."""
        if n < 1:
            raise ScheduleError(f"a rung needs at least one candidate: got {n}")
        return max(1, n // self.eta)

    def sizes(self, n: int) -> tuple[int, ...]:
        """How many candidates are measured at each rung, starting from ``n`` (nothing diverging)."""
        out = [n]
        for _ in self.rungs[1:]:
            out.append(self.survivors(out[-1]))
        return tuple(out)

    def cost(self, n: int) -> float:
        """Budget spent on ``n`` candidates when nothing diverges, training continued (no restarts): each rung's
        candidates train from the previous rung's budget to this one's. Rungs 1, 3, 9, eta 3, 27 candidates:
        ``27*1 + 9*2 + 3*6 = 63``. Divergence only lowers it."""
        total, prev = 0.0, 0.0
        for size, rung in zip(self.sizes(n), self.rungs):
            total += size * (rung - prev)
            prev = rung
        return total

    def describe(self) -> str:
        """``rungs 1,3,9 epochs, eta 3``."""
        return f"rungs {','.join(_fmt(r) for r in self.rungs)} {self.unit}, eta {self.eta}"


def parse_rungs(text: str) -> tuple[float, ...]:
    """``"0.25,0.75,2.25"`` -> ``(0.25, 0.75, 2.25)``. Order and sign are checked by :class:`Schedule`."""
    parts = [p.strip() for p in str(text).split(",")]
    if not text or not str(text).strip() or any(p == "" for p in parts):
        raise ScheduleError(f"rungs must be comma-separated numbers, e.g. 0.25,0.75,2.25: got {text!r}")
    out = []
    for p in parts:
        try:
            out.append(float(p))
        except ValueError:
            raise ScheduleError(f"rungs must be numbers: {p!r} in {text!r}") from None
    return tuple(out)


def is_diverged(ppl: float) -> bool:
    """A measurement that ranks last and ends the candidate: NaN, infinite or negative."""
    return not isinstance(ppl, (int, float)) or not math.isfinite(ppl) or ppl < 0


@dataclass(frozen=True)
class CandidateTrace(Generic[K]):
    """One candidate's path: its position in the input, the last rung it was measured at (0-based index into
    the schedule's rungs) and its perplexity at each rung it reached (``ppl[i]`` at ``rungs[i]``)."""

    candidate: K
    index: int
    rung: int
    ppl: tuple[float, ...]

    @property
    def last_ppl(self) -> float:
        return self.ppl[-1]

    @property
    def diverged(self) -> bool:
        return is_diverged(self.ppl[-1])


@dataclass(frozen=True)
class HalvingResult(Generic[K]):
    """Every candidate's trace (input order), the winner (``None`` when every survivor of a rung diverged) and
    the budget spent in the schedule's unit (each candidate charged the budget of the last rung it reached)."""

    schedule: Schedule
    traces: tuple[CandidateTrace[K], ...]
    winner: K | None
    winner_index: int | None
    spent: float

    @property
    def winner_trace(self) -> CandidateTrace[K] | None:
        return None if self.winner_index is None else self.traces[self.winner_index]

    @property
    def last_rung(self) -> int:
        """Index of the last rung any candidate reached."""
        return max(t.rung for t in self.traces)

    def ranking(self) -> list[CandidateTrace[K]]:
        """Traces best first: further rung first, then lower perplexity there (diverged last), then input order."""
        return sorted(self.traces, key=lambda t: (-t.rung, _rank_key(t.last_ppl, t.index)))


def _rank_key(ppl: float, index: int) -> tuple[int, float, int]:
    return (1, 0.0, index) if is_diverged(ppl) else (0, float(ppl), index)


def successive_halving(candidates: Sequence[K], schedule: Schedule,
                       measure: Callable[[K, float], float]) -> HalvingResult[K]:
    """Run successive halving over ``candidates`` (see the module docstring for the order of calls)."""
    if len(candidates) == 0:
        raise ScheduleError("successive halving needs at least one candidate")
    ppl: list[list[float]] = [[] for _ in candidates]
    alive = list(range(len(candidates)))
    for r, budget in enumerate(schedule.rungs):
        for i in alive:
            ppl[i].append(float(measure(candidates[i], budget)))
        order = sorted(alive, key=lambda i: _rank_key(ppl[i][r], i))
        finite = [i for i in order if not is_diverged(ppl[i][r])]
        if r == len(schedule.rungs) - 1 or not finite:
            break
        keep = set(finite[:schedule.survivors(len(alive))])
        alive = [i for i in alive if i in keep]
    winner = finite[0] if finite else None
    traces = tuple(CandidateTrace(c, i, len(ppl[i]) - 1, tuple(ppl[i])) for i, c in enumerate(candidates))
    spent = sum(schedule.rungs[t.rung] for t in traces)
    return HalvingResult(schedule, traces, None if winner is None else candidates[winner], winner, spent)


def _fmt(x: float) -> str:
    return f"{x:g}"
