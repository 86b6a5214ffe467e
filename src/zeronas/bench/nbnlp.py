"""The ground truth: NAS-Bench-NLP PTB test losses (bundled development split) or a user benchmark CSV.

Runs are grouped into :class:`Architecture` objects by the cell's **canonical id**: several benchmark recipes
(different ``arch_sha1``) can be the same cell up to renaming of nodes and the input order of commutative ops.

A benchmark CSV has the columns ``recipe`` (the cell as JSON) and ``test_loss`` (final test cross-entropy,
nats/token; empty means the run diverged), and optionally ``arch_sha1`` (checked against the recipe),
``replica`` and ``recepie_id``. Nothing in a file is ever evaluated; recipes are read with :mod:`json` only.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import math
import random
import re
import statistics
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping, Sequence, TextIO

from zeronas.cells.recipe import Cell, RecipeError, parse_recipe

GROUNDTRUTH_FILE = "ptb_groundtruth.csv.gz"
RECIPES_FILE = "ptb_multirun_recipes.jsonl.gz"
REQUIRED_COLUMNS: tuple[str, ...] = ("recipe", "test_loss")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used. The message names the file, the line and the problem."""


@dataclass(frozen=True)
class Run:
    """One training run: the recipe's sha1, its final test loss (None = diverged/failed) and where it came from."""

    arch_sha1: str
    test_loss: float | None
    replica: int | None = None
    recepie_id: int | None = None
    line: int | None = None  # line of the source file


@dataclass(frozen=True, eq=False)
class Architecture:
    """All runs of one cell, up to renaming. ``cell`` is the first recipe met; ``arch_sha1s`` lists every distinct
    benchmark recipe (sha1) that is this cell; ``test_losses`` has one entry per run (None = diverged).
    Compared and hashed by identity (a benchmark holds one object per canonical id)."""

    canonical_id: str
    cell: Cell
    arch_sha1s: tuple[str, ...]
    test_losses: tuple[float | None, ...]
    runs: tuple[Run, ...] = ()

    @property
    def n_runs(self) -> int:
        return len(self.test_losses)

    @property
    def finite_losses(self) -> tuple[float, ...]:
        return tuple(x for x in self.test_losses if x is not None)

    @property
    def diverged(self) -> bool:
        """True when no run has a finite test loss."""
        return not self.finite_losses

    @property
    def mean_test_loss(self) -> float | None:
        """Mean test loss (nats/token) over the runs that did not diverge; None if all diverged."""
        finite = self.finite_losses
        return math.fsum(finite) / len(finite) if finite else None

    @property
    def test_ppl(self) -> float | None:
        """``exp(mean_test_loss)``, or None if every run diverged."""
        loss = self.mean_test_loss
        if loss is None:
            return None
        return math.exp(loss) if loss < 709.0 else math.inf

    @property
    def hidden_tuple_size(self) -> int:
        return self.cell.hidden_tuple_size


