"""One candidate's training under successive halving: train it to a rung's budget through :func:`zeronas.train.train`
(continuing its own checkpoint), measure validation perplexity there, and remember the measurement.

Each candidate has a folder holding ``checkpoint.pt`` and ``metrics.json`` (written by :func:`zeronas.train.train`),
``cell.json`` (its recipe, so ``zeronas train FOLDER/cell.json --checkpoint FOLDER`` continues it) and
``rungs.json`` (its measurement at every rung reached, written atomically after each). Training to a budget is a
pure function of (cell, config, corpus, budget): a checkpoint resumes bit-identically, so a measurement read back
from ``rungs.json`` is the one training again would give, and a killed run loses at most the training since the
last checkpoint.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from zeronas.cells.recipe import Cell
from zeronas.data.corpus import Corpus
from zeronas.train import METRICS_FILE, TrainConfig, TrainResult, atomic_write_bytes, train

RUNGS_FILE = "rungs.json"
CELL_FILE = "cell.json"
RUNGS_FORMAT = "zeronas-refine-rungs"
OUT_OF_MEMORY = "out of memory"


class RungError(ValueError):
    """A candidate folder that cannot be used: the message names the file and the field."""


@dataclass(frozen=True)
class RungMeasure:
    """A candidate at one rung. ``val_ppl`` is inf when training diverged (``reason`` says how); ``seconds`` is
    the candidate's training and validation time up to this rung, all sessions."""

    budget: float
    val_loss: Optional[float]
    val_ppl: float
    steps: int
    tokens: int
    seconds: float
    diverged: bool
    reason: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["val_ppl"] = self.val_ppl if math.isfinite(self.val_ppl) else None  # valid JSON; diverged says why
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RungMeasure":
        ppl = data["val_ppl"]
        return cls(float(data["budget"]), data["val_loss"], math.inf if ppl is None else float(ppl),
                   int(data["steps"]), int(data["tokens"]), float(data["seconds"]), bool(data["diverged"]),
                   data.get("reason"))

    @classmethod
    def of(cls, budget: float, result: TrainResult) -> "RungMeasure":
        ppl = result.val_ppl if result.val_ppl is not None and not result.diverged else math.inf
        return cls(budget, result.val_loss, ppl, result.steps, result.tokens, result.seconds, result.diverged,
                   result.divergence_reason)


def rung_config(config: TrainConfig, budget: float, unit: str) -> TrainConfig:
    """``config`` stopping at ``budget`` epochs (fractions allowed) or training tokens."""
    if unit == "epochs":
        return config.replace(stop_epochs=float(budget), max_tokens=None, max_steps=None)
    if unit == "tokens":
        return config.replace(max_tokens=int(budget), stop_epochs=None, max_steps=None)
    raise ValueError(f"unit must be epochs or tokens, got {unit!r}")


class CandidateFolder:
    """A candidate's folder (see the module docstring)."""

    def __init__(self, folder: str | Path, cell: Cell) -> None:
        self.folder = Path(folder)
        self.cell = cell

    @property
    def cell_file(self) -> Path:
        return self.folder / CELL_FILE

    def measures(self) -> dict[float, RungMeasure]:
        """``{budget: measurement}`` of every rung this candidate reached (empty for a new folder)."""
        path = self.folder / RUNGS_FILE
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RungError(f"{path}: not a rungs file: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != RUNGS_FORMAT:
            raise RungError(f"{path}: not a zeronas rungs file (field 'format')")
        if data.get("arch_sha1") != self.cell.arch_sha1:
            raise RungError(f"{path}: field 'arch_sha1' differs: {data.get('arch_sha1')!r} in the file, this "
                            f"candidate is {self.cell.arch_sha1}")
        try:
            items = [RungMeasure.from_dict(m) for m in data["rungs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise RungError(f"{path}: field 'rungs' is malformed: {exc!r}") from None
        return {m.budget: m for m in items}

    def record(self, measure: RungMeasure) -> None:
        """Add (or replace) the measurement at ``measure.budget``, atomically."""
        known = self.measures()
        known[measure.budget] = measure
        data = {"format": RUNGS_FORMAT, "version": 1, "arch_sha1": self.cell.arch_sha1,
                "canonical_id": self.cell.canonical_id,
                "rungs": [known[b].to_dict() for b in sorted(known)]}
        text = json.dumps(data, indent=1, allow_nan=False).encode()
        atomic_write_bytes(self.folder / RUNGS_FILE, lambda fh: fh.write(text))

    def prepare(self) -> None:
        """Create the folder and write ``cell.json`` (the exact recipe the checkpoint was trained on)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.cell_file.exists():
            text = json.dumps(self.cell.recipe, indent=1, sort_keys=True).encode()
            atomic_write_bytes(self.cell_file, lambda fh: fh.write(text))

    def measure(self, budget: float, config: TrainConfig, corpus: Corpus, unit: str,
                progress: bool = False) -> tuple[RungMeasure, bool]:
        """The measurement at ``budget``: read back if this candidate reached it before, else trained to it from
        its checkpoint (then recorded). Returns it and whether it was trained now."""
        known = self.measures()
        if budget in known:
            return known[budget], False
        past = [b for b in known if b > budget]
        if past:
            raise RungError(f"{self.folder / RUNGS_FILE}: this candidate was trained to {max(past):g} {unit}, past "
                            f"the rung at {budget:g}: its rungs cannot be measured again; use another folder")
        self.prepare()
        try:
            result = train(self.cell, rung_config(config, budget, unit), corpus, checkpoint_dir=self.folder,
                           progress=progress, test=False)
            measure = RungMeasure.of(budget, result)
        except RuntimeError as exc:
            if not _out_of_memory(exc):
                raise
            measure = _failed(budget, exc, self.folder)
        self.record(measure)
        return measure, True


def _out_of_memory(exc: RuntimeError) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


def _failed(budget: float, exc: RuntimeError, folder: Path) -> RungMeasure:
    """A candidate that ran out of memory: recorded as a failure (it ranks last and goes no further), with the
    training done before it was last checkpointed; delete its rungs.json to try it again."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    steps = tokens = 0
    seconds = 0.0
    try:
        progress = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))["progress"]
        steps, tokens, seconds = int(progress["step"]), int(progress["tokens"]), float(progress["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return RungMeasure(budget, None, math.inf, steps, tokens, seconds, True, f"{OUT_OF_MEMORY}: {first}")


__all__ = ["CELL_FILE", "RUNGS_FILE", "CandidateFolder", "RungError", "RungMeasure", "rung_config"]
