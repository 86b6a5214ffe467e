"""Refine a shortlist by training: successive halving (:mod:`.halving`), and its replay on logged learning
curves (:mod:`.curves` reads a curve table, :mod:`.policies` turns a pool into a pick, :mod:`.replay` runs the
policies over seeded pools, :mod:`.scores` fetches training-free scores through a results store). Nothing here
imports torch; the training side plugs in through ``measure`` callables."""

from zeronas.refine.halving import (
    CandidateTrace,
    HalvingResult,
    Schedule,
    ScheduleError,
    is_diverged,
    parse_rungs,
    successive_halving,
)

__all__ = [
    "CandidateTrace",
    "HalvingResult",
    "Schedule",
    "ScheduleError",
    "is_diverged",
    "parse_rungs",
    "successive_halving",
]