class Benchmark:
    """A set of architectures with ground-truth test losses, in order of first appearance in the source.
    Immutable (its architectures, runs and cells are too), so one object can be shared by every caller."""

    __slots__ = ("source", "_archs", "_by_canonical", "_by_sha1")

    def __init__(self, architectures: Iterable[Architecture], source: str = "benchmark") -> None:
        archs = tuple(architectures)
        by_canonical: dict[str, Architecture] = {}
        by_sha1: dict[str, Architecture] = {}
        for arch in archs:
            if arch.canonical_id in by_canonical:
                raise ValueError(f"{source}: canonical id {arch.canonical_id} appears twice")
            by_canonical[arch.canonical_id] = arch
            for sha1 in arch.arch_sha1s:
                by_sha1[sha1] = arch
        for attr, value in (("source", source), ("_archs", archs), ("_by_canonical", MappingProxyType(by_canonical)),
                            ("_by_sha1", MappingProxyType(by_sha1))):
            object.__setattr__(self, attr, value)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"a Benchmark is immutable (cannot set {attr!r})")

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def nbnlp(cls) -> "Benchmark":
        """The bundled NAS-Bench-NLP PTB development split (8,529 runs of 2,843 recipes). Cached: every call
        returns the same object, which no caller can change."""
        return _bundled_benchmark()

    @classmethod
    def from_csv(cls, path: str | Path) -> "Benchmark":
        """Read a benchmark CSV (plain or ``.gz``, UTF-8). Raises :class:`BenchmarkError` naming file and line."""
        from zeronas.files import MiB, FileArgError, read_regular

        p = Path(path)
        try:  # a regular file of bounded size: never a FIFO that blocks or /dev/zero
            raw = read_regular(p, what="ground-truth file", limit=512 * MiB)
        except FileArgError as exc:
            raise BenchmarkError(str(exc)) from None
        if p.suffix == ".gz":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as exc:
                raise BenchmarkError(f"{p}: not a valid gzip file: {exc}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BenchmarkError(f"{p}: not UTF-8 text: {exc}") from None
        return cls(_architectures_from_runs(_read_runs(io.StringIO(text, newline=""), str(p))), source=str(p))

    # -- access ------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Architecture]:
        return iter(self._archs)

    def __len__(self) -> int:
        return len(self._archs)

    def __contains__(self, key: object) -> bool:
        try:
            self.get(key)  # type: ignore[arg-type]
        except (KeyError, RecipeError):
            return False
        return True

    def __repr__(self) -> str:
        return (f"Benchmark({self.source!r}: {len(self)} architectures, {self.n_runs} runs, "
                f"{self.n_recipes} recipes)")

    @property
    def architectures(self) -> tuple[Architecture, ...]:
        return self._archs

    @property
    def n_runs(self) -> int:
        return sum(a.n_runs for a in self._archs)

    @property
    def n_recipes(self) -> int:
        """Distinct recipes (arch_sha1s); at least ``len(self)``."""
        return len(self._by_sha1)

    @property
    def arch_sha1s(self) -> tuple[str, ...]:
        return tuple(self._by_sha1)

    def get(self, key: str | Cell | Mapping[str, Any]) -> Architecture:
        """Look up by canonical id, by arch_sha1, or by a recipe (a :class:`Cell`, a mapping or a JSON string);
        a recipe matches any architecture that is the same cell up to renaming. KeyError when absent;
        :class:`RecipeError` when a recipe key is not a valid cell."""
        if isinstance(key, str):
            k = key.strip()
            if _HEX40.match(k.lower()):
                k = k.lower()
                arch = self._by_canonical.get(k) or self._by_sha1.get(k)
                if arch is None:
                    raise KeyError(f"{k}: no architecture with this canonical id or arch_sha1 in {self.source}")
                return arch
            if not k.startswith("{"):
                raise KeyError(f"{key!r}: not a canonical id, an arch_sha1 (40 hex digits) or a JSON recipe")
        cell = parse_recipe(key)
        arch = self._by_sha1.get(cell.arch_sha1) or self._by_canonical.get(cell.canonical_id)
        if arch is None:
            raise KeyError(f"recipe {cell.arch_sha1} (canonical id {cell.canonical_id}) is not in {self.source}")
        return arch

    def sample(self, n: int, seed: int) -> list[Architecture]:
        """``n`` distinct architectures drawn uniformly without replacement; the same seed gives the same list.

        The draw is the first ``n`` of one seeded permutation, so a smaller sample is a prefix of a larger one
        with the same seed: a partly finished run over all architectures is itself a uniform sample."""
        if not 0 <= n <= len(self._archs):
            raise ValueError(f"cannot sample {n} of {len(self._archs)} architectures")
        order = list(range(len(self._archs)))
        random.Random(seed).shuffle(order)
        return [self._archs[i] for i in order[:n]]

    def finite(self) -> list[Architecture]:
        """The architectures with at least one finite run."""
        return [a for a in self._archs if not a.diverged]

    def best(self) -> Architecture:
        """The architecture with the lowest mean test loss (first one on ties)."""
        finite = self.finite()
        if not finite:
            raise ValueError(f"{self.source}: every architecture diverged")
        return min(finite, key=lambda a: a.mean_test_loss)  # type: ignore[arg-type,return-value]

    def median_ppl(self) -> float:
        """Median test perplexity over the architectures that did not diverge (see :func:`median_ppl`)."""
        median = median_ppl(self._archs)
        if median is None:
            raise ValueError(f"{self.source}: every architecture diverged")
        return median


def median_ppl(archs: Iterable[Architecture]) -> float | None:
    """The one median of perplexities: over the architectures that did not diverge, the mean of the middle two
    for an even count; None when every one diverged."""
    ppls = [a.test_ppl for a in archs if a.test_ppl is not None]
    return float(statistics.median(ppls)) if ppls else None


# ----------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------

def _read_runs(stream: TextIO, source: str) -> list[tuple[Cell, Run]]:
    reader = csv.reader(stream)
    header = _read_header(reader, source)
    col = {name: i for i, name in enumerate(header)}
    cells: dict[str, Cell] = {}  # recipe text -> cell, so repeated rows are parsed once
    runs: list[tuple[Cell, Run]] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise BenchmarkError(f"{source}: line {reader.line_num}: malformed CSV: {exc}") from None
        line = reader.line_num
        if not row or all(not f.strip() for f in row):
            continue
        where = f"{source}: line {line}"
        if len(row) != len(header):
            raise BenchmarkError(f"{where}: {len(row)} fields, but the header has {len(header)}")
        text = row[col["recipe"]].strip()
        if text not in cells:
            cells[text] = _row_cell(text, where)
        cell = cells[text]
        loss = _parse_loss(row[col["test_loss"]], where)
        if "arch_sha1" in col:
            given = row[col["arch_sha1"]].strip().lower()
            if given and given != cell.arch_sha1:
                raise BenchmarkError(f"{where}: arch_sha1 mismatch: the row says {given} but the recipe's sha1 "
                                     f"(sorted-key compact JSON) is {cell.arch_sha1}")
        replica = _parse_int(row, col, "replica", where)
        recepie_id = _parse_int(row, col, "recepie_id", where)
        runs.append((cell, Run(cell.arch_sha1, loss, replica, recepie_id, line)))
    if not runs:
        raise BenchmarkError(f"{source}: no data rows after the header")
    return runs


def _read_header(reader: Any, source: str) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise BenchmarkError(f"{source}: line {reader.line_num}: malformed CSV: {exc}") from None
    if header is None:
        raise BenchmarkError(f"{source}: empty file; expected a header with the columns "
                             f"{', '.join(REQUIRED_COLUMNS)}")
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise BenchmarkError(f"{source}: line 1: duplicate column(s) {', '.join(map(repr, dupes))}")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise BenchmarkError(f"{source}: line 1: missing column(s) {', '.join(map(repr, missing))}; "
                             f"the header is {', '.join(map(repr, header))}")
    return header


def _row_cell(text: str, where: str) -> Cell:
    """The cell of a row's ``recipe`` column, its canonical id computed now so that an error names the line."""
    if not text:
        raise BenchmarkError(f"{where}: empty 'recipe'")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{where}: bad JSON in column 'recipe': {exc.msg} at character {exc.pos + 1}") from None
    except RecursionError:
        raise BenchmarkError(f"{where}: the JSON in column 'recipe' is nested too deeply to be a cell") from None
    try:
        cell = parse_recipe(text, source="invalid recipe")
        cell.canonical_id  # noqa: B018 - compute now so an error names this line
    except RecipeError as exc:
        raise BenchmarkError(f"{where}: {exc}") from None
    return cell


def _parse_loss(text: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BenchmarkError(f"{where}: non-numeric test_loss {text!r} (leave it empty for a diverged run)") from None
    if not math.isfinite(value):
        return None
    if value < 0:
        raise BenchmarkError(f"{where}: negative test_loss {text!r}; expected a cross-entropy in nats/token")
    return value


def _parse_int(row: list[str], col: dict[str, int], name: str, where: str) -> int | None:
    if name not in col:
        return None
    text = row[col[name]].strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise BenchmarkError(f"{where}: {name} must be an integer, got {text!r}") from None


def _architectures_from_runs(runs: Sequence[tuple[Cell, Run]]) -> list[Architecture]:
    groups: dict[str, list[tuple[Cell, Run]]] = {}
    for cell, run in runs:
        groups.setdefault(cell.canonical_id, []).append((cell, run))
    archs = []
    for canonical_id, members in groups.items():
        sha1s = tuple(dict.fromkeys(run.arch_sha1 for _, run in members))
        archs.append(Architecture(canonical_id=canonical_id, cell=members[0][0], arch_sha1s=sha1s,
                                  test_losses=tuple(run.test_loss for _, run in members),
                                  runs=tuple(run for _, run in members)))
    return archs


def _bundled_text(name: str, folder: str = "nbnlp", encoding: str = "utf-8") -> str:
    res = resources.files("zeronas.data").joinpath(folder).joinpath(name)
    with res.open("rb") as raw:
        return gzip.decompress(raw.read()).decode(encoding)


@functools.lru_cache(maxsize=1)
def _bundled_benchmark() -> Benchmark:
    source = f"zeronas/data/nbnlp/{GROUNDTRUTH_FILE}"
    runs = _read_runs(io.StringIO(_bundled_text(GROUNDTRUTH_FILE), newline=""), source)
    return Benchmark(_architectures_from_runs(runs), source=source)


def load_recipe_list() -> Iterator[dict[str, Any]]:
    """The bundled reconstructed NAS-Bench-NLP recipe list: 14,208 entries (recepie_id 1000000-1014207) holding
    4,322 distinct cells. Yields each line's object as in the file (``recepie_id``, ``arch_sha1``, ``recipe``...)."""
    for line in _bundled_text(RECIPES_FILE).splitlines():
        if line.strip():
            yield json.loads(line)


__all__: Sequence[str] = ["Architecture", "Benchmark", "BenchmarkError", "Run", "load_recipe_list", "median_ppl"]
