"""A real refine: train candidate cells under successive halving and return the best.

:func:`refine` checks the inputs (every one before anything is trained), opens or resumes the run's folder
(:mod:`.state`), then runs the schedule in this process (:func:`~zeronas.refine.halving.successive_halving`, each
measurement from :class:`~zeronas.refine.rungs.CandidateFolder`) or under Ray Tune's ASHA scheduler
(:mod:`.ray_tune`). A killed refine rerun with the same folder replays the halving with the measurements already
recorded and trains only what is missing, continuing each candidate's checkpoint: it reaches the same winner and
the same perplexities. The winner's checkpoint continues to full training with ``zeronas train``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from zeronas.data.corpus import Corpus
from zeronas.refine.halving import CandidateTrace, HalvingResult, Schedule, successive_halving
from zeronas.refine.rungs import OUT_OF_MEMORY, CandidateFolder, RungMeasure
from zeronas.refine.state import Candidate, RunState, header
from zeronas.train import TrainConfig, corpus_identity, tokens_per_epoch

EXECUTORS: tuple[str, ...] = ("local", "ray")
Progress = Callable[[str], None]


class RefineError(ValueError):
    """Inputs a refine cannot run with (no candidates, a duplicate, a rung below one batch or past the full
    training); the message names the problem."""


@dataclass
class RefineResult:
    """The outcome: per candidate (input order) its measurements at the rungs it reached, the winner, and where
    everything is. ``trained`` counts the rung trainings done by this call (0 for a finished run read back)."""

    folder: Path
    schedule: Schedule
    candidates: list[Candidate]
    measures: list[list[RungMeasure]]
    winner_index: Optional[int]
    executor: str
    resumed: bool
    trained: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def winner(self) -> Optional[Candidate]:
        return None if self.winner_index is None else self.candidates[self.winner_index]

    def winner_folder(self) -> Optional[Path]:
        """The winner's checkpoint folder (None without a winner, and for a replay, which trains nothing)."""
        if self.winner is None or self.executor == "replay":
            return None
        return self.folder / self.winner.folder

    def status(self, i: int) -> str:
        """winner, diverged, failed (out of memory), dropped at rung N, or last rung (it reached the last rung and
        lost: Ray's asynchronous scheduler can let several get there)."""
        reached = self.measures[i]
        if i == self.winner_index:
            return "winner"
        if reached and reached[-1].diverged:
            return "failed" if (reached[-1].reason or "").startswith(OUT_OF_MEMORY) else "diverged"
        if len(reached) < len(self.schedule.rungs):
            return f"dropped at rung {len(reached)}"
        return "last rung"

    def rows(self) -> list[dict[str, Any]]:
        """One row a candidate: name, reference?, rung reached (1-based, 0 = none), perplexity per rung (None
        beyond the rung reached or where it diverged), seconds, status."""
        out = []
        for i, (cand, ms) in enumerate(zip(self.candidates, self.measures)):
            out.append({**cand.to_dict(), "rung": len(ms), "budget": ms[-1].budget if ms else None,
                        "val_ppl": [m.val_ppl if not m.diverged else None for m in ms],
                        "diverged": bool(ms and ms[-1].diverged), "reason": ms[-1].reason if ms else None,
                        "steps": ms[-1].steps if ms else 0, "tokens": ms[-1].tokens if ms else 0,
                        "seconds": ms[-1].seconds if ms else 0.0, "status": self.status(i)})
        return out

    def spent(self) -> float:
        """Training spent in the schedule's unit: each candidate's last rung reached."""
        return sum(ms[-1].budget for ms in self.measures if ms)

    def to_dict(self) -> dict[str, Any]:
        winner = self.winner
        return {"folder": str(self.folder), "executor": self.executor, "resumed": self.resumed,
                "trained": self.trained,
                "schedule": {"rungs": list(self.schedule.rungs), "eta": self.schedule.eta,
                             "unit": self.schedule.unit},
                "spent": self.spent(), "seconds": sum(ms[-1].seconds for ms in self.measures if ms),
                "winner": None if winner is None else {**winner.to_dict(),
                                                       "val_ppl": self.measures[self.winner_index][-1].val_ppl,
                                                       "checkpoint": _str_or_none(self.winner_folder())},
                "candidates": self.rows()}


def _str_or_none(path: Optional[Path]) -> Optional[str]:
    return None if path is None else str(path)


def unique(candidates: Sequence[Candidate]) -> tuple[list[Candidate], list[tuple[Candidate, Candidate]]]:
    """The candidates with every cell once (the same canonical id is the same cell up to renaming: the first one
    stays), and the (dropped, kept) pairs."""
    kept: dict[str, Candidate] = {}
    dropped = []
    for c in candidates:
        if c.cell.canonical_id in kept:
            dropped.append((c, kept[c.cell.canonical_id]))
        else:
            kept[c.cell.canonical_id] = c
    return list(kept.values()), dropped


