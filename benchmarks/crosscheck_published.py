"""Cross-check our proxies against the scores Serianni & Kalita (ACL 2023) published for NAS-Bench-NLP cells.

For ``--n`` development-split cells with published scores (a seeded sample of distinct ``arch_sha1``; when a sha1
has several logs, the first row is used: their scores differ only by run, since every log's rebuilt model was
scored with seed 0), we compute each proxy and report Kendall's tau (scipy.stats.kendalltau, tau-b)

- between our score and the published column it reimplements (``hidden_cov`` <-> "Layer 1 Hidden Covariance",
  ``naswot`` <-> "Activation Distance", ``synflow`` <-> "Synaptic Saliency"),
- between each score (ours and theirs) and the test loss: the published row's own log (``loss``, the final test
  loss of that run) and the benchmark's mean test loss over every run of the cell.

Raw taus are printed (no sign flip). Lower loss is better, so a proxy that works has tau < 0 against the loss when
it is registered higher-is-better.

Their setting was eval batch 50, bptt 70, the PTB test split, batch index 0, seed 0. ``--match-paper`` sets
``batch_size=50, seq_len=70, probe_split='test'`` and also uses their exact batch (the test split batchified into
50 columns, first 70-step window) instead of our seeded random windows; the initial weights still differ (ours come
from our seeded generator, theirs from torch's global RNG at seed 0 in their model's construction order).
``--config key=value,...`` overrides other :class:`ScoringConfig` fields.

Results go to a JSON file (``--out``) after every cell; rerunning with the same file resumes, computing only what
is missing (a larger ``--n`` extends the sample, another proxy list adds columns; a file written under another
configuration or sample seed is refused unless ``--fresh``).

    python benchmarks/crosscheck_published.py [--n 200] [--seed 0] [--proxies hidden_cov,naswot,synflow]
        [--match-paper] [--config batch_size=50,seq_len=70] [--out tmp/crosscheck.json] [--fresh] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import fields
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau

from zeronas.bench.nbnlp import Benchmark, load_recipe_list
from zeronas.bench.published import published_scores
from zeronas.cells.recipe import parse_recipe
from zeronas.proxies import ScoringConfig, get_proxy, parse_proxy_list
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.runner import run_proxy

# our proxy -> the published column that it reimplements
PUBLISHED: dict[str, str] = {
    "hidden_cov": "Layer 1 Hidden Covariance",
    "hidden_cov_l2": "Layer 2 Hidden Covariance",
    "hidden_cov_l3": "Layer 3 Hidden Covariance",
    "naswot": "Activation Distance",
    "synflow": "Synaptic Saliency",
}
DEFAULT_PROXIES = "hidden_cov,naswot,synflow"
PAPER = {"batch_size": 50, "seq_len": 70, "probe_split": "test"}


class PaperBatchContext(ScoringContext):
    """Serianni & Kalita's probe: the split batchified into ``batch_size`` columns, the first ``seq_len`` steps
    (AWD-LSTM ``get_batch(source, 0, bptt)``), instead of seeded random windows."""

    @cached_property
    def _probe(self) -> tuple[torch.Tensor, torch.Tensor]:
        from zeronas.data.corpus import batchify, get_batch

        source = batchify(self.corpus.split(self.config.probe_split), self.config.batch_size)
        inputs, targets = get_batch(source, 0, self.config.seq_len)
        return inputs.to(self.device), targets.to(self.device)


def parse_overrides(text: str) -> dict[str, Any]:
    """``"batch_size=50,probe_split=test"`` -> typed values, checked against the ScoringConfig fields."""
    types = {f.name: f.type for f in fields(ScoringConfig)}
    defaults = ScoringConfig().to_dict()
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in types:
            raise SystemExit(f"--config: expected key=value with a ScoringConfig field, got {item!r} "
                             f"(fields: {', '.join(types)})")
        kind = type(defaults[key])
        try:
            out[key] = kind(value.strip())
        except ValueError:
            raise SystemExit(f"--config: {key} must be {kind.__name__}, got {value!r}") from None
    return out


def sample_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """One published row per distinct arch_sha1 (the first met, in file order), shuffled with
    ``random.Random(seed)``; the first ``n``. A larger ``n`` extends a smaller one's sample (so a run resumes)."""
    first: dict[str, dict[str, Any]] = {}
    for row in published_scores():
        first.setdefault(row["arch_sha1"], row)
    rows = list(first.values())
    if not 1 <= n <= len(rows):
        raise SystemExit(f"--n must be between 1 and {len(rows)} (distinct cells with published scores)")
    random.Random(seed).shuffle(rows)
    return rows[:n]


