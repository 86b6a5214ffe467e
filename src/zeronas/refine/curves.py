"""Learning-curve tables: per-epoch training logs read from the released NAS-Bench-NLP format, one cell each.

A table has one row per log and epoch with (at least) the columns :data:`NEEDED`; ``arch_sha1``, ``train_loss``
and ``num_params`` of the released file are read when present and not needed. Losses are cross-entropies in nats
per token (perplexity = exp(loss)); ``wall_seconds`` is that epoch's training time.

How a table is read:

- **One curve per cell.** Logs of the same cell (same canonical id, which merges recipes that differ only in node
  names or input order) are deduplicated: the log with the lowest ``recepie_id`` represents the cell, the others
  are listed in :attr:`CurveCell.log_ids`. A refine trains a cell once, so the replay uses one real run, not an
  average that no training would produce.
- **Divergence.** A log whose ``status`` is not ``OK`` (the run failed) reports the epochs it logged; at any epoch
  it did not reach, and at any epoch whose loss is not finite, it is diverged. Its final result is diverged.
- **Whole epochs only.** Per-epoch logs say nothing about the loss within an epoch, so a fractional rung
  (0.25 epoch) is refused rather than interpolated between a made-up epoch-0 loss and epoch 1 (:meth:`CurveTable
  .check_schedule`). Rungs in tokens are refused for the same reason.
- **The final epoch** is the last epoch of the table; a log with status ``OK`` must have every epoch up to it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, TextIO

from zeronas.cells.recipe import Cell, RecipeError, parse_recipe
from zeronas.refine.halving import Schedule

#: The columns a replay reads.
NEEDED: tuple[str, ...] = ("recepie_id", "status", "epoch", "val_loss", "test_loss", "wall_seconds", "recipe")
#: NAS-Bench-NLP's example cells (rnn, lstm, gru): reference cells, not candidates.
NBNLP_REFERENCE_IDS: dict[int, str] = {1000000: "nbnlp-rnn", 1000001: "nbnlp-lstm", 1000002: "nbnlp-gru"}
#: zeronas's own reference cells; a table cell equal to one of them is a reference too.
ZERONAS_REFERENCES: tuple[str, ...] = ("lstm", "gru")
BUNDLED = "wt2_dev_curves.csv.gz"


class CurveError(ValueError):
    """A curve table that cannot be replayed; the message names the file, the row or log, and the field."""


@dataclass(frozen=True)
class Log:
    """One training run: per-epoch losses and seconds, epoch ``i + 1`` at index ``i``."""

    log_id: int
    status: str
    val_loss: tuple[float, ...]
    test_loss: tuple[float, ...]
    seconds: tuple[float, ...]

    @property
    def ok(self) -> bool:
        return self.status == "OK"


@dataclass(frozen=True)
class CurveCell:
    """One cell of a table: its representative log, the ids of every log of it, and whether it is a reference
    (``reference`` is its name, e.g. ``nbnlp-lstm``, or ``""``)."""

    canonical_id: str
    recipe_json: str
    hidden_tuple_size: int
    log: Log
    log_ids: tuple[int, ...]
    final_epoch: int
    reference: str = ""

    def ppl_at(self, epoch: int) -> float:
        """Validation perplexity after ``epoch`` epochs; ``inf`` where the run had diverged or failed."""
        if epoch < 1 or epoch > len(self.log.val_loss):
            return math.inf
        loss = self.log.val_loss[epoch - 1]
        return math.exp(loss) if math.isfinite(loss) else math.inf

    def seconds_to(self, epoch: int) -> float:
        """Logged training seconds of epochs 1..``epoch`` (a failed run: the epochs it logged)."""
        return math.fsum(self.log.seconds[:max(0, epoch)])

    @property
    def final_ppl(self) -> float:
        """Test perplexity at the table's final epoch: the cell's trained result; ``inf`` when it diverged."""
        if not self.log.ok or len(self.log.test_loss) < self.final_epoch:
            return math.inf
        loss = self.log.test_loss[self.final_epoch - 1]
        return math.exp(loss) if math.isfinite(loss) else math.inf

    @property
    def trained(self) -> bool:
        return math.isfinite(self.final_ppl)

    @property
    def label(self) -> str:
        """A short name for tables: the reference name or ``#<recepie_id>``."""
        return self.reference or f"#{self.log.log_id}"


