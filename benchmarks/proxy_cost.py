"""Cost of every registered proxy, as a multiple of one forward+backward of the LM loss (the "floor").

For each of ``--cells`` benchmark cells (a deterministic spread over the bundled NAS-Bench-NLP recipe list that
covers every hidden tuple size, given at least 3 cells) at the default :class:`ScoringConfig` (or ``--tiny``):

- the floor: a model from a fresh :class:`ScoringContext` (built outside the timer), then the median of
  ``--repeats`` timed ``model.loss(inputs, targets)`` + ``backward()`` on the probe batch, after one warm-up;
- each proxy (after one untimed warm-up run of every proxy on a TINY model, so that one-time lazy initialisation
  is not charged to the first cell), run as the runner runs it (:func:`zeronas.proxies.runner.run_proxy`, global RNG seeded), its time
  including whatever it builds (models included). By default ``ctx.cache`` is emptied before each proxy, so every
  time is the proxy's stand-alone cost; ``--share-cache`` keeps the cache across the cell's proxies, as
  :func:`zeronas.core.score_cell` does (later proxies may then reuse earlier work).

Reported per proxy: the median, min and max over cells of (proxy seconds / that cell's floor seconds), the median
seconds, non-ok statuses, and the peak resident memory while it ran (max over cells), also as the rise over the
resident set when it started (a lower bound of the proxy's own working memory: memory that an earlier proxy freed
and the allocator kept is reused without a rise; run one proxy with ``--proxies`` for its own figure). Peak memory is the Linux high-water mark ``VmHWM`` of this process, reset before
each proxy by writing 5 to ``/proc/self/clear_refs`` (torch's CPU allocations are invisible to tracemalloc, so
the resident set is the honest measure); the whole-run peak is the largest of those. Where the reset is not
permitted, only the whole-run peak ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is reported (the reset would
lower ru_maxrss too, which is why it is not used alongside). The resident set includes the interpreter, torch and
the corpus (the baseline is printed).

Whole specs (``--specs``, default: the recommended method; ``--predictor-features`` adds the predictor's default
feature set): for each cell, every proxy the spec needs on one fresh context with a shared cache, exactly as
:func:`zeronas.proxies.runner.score_cell` runs them, timed from creating the context to the last score: building
whatever the proxies read (layers, embedding of the probe batch) included. Reported as the median over cells of
(those seconds, the median of ``--repeats`` runs, / that cell's floor), and in seconds. The per-process parts (the seeded embedding, drawn once per
worker) are drawn before the first cell, as a worker draws them before its first cell.

``--json`` prints one JSON object instead of the report (progress stays on stderr)::

    {"floor_s": F, "build_s": B, "per_proxy": {NAME: {"median_x_floor": X, "median_s": S, ...}},
     "spec_x_floor": {SPEC: X}, "spec_s": {SPEC: S}, "memory_mib": {...}}

``build_s`` is the median time of building a cell's whole seeded model (every layer and the decoder).

    python benchmarks/proxy_cost.py [--cells 20] [--proxies a,b] [--specs 'hidden_cov!state_escape,zen']
        [--predictor-features] [--threads N] [--repeats 3] [--share-cache] [--tiny] [--json] [--json-out FILE]
        [--clock cpu]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zeronas.bench.nbnlp import load_recipe_list
from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.core.spec import spec_proxies
from zeronas.proxies import TINY, ScoringConfig, list_proxies, parse_proxy_list
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import get_proxy, parse_specs
from zeronas.proxies.runner import run_proxy, score_cell
from zeronas.recommended import RECOMMENDED_METHOD

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


# ------------------------------------------------------------------------------------------------ memory
def _status_mib(field_name: str) -> float | None:
    """A memory field of /proc/self/status in MiB (``VmHWM``: the resident-set high-water mark since the last
    reset; ``VmRSS``: the current resident set), or None off Linux."""
    try:
        m = re.search(rf"^{field_name}:\s+(\d+)\s+kB", _STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) / 1024.0 if m else None


def _reset_rss_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0). False where not permitted."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _maxrss_mib() -> float:
    """ru_maxrss (KiB on Linux). Resetting VmHWM resets it too, so it is only the whole-run peak without resets."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------------------------ cells
