"""A refine's run-state file, ``refine.json`` in its folder: what the run is (candidates, schedule, training config,
corpus) and, once it has finished, its result. Written atomically; a rerun with the same folder checks that it is
the same run and resumes it (the candidates' own ``rungs.json`` hold the measurements, see :mod:`.rungs`).

A rerun may add rungs after the stored ones (continuing the same run further); anything else that differs (a
candidate, the order, eta, the unit, a training-config field other than how long or where to train, the corpus)
is refused with a message naming the file and the field, and nothing in the folder is touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional, Sequence

from zeronas.cells.recipe import Cell
from zeronas.refine.halving import Schedule
from zeronas.train import RUN_ONLY_FIELDS, TrainConfig, atomic_write_bytes

STATE_FILE = "refine.json"
STATE_FORMAT = "zeronas-refine-state"
STATE_VERSION = 1
CELLS_DIR = "cells"


class RefineStateError(ValueError):
    """A folder holding another run (or a damaged run-state file); the message names the file and the field."""


@dataclass(frozen=True)
class Candidate:
    """One cell to refine: how the user named it, the cell, whether it is a reference cell (lstm, gru) run beside
    the candidates, and its folder inside the run's folder."""

    name: str
    cell: Cell
    reference: bool = False

    @property
    def folder(self) -> str:
        """Relative to the run's folder; the recipe's sha1 names it, so a rerun finds it whatever the name."""
        return f"{CELLS_DIR}/{self.cell.arch_sha1[:16]}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "canonical_id": self.cell.canonical_id, "arch_sha1": self.cell.arch_sha1,
                "reference": self.reference, "folder": self.folder}


def header(candidates: Sequence[Candidate], schedule: Schedule, config: TrainConfig,
           corpus: dict[str, Any]) -> dict[str, Any]:
    """The run-state file's content before any result."""
    return {"format": STATE_FORMAT, "version": STATE_VERSION,
            "schedule": {"rungs": list(schedule.rungs), "eta": schedule.eta, "unit": schedule.unit},
            "config": config.to_dict(), "corpus": corpus,
            "candidates": [c.to_dict() for c in candidates], "result": None}


def _differs(path: Path, field: str, saved: Any, now: Any) -> RefineStateError:
    return RefineStateError(f"{path}: field '{field}' differs: {saved!r} in the run-state file, {now!r} in this "
                            "run; use another --checkpoint folder (or delete this one to start afresh)")


def _check(path: Path, saved: dict[str, Any], new: dict[str, Any]) -> None:
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        raise RefineStateError(f"{path}: not a zeronas refine run-state file (field 'format')")
    if saved.get("version") != STATE_VERSION:
        raise RefineStateError(f"{path}: field 'version' is {saved.get('version')!r}, this zeronas reads "
                               f"{STATE_VERSION}")
    for key in ("eta", "unit"):
        if saved.get("schedule", {}).get(key) != new["schedule"][key]:
            raise _differs(path, f"schedule.{key}", saved.get("schedule", {}).get(key), new["schedule"][key])
    old_rungs, rungs = saved.get("schedule", {}).get("rungs"), new["schedule"]["rungs"]
    if not isinstance(old_rungs, list) or rungs[:len(old_rungs)] != old_rungs:
        raise RefineStateError(f"{path}: field 'schedule.rungs' differs: {old_rungs!r} in the run-state file, "
                               f"{rungs!r} in this run (rungs may only be added after the stored ones); use "
                               "another --checkpoint folder (or delete this one to start afresh)")
    for f in fields(TrainConfig):
        if f.name in RUN_ONLY_FIELDS:
            continue
        old = saved.get("config", {}).get(f.name)
        if old != new["config"][f.name]:
            raise _differs(path, f"config.{f.name}", old, new["config"][f.name])
    for key, value in new["corpus"].items():
        if key != "name" and saved.get("corpus", {}).get(key) != value:
            raise _differs(path, f"corpus.{key}", saved.get("corpus", {}).get(key), value)
    old_ids = [c.get("arch_sha1") for c in saved.get("candidates", [])]
    new_ids = [c["arch_sha1"] for c in new["candidates"]]
    if old_ids != new_ids:
        raise RefineStateError(f"{path}: field 'candidates' differs: {len(old_ids)} cells in the run-state file, "
                               f"{len(new_ids)} in this run, or other cells or another order (first difference: "
                               f"{_first_difference(old_ids, new_ids)}); use another --checkpoint folder (or "
                               "delete this one to start afresh)")


def _first_difference(old: list[Any], new: list[Any]) -> str:
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            return f"position {i + 1}: {a} then, {b} now"
    return f"position {min(len(old), len(new)) + 1}: one list is longer"


class RunState:
    """The run-state file of one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / STATE_FILE
        self.data: dict[str, Any] = {}

    def open(self, new: dict[str, Any]) -> bool:
        """Start the run described by ``new`` (a :func:`header`), or check that the folder holds the same run and
        resume it. Returns whether it resumes. Raises :class:`RefineStateError` before writing anything."""
        resumed = self.path.exists()
        if resumed:
            try:
                saved = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RefineStateError(f"{self.path}: cannot read the run-state file: {exc}") from None
            _check(self.path, saved, new)
            if saved["schedule"]["rungs"] != new["schedule"]["rungs"]:
                saved = {**saved, "schedule": new["schedule"], "result": None}  # extended: not finished any more
            self.data = saved
        else:
            if self.folder.exists() and not self.folder.is_dir():
                raise RefineStateError(f"{self.folder}: not a folder")
            self.folder.mkdir(parents=True, exist_ok=True)
            self.data = new
        self._write()
        return resumed

    def finish(self, result: dict[str, Any]) -> None:
        self.data["result"] = result
        self._write()

    @property
    def result(self) -> Optional[dict[str, Any]]:
        return self.data.get("result")

    def _write(self) -> None:
        text = json.dumps(self.data, indent=1, allow_nan=False).encode()
        atomic_write_bytes(self.path, lambda fh: fh.write(text))


__all__ = ["CELLS_DIR", "STATE_FILE", "Candidate", "RefineStateError", "RunState", "header"]
