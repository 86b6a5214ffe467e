"""Serianni & Kalita's published per-run results on NAS-Bench-NLP PTB (bundled, CC BY 4.0): their proxy scores
and their trainable-parameter counts, each row joined to the benchmark's recipes by the run's ``recepie_id``."""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from zeronas.bench.nbnlp import BenchmarkError, _bundled_text, load_recipe_list

SCORES_FILE = "RNN_results.csv.gz"
PARAMETERS_FILE = "RNN_parameters.csv.gz"
LOG_NAME = re.compile(r"^log_stats_model_(\d+)_")  # their log names carry the run's recepie_id

__all__ = ["published_parameter_counts", "published_scores"]


@functools.lru_cache(maxsize=1)
def _sha1_by_recepie_id() -> Mapping[int, str]:
    return MappingProxyType({entry["recepie_id"]: entry["arch_sha1"] for entry in load_recipe_list()})


def published_scores() -> list[dict[str, Any]]:
    """Serianni & Kalita's per-log results on PTB (development split, 6,130 rows): each row as in their
    ``RNN_results.csv`` (numbers as floats, ``log name`` kept as text) plus ``recepie_id`` (from the log name) and
    ``arch_sha1`` (joined via the recipe list)."""
    source = "zeronas/data/serianni_kalita/" + SCORES_FILE
    reader = csv.reader(io.StringIO(_bundled_text(SCORES_FILE, "serianni_kalita", "utf-8-sig"), newline=""))
    header = next(reader)
    sha1s = _sha1_by_recepie_id()
    out: list[dict[str, Any]] = []
    for row in reader:
        if not row:
            continue
        where = f"{source}: line {reader.line_num}"
        record: dict[str, Any] = {}
        for name, value in zip(header, row):
            if name == "log name":
                record[name] = value
            else:
                record[name] = float(value) if value.strip() else None
        m = LOG_NAME.match(record.get("log name", ""))
        if m is None:
            raise BenchmarkError(f"{where}: cannot read the recepie_id from log name {record.get('log name')!r}")
        rid = int(m.group(1))
        if rid not in sha1s:
            raise BenchmarkError(f"{where}: recepie_id {rid} is not in the recipe list")
        record["recepie_id"] = rid
        record["arch_sha1"] = sha1s[rid]
        out.append(record)
    return out


def published_parameter_counts() -> Iterator[tuple[int, int]]:
    """Yield ``(recepie_id, trainable parameters)`` for every row with a real count.

    The upstream file also holds junk rows (``logs.zip``, ``.DS_Store``, repeated headers) and rows whose
    count is NaN; those are skipped, as the data's SOURCE.md describes.
    """
    text = _bundled_text(PARAMETERS_FILE, "serianni_kalita", "utf-8-sig")
    for row in csv.DictReader(io.StringIO(text, newline="")):
        match = LOG_NAME.match(row.get("log name") or "")
        if not match:
            continue
        try:
            count = float(row["trainable paramters"])
        except (TypeError, ValueError):
            continue
        if math.isfinite(count):
            yield int(match.group(1)), int(count)