def check_inputs(candidates: Sequence[Candidate], schedule: Schedule, config: TrainConfig, corpus: Corpus) -> None:
    """Everything that can be checked before training: candidates (at least one, each cell once), the corpus has
    training data, the first rung is at least one training batch and the last within the full training."""
    if not candidates:
        raise RefineError("no candidates to refine")
    ids = [c.cell.canonical_id for c in candidates]
    if len(set(ids)) != len(ids):
        dup = next(c for c in candidates if ids.count(c.cell.canonical_id) > 1)
        raise RefineError(f"candidate {dup.name!r} is given twice (the same cell, canonical id "
                          f"{dup.cell.canonical_id})")
    per_epoch = tokens_per_epoch(corpus, config)
    if per_epoch <= 0 or corpus.valid.numel() < 2 * config.eval_batch_size:
        raise RefineError(f"corpus {corpus.name!r} has too little training or validation text for batch size "
                          f"{config.batch_size} (training needs a train and a valid split)")
    one_batch = config.batch_size * config.bptt
    first = schedule.rungs[0] * (per_epoch if schedule.unit == "epochs" else 1)
    if first < one_batch:
        raise RefineError(f"the first rung ({schedule.rungs[0]:g} {schedule.unit} = {first:,.0f} training tokens) "
                          f"is below one training batch ({one_batch:,} tokens: batch {config.batch_size} x bptt "
                          f"{config.bptt}; one epoch is {per_epoch:,} tokens)")
    full = config.epochs * (per_epoch if schedule.unit == "tokens" else 1)
    if schedule.last > full:
        raise RefineError(f"the last rung ({schedule.last:g} {schedule.unit}) is past the full training "
                          f"({config.epochs} epochs = {full:,} {schedule.unit}); raise the epochs or lower the rungs")


def refine(candidates: Sequence[Candidate], schedule: Schedule, config: TrainConfig, corpus: Corpus,
           folder: str | Path, *, executor: str = "local", progress: Optional[Progress] = None,
           train_progress: bool = False, ray: Optional[dict[str, Any]] = None) -> RefineResult:
    """Refine ``candidates`` (see the module docstring). ``config.epochs`` is the full training the winner goes
    on to (the rungs must fit in it); ``progress`` gets one line per measurement; ``ray`` holds
    :func:`zeronas.refine.ray_tune.run_trials`'s options."""
    if executor not in EXECUTORS:
        raise RefineError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    check_inputs(candidates, schedule, config, corpus)
    folder = Path(folder)
    state = RunState(folder)
    resumed = state.open(header(candidates, schedule, config, corpus_identity(corpus, config)))
    say = progress or (lambda _line: None)
    if resumed:
        say(f"resuming the refine in {folder}")
    if executor == "ray":
        from zeronas.refine.ray_tune import run_trials

        before = sum(len(_recorded(folder, c)) for c in candidates)
        run_trials(candidates, schedule, config, corpus, folder, say, **(ray or {}))
        measures = [_recorded(folder, c) for c in candidates]
        trained = sum(len(ms) for ms in measures) - before
        winner = _ranked_winner(schedule, candidates, measures)
    else:
        measures, winner, trained = _run_local(candidates, schedule, config, corpus, folder, say, train_progress)
    result = RefineResult(folder, schedule, list(candidates), measures, winner, executor, resumed, trained,
                          config.to_dict())
    state.finish(result.to_dict())
    return result


def _recorded(folder: Path, cand: Candidate) -> list[RungMeasure]:
    known = CandidateFolder(folder / cand.folder, cand.cell).measures()
    return [known[b] for b in sorted(known)]


def _run_local(candidates: Sequence[Candidate], schedule: Schedule, config: TrainConfig, corpus: Corpus,
               folder: Path, say: Progress, train_progress: bool
               ) -> tuple[list[list[RungMeasure]], Optional[int], int]:
    sizes = schedule.sizes(len(candidates))
    seen: dict[float, int] = {}
    trained = 0
    by_name = {id(c): c for c in candidates}
    measured: dict[int, list[RungMeasure]] = {id(c): [] for c in candidates}

    def measure(cand: Candidate, budget: float) -> float:
        nonlocal trained
        rung = schedule.rungs.index(budget)
        seen[budget] = seen.get(budget, 0) + 1
        t0 = time.perf_counter()
        m, now = CandidateFolder(folder / cand.folder, cand.cell).measure(budget, config, corpus, schedule.unit,
                                                                          progress=train_progress)
        trained += now
        measured[id(cand)].append(m)
        ppl = "diverged" if m.diverged else f"val ppl {m.val_ppl:.2f}"
        how = f"{time.perf_counter() - t0:.0f} s" if now else "recorded"
        say(f"rung {rung + 1}/{len(schedule.rungs)} ({budget:g} {schedule.unit}), {seen[budget]}/{sizes[rung]}: "
            f"{by_name[id(cand)].name}: {ppl} ({how})")
        return m.val_ppl

    halving = successive_halving(list(candidates), schedule, measure)
    return [measured[id(c)] for c in candidates], halving.winner_index, trained


def _ranked_winner(schedule: Schedule, candidates: Sequence[Candidate],
                   measures: Sequence[Sequence[RungMeasure]]) -> Optional[int]:
    """The best candidate at the furthest rung reached (what an asynchronous scheduler leaves): further rung
    first, then lower perplexity; None if none got a finite measurement there."""
    traces = tuple(CandidateTrace(c, i, len(ms) - 1, tuple(m.val_ppl for m in ms))
                   for i, (c, ms) in enumerate(zip(candidates, measures)) if ms)
    if not traces:
        return None
    best = HalvingResult(schedule, traces, None, None, 0.0).ranking()[0]
    return None if best.diverged or not math.isfinite(best.last_ppl) else best.index


__all__ = ["EXECUTORS", "RefineError", "RefineResult", "check_inputs", "refine", "unique"]
