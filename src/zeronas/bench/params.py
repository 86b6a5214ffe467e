"""Serianni & Kalita's trainable-parameter counts of NAS-Bench-NLP runs (bundled, CC BY 4.0)."""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from importlib import resources
from typing import Iterator

LOG_NAME = re.compile(r"^log_stats_model_(\d+)_")


def published_parameter_counts() -> Iterator[tuple[int, int]]:
    """Yield ``(recepie_id, trainable parameters)`` for every row with a real count.

    The upstream file also holds junk rows (``logs.zip``, ``.DS_Store``, repeated headers) and rows whose
    count is NaN; those are skipped, as the data's SOURCE.md describes.
    """
    raw = resources.files("zeronas.data").joinpath("serianni_kalita/RNN_parameters.csv.gz").read_bytes()
    with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            match = LOG_NAME.match(row.get("log name") or "")
            if not match:
                continue
            try:
                count = float(row["trainable paramters"])
            except (TypeError, ValueError):
                continue
            if math.isfinite(count):
                yield int(match.group(1)), int(count)