def pick_cells(n: int) -> list[tuple[int, Cell]]:
    """``n`` distinct generated benchmark cells as ``(recepie_id, cell)``: split between the hidden tuple sizes in
    proportion to their counts (at least one each when ``n >= 3``), evenly spaced within each size, returned in
    list order. Deterministic."""
    by_k: dict[int, list[tuple[int, int, Cell]]] = {}
    seen: set[str] = set()
    for pos, row in enumerate(load_recipe_list()):
        if row["kind"] != "generated" or row["arch_sha1"] in seen:
            continue
        seen.add(row["arch_sha1"])
        cell = parse_recipe(row["recipe"])
        by_k.setdefault(cell.hidden_tuple_size, []).append((pos, row["recepie_id"], cell))
    total = sum(len(v) for v in by_k.values())
    if not 1 <= n <= total:
        raise SystemExit(f"--cells must be between 1 and {total}")
    ks = sorted(by_k)
    quota = {k: (max(1, round(n * len(by_k[k]) / total)) if n >= len(ks) else 0) for k in ks}
    while sum(quota.values()) > n:  # trim the largest groups first
        k = max(ks, key=lambda k: quota[k])
        quota[k] -= 1
    while sum(quota.values()) < n:  # grow the groups with the most cells per pick
        k = max(ks, key=lambda k: len(by_k[k]) / (quota[k] + 1))
        quota[k] += 1
    picked: list[tuple[int, int, Cell]] = []
    for k in ks:
        group, q = by_k[k], quota[k]
        picked += [group[(2 * i + 1) * len(group) // (2 * q)] for i in range(q)]  # centres of q equal slices
    picked.sort(key=lambda t: t[0])
    return [(rid, cell) for _, rid, cell in picked]


# ------------------------------------------------------------------------------------------------ timing
# the clock of every timing: wall-clock (perf_counter) or, with --clock cpu, this process's CPU time, which a busy
# machine inflates far less (run with --threads 1: the CPU time of N threads is N times their wall time)
_clock = time.perf_counter


def time_floor(ctx: ScoringContext, repeats: int) -> tuple[float, float, float]:
    """(median seconds of one forward+backward of the LM loss, seconds of the context's first whole model (the
    seeded initialisation of every layer, once per cell), seconds of a later one (the copy a proxy gets))."""
    t0 = _clock()
    ctx.model()
    build = _clock() - t0
    t0 = _clock()
    model = ctx.model()
    copy = _clock() - t0
    times = []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        t0 = _clock()
        loss, _ = model.loss(ctx.inputs, ctx.targets)
        loss.backward()
        if i:  # the first is a warm-up
            times.append(_clock() - t0)
    return statistics.median(times), build, copy


def time_spec(cell: Cell, members: list[str], config: ScoringConfig, corpus, repeats: int) -> float:
    """Median seconds of scoring ``cell`` with ``members`` as ``score_cell`` does (a fresh context each time,
    its cache shared by the members), over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        t0 = _clock()
        score_cell(cell, members, config, corpus)
        times.append(_clock() - t0)
    return statistics.median(times)


@dataclass
class ProxyStats:
    ratios: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    peak_mib: float | None = None  # max over cells of VmHWM while the proxy ran
    extra_mib: float | None = None  # max over cells of (that peak - RSS when the proxy started)


@dataclass
class Run:
    """Everything measured: per cell the floor, build and copy times; per proxy its stats; per spec its times."""

    names: list[str]
    specs: dict[str, list[str]]
    floors: list[float] = field(default_factory=list)
    builds: list[float] = field(default_factory=list)
    copies: list[float] = field(default_factory=list)
    suite: list[float] = field(default_factory=list)
    stats: dict[str, ProxyStats] = field(default_factory=dict)
    spec_seconds: dict[str, list[float]] = field(default_factory=dict)
    can_reset: bool = False
    baseline_mib: float | None = None
    run_peak_mib: float = 0.0

    def __post_init__(self) -> None:
        self.stats = {name: ProxyStats() for name in self.names}
        self.spec_seconds = {spec: [] for spec in self.specs}


def _time_proxy(run: Run, ctx: ScoringContext, name: str, rid: int, floor: float, share_cache: bool) -> float:
    if share_cache:  # as score_cell runs them: each proxy knows which run after it (and may leave work for them)
        ctx.upcoming = tuple(run.names[run.names.index(name) + 1:])
    else:
        ctx.cache.clear()
    start_mib = 0.0
    if run.can_reset:
        _reset_rss_peak()
        start_mib = _status_mib("VmRSS") or 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.config.seed)
        t0 = _clock()
        score = run_proxy(name, ctx)
        seconds = _clock() - t0
    st = run.stats[name]
    if run.can_reset:
        peak = _status_mib("VmHWM") or 0.0
        run.run_peak_mib = max(run.run_peak_mib, peak)
        st.peak_mib = peak if st.peak_mib is None else max(st.peak_mib, peak)
        extra = peak - start_mib
        st.extra_mib = extra if st.extra_mib is None else max(st.extra_mib, extra)
    st.seconds.append(seconds)
    st.ratios.append(seconds / floor)
    if not score.ok:
        st.failures.append(f"{rid}:{score.status}")
    return seconds


def measure(cells: list[tuple[int, Cell]], names: list[str], specs: dict[str, list[str]], config: ScoringConfig,
            repeats: int, share_cache: bool, log=sys.stderr) -> Run:
    from zeronas.data.corpus import load_ptb

    corpus = load_ptb()
    run = Run(names, specs)
    # one untimed run of every proxy on a tiny model first: one-time lazy initialisation inside torch (e.g. the
    # forward-mode decompositions) is not a per-cell cost
    warm = ScoringContext(cells[0][1], TINY, corpus)
    for name in dict.fromkeys(names + [m for members in specs.values() for m in members]):
        warm.cache.clear()
        run_proxy(name, warm)
    run.can_reset = _reset_rss_peak()
    for idx, (rid, cell) in enumerate(cells):
        ctx = ScoringContext(cell, config, corpus)
        ctx.inputs  # the probe batch is drawn once per context, outside every timer
        floor, build, copy = time_floor(ctx, repeats)
        run.floors.append(floor)
        run.builds.append(build)
        run.copies.append(copy)
        if run.baseline_mib is None:
            run.baseline_mib = _status_mib("VmRSS") if run.can_reset else _maxrss_mib()
        if run.can_reset:
            run.run_peak_mib = max(run.run_peak_mib, _status_mib("VmHWM") or 0.0)
        run.suite.append(sum(_time_proxy(run, ctx, name, rid, floor, share_cache) for name in names))
        del ctx
        for spec, members in specs.items():
            run.spec_seconds[spec].append(time_spec(cell, members, config, corpus, repeats))
        specs_text = "".join(f", {spec} {run.spec_seconds[spec][-1]:.2f} s" for spec in specs)
        print(f"[{idx + 1}/{len(cells)}] cell {rid} (k={cell.hidden_tuple_size}, {len(cell)} nodes): floor "
              f"{floor * 1000:.0f} ms, build {build * 1000:.0f} ms, suite {run.suite[-1]:.2f} s{specs_text}",
              file=log, flush=True)
    return run


def _median_ratio(values: list[float], floors: list[float]) -> float:
    return statistics.median(v / f for v, f in zip(values, floors))


def summary(run: Run) -> dict:
    """The machine-readable figures (``--json``)."""
    per_proxy = {name: {"median_x_floor": statistics.median(st.ratios), "median_s": statistics.median(st.seconds),
                        "min_x_floor": min(st.ratios), "max_x_floor": max(st.ratios), "not_ok": st.failures,
                        "peak_rss_mib": st.peak_mib, "rise_mib": st.extra_mib}
                 for name, st in run.stats.items()}
    return {"floor_s": statistics.median(run.floors), "build_s": statistics.median(run.builds),
            "build_x_floor": _median_ratio(run.builds, run.floors), "cells": len(run.floors),
            "per_proxy": per_proxy,
            "spec_x_floor": {spec: _median_ratio(t, run.floors) for spec, t in run.spec_seconds.items()},
            "spec_s": {spec: statistics.median(t) for spec, t in run.spec_seconds.items()},
            "memory_mib": {"whole_run_peak": run.run_peak_mib if run.can_reset else _maxrss_mib(),
                           "before_first_proxy": run.baseline_mib, "per_proxy_peaks": run.can_reset},
            "torch_threads": torch.get_num_threads(), "clock": "cpu" if _clock is time.process_time else "wall"}


def report(run: Run, config: ScoringConfig, share_cache: bool) -> None:
    n = len(run.floors)
    print(f"\n## Proxy cost ({n} cells, config {config.config_hash()}: batch {config.batch_size}, "
          f"seq {config.seq_len}, emb {config.emb_size}, hidden {config.hidden_size}, {config.n_layers} layers; "
          f"torch threads {torch.get_num_threads()}; cache {'shared' if share_cache else 'cleared per proxy'}; "
          f"{'CPU' if _clock is time.process_time else 'wall-clock'} time)\n")
    print(f"- floor (forward+backward of the LM loss): median {statistics.median(run.floors) * 1000:.0f} ms "
          f"(min {min(run.floors) * 1000:.0f}, max {max(run.floors) * 1000:.0f}); the whole seeded model: median "
          f"{statistics.median(run.builds) * 1000:.0f} ms = {_median_ratio(run.builds, run.floors):.2f}x floor "
          f"(outside the proxies' times below), then a copy for each proxy that asks for a whole model: median "
          f"{statistics.median(run.copies) * 1000:.0f} ms = {_median_ratio(run.copies, run.floors):.2f}x floor "
          f"(inside its time)")
    if run.names:
        print(f"- whole suite ({len(run.names)} proxies): median {statistics.median(run.suite):.2f} s per cell "
              f"(min {min(run.suite):.2f}, max {max(run.suite):.2f})")
    for spec, times in run.spec_seconds.items():
        print(f"- spec `{spec}`, everything it builds included: median {_median_ratio(times, run.floors):.2f}x "
              f"floor, {statistics.median(times):.3f} s per cell (min {min(times):.3f}, max {max(times):.3f})")
    if run.can_reset:
        print(f"- peak memory (resident set, /proc/self/status VmHWM reset before each proxy): whole run "
              f"{run.run_peak_mib:.0f} MiB; {run.baseline_mib:.0f} MiB resident before the first proxy "
              f"(interpreter, torch, corpus, the floor's model)")
    else:
        print(f"- peak memory: whole run {_maxrss_mib():.0f} MiB (getrusage ru_maxrss; per-proxy peaks unavailable: "
              f"VmHWM cannot be reset through /proc/self/clear_refs here)")
    if run.names:
        _proxy_table(run)


def _proxy_table(run: Run) -> None:
    print()
    print("| proxy | direction | median x floor | min | max | median s | peak RSS MiB | + over start MiB | not ok |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name in sorted(run.names, key=lambda n: statistics.median(run.stats[n].ratios)):
        st = run.stats[name]
        spec = get_proxy(name)
        peak = f"{st.peak_mib:.0f}" if st.peak_mib is not None else "-"
        extra = f"{st.extra_mib:.0f}" if st.extra_mib is not None else "-"
        fails = ", ".join(st.failures[:4]) + (" ..." if len(st.failures) > 4 else "")
        print(f"| {name} | {'higher' if spec.higher_is_better else 'lower'} | "
              f"{statistics.median(st.ratios):.2f} | {min(st.ratios):.2f} | {max(st.ratios):.2f} | "
              f"{statistics.median(st.seconds):.3f} | {peak} | {extra} | {fails or '-'} |")
    print("\n'+ over start' is a lower bound (memory freed by an earlier proxy is reused without a rise); "
          "'not ok' lists recepie_id:status.")


def _specs(args: argparse.Namespace) -> dict[str, list[str]]:
    specs: dict[str, list[str]] = {}
    if args.specs.strip():
        specs = {spec: list(spec_proxies(spec)) for spec in parse_specs(args.specs)}
    if args.predictor_features:
        from zeronas.predict.data import default_feature_proxies

        specs["predictor-features"] = default_feature_proxies()
    return specs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=20, help="benchmark cells (default 20)")
    ap.add_argument("--proxies", default="", help="comma-separated proxy names (default: every registered one; "
                                                  "'none' for none)")
    ap.add_argument("--specs", default=RECOMMENDED_METHOD,
                    help=f"comma-separated specs timed whole, building included (default {RECOMMENDED_METHOD}; "
                         "'' for none)")
    ap.add_argument("--predictor-features", action="store_true",
                    help="also time the predictor's default feature set as one spec ('predictor-features')")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="timed floor passes and spec runs per cell (median)")
    ap.add_argument("--share-cache", action="store_true", help="keep ctx.cache across a cell's proxies")
    ap.add_argument("--tiny", action="store_true", help="the TINY test config instead of the default")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--json-out", default="", help="also write that JSON object to this file")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall-clock time, or this process's CPU time (steadier on a busy machine; use --threads 1)")
    args = ap.parse_args()
    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.proxies.strip().lower() == "none":
            names = []
        elif args.proxies:
            names = parse_proxy_list(args.proxies)
        else:
            names = [s.name for s in list_proxies() if not s.name.startswith("_")]
        specs = _specs(args)
    except (KeyError, ValueError) as exc:
        raise SystemExit(str(exc.args[0] if exc.args else exc)) from None
    config = TINY if args.tiny else ScoringConfig()
    run = measure(pick_cells(args.cells), names, specs, config, args.repeats, args.share_cache)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary(run), indent=1) + "\n")
    if args.json:
        print(json.dumps(summary(run), indent=1))
    else:
        report(run, config, args.share_cache)


if __name__ == "__main__":
    main()