def load_state(path: Path, meta: dict[str, Any], fresh: bool) -> dict[str, Any]:
    if path.exists() and not fresh:
        state = json.loads(path.read_text())
        if state.get("meta") != meta:
            raise SystemExit(f"{path} was written for another configuration or sample seed:\n"
                             f"  file: {json.dumps(state.get('meta'), sort_keys=True)}\n"
                             f"  now:  {json.dumps(meta, sort_keys=True)}\n"
                             f"use another --out, or --fresh to overwrite it")
        return state
    return {"meta": meta, "cells": {}}


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _tau(x: list[float | None], y: list[float | None]) -> tuple[float, int]:
    pairs = [(a, b) for a, b in zip(x, y)
             if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 3:
        return float("nan"), len(pairs)
    tau = kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return float(tau), len(pairs)


def report(state: dict[str, Any], names: list[str]) -> None:
    cells = list(state["cells"].values())
    meta = state["meta"]
    print(f"\n## Cross-check against Serianni & Kalita's published scores ({len(cells)} cells, sample seed "
          f"{meta['seed']}, config {meta['config_hash']}{', their probe batch' if meta['paper_batch'] else ''})\n")
    cfg = meta["config"]
    print(f"Probe: {cfg['batch_size']} x {cfg['seq_len']} tokens of the PTB {cfg['probe_split']} split; "
          f"emb {cfg['emb_size']}, hidden {cfg['hidden_size']}, {cfg['n_layers']} layers, seed {cfg['seed']}. "
          f"Kendall tau-b; n = cells where both values are finite; direction = our proxy's (for a published column, "
          f"its counterpart's); lower loss is better.\n")
    log_loss = [c["loss"] for c in cells]
    mean_loss = [c["mean_test_loss"] for c in cells]
    print("| score | direction | tau vs published | n | tau vs log test loss | tau vs mean test loss | n | "
          "not ok |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    columns_done: set[str] = set()
    for name in names:
        ours = [c["scores"][name]["value"] for c in cells]
        bad = [f"{c['recepie_id']}:{c['scores'][name]['status']}" for c in cells
               if c["scores"][name]["status"] != "ok"]
        direction = "higher" if get_proxy(name).higher_is_better else "lower"
        column = PUBLISHED.get(name)
        if column:
            theirs = [c["published"][column] for c in cells]
            t_pub, n_pub = _tau(ours, theirs)
            pub_text, n_text = f"{t_pub:+.3f}", str(n_pub)
        else:
            pub_text, n_text = "-", "-"
        t_log, _ = _tau(ours, log_loss)
        t_mean, n_mean = _tau(ours, mean_loss)
        fails = ", ".join(bad[:3]) + (f" (+{len(bad) - 3})" if len(bad) > 3 else "")
        print(f"| {name} (ours) | {direction} | {pub_text} | {n_text} | {t_log:+.3f} | {t_mean:+.3f} | {n_mean} | "
              f"{fails or '-'} |")
        if column and column not in columns_done:
            columns_done.add(column)
            theirs = [c["published"][column] for c in cells]
            t_log, _ = _tau(theirs, log_loss)
            t_mean, n_mean = _tau(theirs, mean_loss)
            print(f"| {column} (published) | {direction} | - | - | {t_log:+.3f} | {t_mean:+.3f} | {n_mean} | - |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="cells (distinct arch_sha1) to score (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the cell sample (default 0)")
    ap.add_argument("--proxies", default=DEFAULT_PROXIES, help=f"comma-separated (default {DEFAULT_PROXIES})")
    ap.add_argument("--match-paper", action="store_true",
                    help="batch_size=50, seq_len=70, probe_split=test, and their batch (first window)")
    ap.add_argument("--config", default="", help="ScoringConfig overrides, e.g. batch_size=50,seq_len=70")
    ap.add_argument("--out", default="tmp/crosscheck_published.json",
                    help="JSON results file, resumed if present (default tmp/crosscheck_published.json; the "
                         "repository ignores tmp/)")
    ap.add_argument("--fresh", action="store_true", help="overwrite --out instead of resuming")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        names = parse_proxy_list(args.proxies)
    except KeyError as exc:
        raise SystemExit(str(exc)) from None
    overrides = {**(PAPER if args.match_paper else {}), **parse_overrides(args.config)}
    config = ScoringConfig().with_(**overrides)
    rows = sample_rows(args.n, args.seed)
    meta = {"seed": args.seed, "config": config.to_dict(),
            "config_hash": config.config_hash(), "paper_batch": bool(args.match_paper)}
    out = Path(args.out)
    state = load_state(out, meta, args.fresh)

    from zeronas.data.corpus import load_ptb

    corpus = load_ptb()
    recipes = {r["recepie_id"]: r["recipe"] for r in load_recipe_list()}
    bench = Benchmark.nbnlp()
    context_cls = PaperBatchContext if args.match_paper else ScoringContext
    start = time.perf_counter()
    for i, row in enumerate(rows):
        sha1 = row["arch_sha1"]
        entry = state["cells"].get(sha1)
        if entry is None:
            arch = bench.get(sha1) if sha1 in bench else None
            entry = {
                "recepie_id": row["recepie_id"], "log_name": row["log name"], "loss": row["loss"],
                "mean_test_loss": arch.mean_test_loss if arch is not None else None,
                "published": {col: row[col] for col in sorted(set(PUBLISHED.values()))},
                "scores": {},
            }
            state["cells"][sha1] = entry
        missing = [n for n in names if n not in entry["scores"]]
        if not missing:
            continue
        cell = parse_recipe(recipes[row["recepie_id"]])
        ctx = context_cls(cell, config, corpus)
        with torch.random.fork_rng(devices=[]):
            for name in missing:
                torch.manual_seed(config.seed)
                entry["scores"][name] = run_proxy(name, ctx).to_dict()
        save_state(out, state)
        took = ", ".join(f"{n} {entry['scores'][n]['seconds']:.2f}s" for n in missing)
        print(f"[{i + 1}/{len(rows)}] {row['recepie_id']} (k={cell.hidden_tuple_size}): {took}; "
              f"{time.perf_counter() - start:.0f}s so far", file=sys.stderr, flush=True)
    save_state(out, state)
    # report over the sampled cells only, in sample order
    state_view = {"meta": state["meta"], "cells": {r["arch_sha1"]: state["cells"][r["arch_sha1"]] for r in rows}}
    report(state_view, names)
    print(f"\nResults: {out}")


if __name__ == "__main__":
    main()
