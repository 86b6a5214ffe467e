"""Peak resident memory of a process that scores cells as a scoring worker does (issue 21's "memory per worker").

A worker loads the corpus once, then scores one cell after another, each on a fresh
:class:`~zeronas.proxies.context.ScoringContext` with its proxies sharing that context's cache
(:func:`zeronas.proxies.runner.score_cell`). This script does exactly that for ``--cells`` cells (the spread of
``proxy_cost.py``'s ``pick_cells``) with one spec, in a fresh process, and reports the resident set after the imports
and the corpus, and its high-water mark (``VmHWM`` of ``/proc/self/status``, never reset) at the end. Unlike
``proxy_cost.py``, nothing else is built (no whole model for the floor), so the peak is the worker's own.
It uses only ``score_cell``, so it also runs against older versions of the package (``PYTHONPATH``), which is how
issue 21 compares two versions.

    python benchmarks/worker_memory.py [--spec 'hidden_cov!state_escape' | --spec predictor-features]
        [--cells 12] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from proxy_cost import _status_mib, pick_cells
from zeronas.core.spec import spec_proxies
from zeronas.data.corpus import load_ptb
from zeronas.proxies import ScoringConfig
from zeronas.proxies.runner import score_cell


def _mib(field_name: str) -> float:
    """A memory field of /proc/self/status in MiB (``proxy_cost.py``'s reader); this script needs it (Linux)."""
    value = _status_mib(field_name)
    if value is None:
        raise SystemExit(f"/proc/self/status has no {field_name} field")
    return value


def _members(spec: str) -> list[str]:
    if spec == "predictor-features":
        from zeronas.predict.data import default_feature_proxies

        return default_feature_proxies()
    return list(spec_proxies(spec))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="hidden_cov!state_escape",
                    help="a spec, or 'predictor-features' (the predictor's default feature set)")
    ap.add_argument("--cells", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a worker of several uses 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        members = _members(args.spec)
    except (KeyError, ValueError) as exc:
        raise SystemExit(str(exc.args[0] if exc.args else exc)) from None
    cells = pick_cells(args.cells)
    corpus, config = load_ptb(), ScoringConfig()
    baseline = _mib("VmRSS")
    t0 = time.perf_counter()
    for _, cell in cells:
        score_cell(cell, members, config, corpus)
    result = {"spec": args.spec, "proxies": len(members), "cells": len(cells), "threads": torch.get_num_threads(),
              "baseline_mib": baseline, "peak_mib": _mib("VmHWM"), "end_mib": _mib("VmRSS"),
              "seconds_per_cell": (time.perf_counter() - t0) / len(cells)}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{args.spec} ({len(members)} proxies) over {len(cells)} cells, {result['threads']} thread(s): "
              f"{baseline:.0f} MiB after imports and corpus, peak {result['peak_mib']:.0f} MiB, "
              f"{result['end_mib']:.0f} MiB at the end")


if __name__ == "__main__":
    main()