@dataclass(frozen=True)
class CurveTable:
    """The cells of a curve table, in order of their first log's ``recepie_id``."""

    cells: tuple[CurveCell, ...]
    final_epoch: int
    source: str

    def __len__(self) -> int:
        return len(self.cells)

    def __iter__(self) -> Iterator[CurveCell]:
        return iter(self.cells)

    @classmethod
    def load(cls, path: str | Path) -> "CurveTable":
        """Read a ``.csv`` or ``.csv.gz`` table (see the module docstring)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CurveError(f"{path}: cannot read the curve table ({exc.strerror or exc})") from None
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as exc:
                raise CurveError(f"{path}: not a readable gzip file ({exc})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CurveError(f"{path}: not UTF-8 text") from None
        return cls.read(io.StringIO(text), str(path))

    @classmethod
    def bundled(cls) -> "CurveTable":
        """NAS-Bench-NLP's WikiText-2 curves of the development split (see data/nbnlp/SOURCE.md)."""
        from importlib.resources import files

        with files("zeronas.data").joinpath("nbnlp", BUNDLED).open("rb") as fh:
            text = gzip.decompress(fh.read()).decode("utf-8")
        return cls.read(io.StringIO(text), f"bundled {BUNDLED}")

    @classmethod
    def read(cls, stream: TextIO, source: str = "curve table") -> "CurveTable":
        logs, recipes = _read_logs(stream, source)
        if not logs:
            raise CurveError(f"{source}: no rows")
        final = max(len(log.val_loss) for log in logs.values())
        for log in logs.values():
            if log.ok and len(log.val_loss) < final:
                raise CurveError(f"{source}: log {log.log_id} has status OK but ends at epoch "
                                 f"{len(log.val_loss)} of {final}")
        return cls(_cells(logs, recipes, final, source), final, source)

    def without_references(self) -> "CurveTable":
        return CurveTable(tuple(c for c in self.cells if not c.reference), self.final_epoch, self.source)

    @property
    def references(self) -> tuple[CurveCell, ...]:
        return tuple(c for c in self.cells if c.reference)

    def get(self, canonical_id: str) -> CurveCell:
        for c in self.cells:
            if c.canonical_id == canonical_id:
                return c
        raise KeyError(f"{self.source}: no cell {canonical_id}")

    def check_schedule(self, schedule: Schedule) -> tuple[int, ...]:
        """The rungs as whole epochs, or a :class:`CurveError` saying why the table cannot replay them."""
        if schedule.unit != "epochs":
            raise CurveError(f"{self.source}: rungs in {schedule.unit} cannot be replayed from per-epoch logs; "
                             "give rungs in epochs")
        out = []
        for r in schedule.rungs:
            if r != int(r):
                raise CurveError(f"{self.source}: rung {r:g} epochs cannot be read from per-epoch logs "
                                 "(whole epochs only; a fraction is not interpolated)")
            if r > self.final_epoch:
                raise CurveError(f"{self.source}: rung {r:g} epochs is beyond the logged {self.final_epoch}")
            out.append(int(r))
        return tuple(out)


def _float(text: str, where: str, field: str, *, empty_nan: bool = True) -> float:
    if text.strip() == "" and empty_nan:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise CurveError(f"{where}: {field} is not a number: {text!r}") from None


def _int(text: str, where: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CurveError(f"{where}: {field} is not an integer: {text!r}") from None


def _read_logs(stream: TextIO, source: str) -> tuple[dict[int, Log], dict[int, str]]:
    reader = csv.DictReader(stream)
    missing = [c for c in NEEDED if c not in (reader.fieldnames or ())]
    if missing:
        raise CurveError(f"{source}: no column {', '.join(missing)} (a curve table needs {', '.join(NEEDED)})")
    rows: dict[int, dict[int, tuple[float, float, float]]] = {}
    status: dict[int, str] = {}
    recipes: dict[int, str] = {}
    for n, row in enumerate(reader, start=2):
        where = f"{source}: row {n}"
        if None in row.values() or None in row:
            raise CurveError(f"{where}: wrong number of fields")
        log_id = _int(row["recepie_id"], where, "recepie_id")
        epoch = _int(row["epoch"], where, "epoch")
        if epoch < 1:
            raise CurveError(f"{where}: epoch must be 1 or more: {epoch}")
        seconds = _float(row["wall_seconds"], where, "wall_seconds", empty_nan=False)
        if not math.isfinite(seconds) or seconds < 0:
            raise CurveError(f"{where}: wall_seconds must be a finite number >= 0: {row['wall_seconds']!r}")
        values = (_float(row["val_loss"], where, "val_loss"), _float(row["test_loss"], where, "test_loss"), seconds)
        epochs = rows.setdefault(log_id, {})
        if epoch in epochs:
            raise CurveError(f"{where}: log {log_id} has epoch {epoch} twice")
        epochs[epoch] = values
        if status.setdefault(log_id, row["status"]) != row["status"] or \
                recipes.setdefault(log_id, row["recipe"]) != row["recipe"]:
            raise CurveError(f"{where}: log {log_id} changes its status or recipe between epochs")
    logs = {}
    for log_id, epochs in rows.items():
        if sorted(epochs) != list(range(1, len(epochs) + 1)):
            gap = next(e for e in range(1, max(epochs) + 1) if e not in epochs)
            raise CurveError(f"{source}: log {log_id} has no epoch {gap}")
        ordered = [epochs[e] for e in range(1, len(epochs) + 1)]
        logs[log_id] = Log(log_id, status[log_id], *(tuple(v[i] for v in ordered) for i in range(3)))
    return logs, recipes


def _reference_ids() -> dict[str, str]:
    from zeronas.cells.reference import reference_cell

    return {reference_cell(name).canonical_id: name for name in ZERONAS_REFERENCES}


def _cells(logs: Mapping[int, Log], recipes: Mapping[int, str], final: int, source: str) -> tuple[CurveCell, ...]:
    by_id: dict[str, list[int]] = {}
    parsed: dict[str, Cell] = {}
    for log_id in sorted(logs):
        try:
            cell = parse_recipe(json.loads(recipes[log_id]), source=f"{source}: log {log_id}")
        except (json.JSONDecodeError, RecipeError) as exc:
            raise CurveError(f"{source}: log {log_id}: bad recipe ({str(exc).splitlines()[0]})") from None
        by_id.setdefault(cell.canonical_id, []).append(log_id)
        parsed.setdefault(cell.canonical_id, cell)
    zeronas_refs = _reference_ids()
    out = []
    for cid, ids in by_id.items():
        names = [NBNLP_REFERENCE_IDS[i] for i in ids if i in NBNLP_REFERENCE_IDS]
        ref = names[0] if names else zeronas_refs.get(cid, "")
        cell = parsed[cid]
        out.append(CurveCell(cid, cell.to_json(), cell.hidden_tuple_size, logs[ids[0]], tuple(ids), final, ref))
    return tuple(out)


def cells_by_id(cells: Iterable[CurveCell]) -> dict[str, CurveCell]:
    return {c.canonical_id: c for c in cells}
