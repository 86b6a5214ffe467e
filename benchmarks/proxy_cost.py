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

    python benchmarks/proxy_cost.py [--cells 20] [--proxies a,b] [--threads N] [--repeats 3] [--tiny]
"""

from __future__ import annotations

import argparse
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
from zeronas.proxies import TINY, ScoringConfig, list_proxies, parse_proxy_list
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import get_proxy
from zeronas.proxies.runner import run_proxy

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
def time_floor(ctx: ScoringContext, repeats: int) -> tuple[float, float, float]:
    """(median seconds of one forward+backward of the LM loss, seconds of the context's first model (the seeded
    initialisation, once per cell), seconds of a later one (the copy each proxy gets))."""
    t0 = time.perf_counter()
    ctx.model()
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = ctx.model()
    copy = time.perf_counter() - t0
    times = []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss, _ = model.loss(ctx.inputs, ctx.targets)
        loss.backward()
        if i:  # the first is a warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times), build, copy


@dataclass
class ProxyStats:
    ratios: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    peak_mib: float | None = None  # max over cells of VmHWM while the proxy ran
    extra_mib: float | None = None  # max over cells of (that peak - RSS when the proxy started)


def run(cells: list[tuple[int, Cell]], names: list[str], config: ScoringConfig, repeats: int,
        share_cache: bool, log=sys.stderr) -> None:
    from zeronas.data.corpus import load_ptb

    corpus = load_ptb()
    stats = {name: ProxyStats() for name in names}
    floors: list[float] = []
    builds: list[float] = []
    copies: list[float] = []
    suite: list[float] = []
    # one untimed run of every proxy on a tiny model first: one-time lazy initialisation inside torch (e.g. the
    # forward-mode decompositions) is not a per-cell cost
    warm = ScoringContext(cells[0][1], TINY, corpus)
    for name in names:
        warm.cache.clear()
        run_proxy(name, warm)
    can_reset = _reset_rss_peak()
    baseline_mib: float | None = None
    run_peak_mib = 0.0
    for idx, (rid, cell) in enumerate(cells):
        ctx = ScoringContext(cell, config, corpus)
        ctx.inputs  # the probe batch is drawn once per context, outside every timer
        floor, build, copy = time_floor(ctx, repeats)
        floors.append(floor)
        builds.append(build)
        copies.append(copy)
        if baseline_mib is None:
            baseline_mib = _status_mib("VmRSS") if can_reset else _maxrss_mib()
        if can_reset:
            run_peak_mib = max(run_peak_mib, _status_mib("VmHWM") or 0.0)
        cell_total = 0.0
        for name in names:
            if not share_cache:
                ctx.cache.clear()
            if can_reset:
                _reset_rss_peak()
                start_mib = _status_mib("VmRSS") or 0.0
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                score = run_proxy(name, ctx)
            st = stats[name]
            if can_reset:
                peak = _status_mib("VmHWM") or 0.0
                run_peak_mib = max(run_peak_mib, peak)
                st.peak_mib = peak if st.peak_mib is None else max(st.peak_mib, peak)
                extra = peak - start_mib
                st.extra_mib = extra if st.extra_mib is None else max(st.extra_mib, extra)
            st.seconds.append(score.seconds)
            st.ratios.append(score.seconds / floor)
            cell_total += score.seconds
            if not score.ok:
                st.failures.append(f"{rid}:{score.status}")
        suite.append(cell_total)
        print(f"[{idx + 1}/{len(cells)}] cell {rid} (k={cell.hidden_tuple_size}, {len(cell)} nodes): floor "
              f"{floor * 1000:.0f} ms, suite {cell_total:.2f} s", file=log, flush=True)

    print(f"\n## Proxy cost ({len(cells)} cells, config {config.config_hash()}: batch {config.batch_size}, "
          f"seq {config.seq_len}, emb {config.emb_size}, hidden {config.hidden_size}, {config.n_layers} layers; "
          f"torch threads {torch.get_num_threads()}; cache {'shared' if share_cache else 'cleared per proxy'})\n")
    print(f"- floor (forward+backward of the LM loss): median {statistics.median(floors) * 1000:.0f} ms "
          f"(min {min(floors) * 1000:.0f}, max {max(floors) * 1000:.0f}); the seeded model: median "
          f"{statistics.median(builds) * 1000:.0f} ms = {statistics.median(b / f for b, f in zip(builds, floors)):.2f}"
          f"x floor once per cell (outside the proxies' times), then a copy for each proxy that asks for a model: "
          f"median {statistics.median(copies) * 1000:.0f} ms = "
          f"{statistics.median(c / f for c, f in zip(copies, floors)):.2f}x floor (inside its time)")
    print(f"- whole suite ({len(names)} proxies): median {statistics.median(suite):.2f} s per cell "
          f"(min {min(suite):.2f}, max {max(suite):.2f})")
    if can_reset:
        print(f"- peak memory (resident set, /proc/self/status VmHWM reset before each proxy): whole run "
              f"{run_peak_mib:.0f} MiB; {baseline_mib:.0f} MiB resident before the first proxy (interpreter, "
              f"torch, corpus, the floor's model)")
    else:
        print(f"- peak memory: whole run {_maxrss_mib():.0f} MiB (getrusage ru_maxrss; per-proxy peaks unavailable: "
              f"VmHWM cannot be reset through /proc/self/clear_refs here)")
    print()
    print("| proxy | direction | median x floor | min | max | median s | peak RSS MiB | + over start MiB | not ok |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    order = sorted(names, key=lambda n: statistics.median(stats[n].ratios))
    for name in order:
        st = stats[name]
        spec = get_proxy(name)
        peak = f"{st.peak_mib:.0f}" if st.peak_mib is not None else "-"
        extra = f"{st.extra_mib:.0f}" if st.extra_mib is not None else "-"
        fails = ", ".join(st.failures[:4]) + (" ..." if len(st.failures) > 4 else "")
        print(f"| {name} | {'higher' if spec.higher_is_better else 'lower'} | "
              f"{statistics.median(st.ratios):.2f} | {min(st.ratios):.2f} | {max(st.ratios):.2f} | "
              f"{statistics.median(st.seconds):.3f} | {peak} | {extra} | {fails or '-'} |")
    print("\n'+ over start' is a lower bound (memory freed by an earlier proxy is reused without a rise); "
          "'not ok' lists recepie_id:status.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=20, help="benchmark cells (default 20)")
    ap.add_argument("--proxies", default="", help="comma-separated proxy names (default: every registered one)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="timed floor passes per cell (median)")
    ap.add_argument("--share-cache", action="store_true", help="keep ctx.cache across a cell's proxies")
    ap.add_argument("--tiny", action="store_true", help="the TINY test config instead of the default")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.proxies:
        try:
            names = parse_proxy_list(args.proxies)
        except KeyError as exc:
            raise SystemExit(str(exc)) from None
    else:
        names = [s.name for s in list_proxies() if not s.name.startswith("_")]
    config = TINY if args.tiny else ScoringConfig()
    run(pick_cells(args.cells), names, config, args.repeats, args.share_cache)


if __name__ == "__main__":
    main()
