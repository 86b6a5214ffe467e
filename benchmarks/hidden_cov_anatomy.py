"""Why do the LSTM and GRU sit in the middle of ``hidden_cov``'s ranking? Collect what the score is made of.

``collect`` runs layer 1 of each cell's seeded untrained model (default scoring config) and writes one JSON line
per cell (resumable: cells already in the file are skipped):

- ``spec_real`` / ``spec_distinct``: the eigenvalues of the layer-1 unit correlation matrix that ``hidden_cov``
  scores (float32, ascending), on the config's probe batch of real text and on a probe of the same shape whose
  350 tokens are all different (a seeded permutation of the vocabulary);
- ``rms``: the RMS of the layer-1 output on the real probe (the state's scale);
- ``history``: how much of the state comes from the past, ``||h_t - h_t(h_{t-1}=0)|| / ||h_t||`` over the probe
  (the same step from a zero carried state, all states reset);
- ``lag1``: the mean cosine similarity of consecutive standardised states of a sequence;
- ``sig_sat`` / ``tanh_sat``: the share of sigmoid outputs outside (0.05, 0.95) and of tanh outputs beyond 0.95.

The references (``lstm``, ``gru``, ``rnn`` and NAS-Bench-NLP's recipes 1000000-1000002) come first, then every
development-split architecture in the seeded order of ``zeronas evaluate --sample-seed 0``.

    python benchmarks/hidden_cov_anatomy.py collect OUT.jsonl [--limit N] [--threads 1]
        [--corpus wikitext-2 --curves wt2_dev_curves.csv.gz]   # the WikiText-2 logs' cells, WikiText-2 probe

``report`` reads that file (and the committed store, for the other proxies) and writes the figures and tables of
docs/findings.md, section "Why the LSTMs sit in the middle":

    python benchmarks/hidden_cov_anatomy.py report OUT.jsonl -o docs/results/hidden-cov-anatomy
        [--wt2 WT2.jsonl --curves wt2_dev_curves.csv.gz]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from zeronas.bench.nbnlp import Benchmark, load_recipe_list
from zeronas.cells.named import get_named_cell
from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.proxies import ScoringConfig
from zeronas.proxies.context import ScoringContext

K = 1e-5  # hidden_cov's constant
NB_REFERENCES = {1000000: "nb_rnn", 1000001: "nb_lstm", 1000002: "nb_gru"}


def reference_cells() -> list[tuple[str, Cell]]:
    """zeronas's reference cells and NAS-Bench-NLP's three example recipes (ids 1000000-1000002)."""
    cells = [(name, get_named_cell(name)) for name in ("lstm", "gru", "rnn")]
    for entry in load_recipe_list():
        if entry["recepie_id"] in NB_REFERENCES:
            cells.append((NB_REFERENCES[entry["recepie_id"]], parse_recipe(entry["recipe"])))
    return cells


def all_cells(curves: Path | None = None) -> Iterator[tuple[str, Cell]]:
    """The references, then the development split (seeded order) or, with ``curves``, the distinct cells of a
    NAS-Bench-NLP curve table (``recipe`` column; the WikiText-2 logs), by canonical id."""
    yield from reference_cells()
    if curves is None:
        bench = Benchmark.nbnlp()
        for arch in bench.sample(len(bench), 0):
            yield arch.canonical_id, arch.cell
        return
    seen = set()
    with gzip.open(curves, "rt", newline="") as fh:
        for line in csv.DictReader(fh):
            cell = parse_recipe(line["recipe"])
            if cell.canonical_id not in seen:
                seen.add(cell.canonical_id)
                yield cell.canonical_id, cell


def distinct_probe(config: ScoringConfig, vocab_size: int) -> torch.Tensor:
    """``(seq_len, batch)`` token ids, all different: a seeded permutation of the vocabulary."""
    gen = torch.Generator().manual_seed(config.seed)
    n = config.seq_len * config.batch_size
    return torch.randperm(vocab_size, generator=gen)[:n].reshape(config.seq_len, config.batch_size)


def entering_states(out: torch.Tensor) -> torch.Tensor:
    """``hidden_cov``'s observations: the zero state, then the outputs of steps 0..T-2."""
    return torch.cat([torch.zeros_like(out[:1]), out[:-1]], 0)


def spectrum(states: torch.Tensor) -> list[float] | None:
    """Eigenvalues (ascending) of the unit correlation matrix, as ``hidden_cov`` computes it; None if undefined."""
    T, B, H = states.shape
    corr = torch.corrcoef(states.permute(2, 1, 0).reshape(H, B * T).double())
    if not bool(torch.isfinite(corr).all()):
        return None
    return [float(np.float32(v)) for v in torch.linalg.eigvalsh(corr)]


class Saturation:
    """An activation observer counting saturated sigmoid and tanh outputs."""

    def __init__(self) -> None:
        self.counts = {"activation_sigm": [0, 0], "activation_tanh": [0, 0]}

    def __call__(self, node: str, op: str, pre: torch.Tensor, post: torch.Tensor) -> None:
        if op == "activation_sigm":
            hit = (post < 0.05) | (post > 0.95)
        elif op == "activation_tanh":
            hit = post.abs() > 0.95
        else:
            return
        self.counts[op][0] += int(hit.sum())
        self.counts[op][1] += post.numel()

    def share(self, op: str) -> float | None:
        hit, total = self.counts[op]
        return hit / total if total else None


def history_share(layer: torch.nn.Module, emb: torch.Tensor, out: torch.Tensor) -> float:
    """``||h_t - h_t(h_{t-1}=0)|| / ||h_t||``: each step run again from a zero carried state (one batched step)."""
    T, B, E = emb.shape
    fresh, _ = layer(emb.reshape(1, T * B, E), None, None)
    fresh = fresh.reshape(T, B, -1)
    return float((out - fresh).double().norm() / out.double().norm())


def lag1(out: torch.Tensor) -> float:
    x = out.double()
    z = (x - x.mean((0, 1))) / x.std((0, 1))
    a, b = z[1:].flatten(0, 1), z[:-1].flatten(0, 1)
    return float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean())


def measure(cell: Cell, config: ScoringConfig) -> dict:
    ctx = ScoringContext(cell, config)
    model = ctx.model(fast_backward=False)
    layer = model.layers[0]
    row: dict = {}
    with torch.no_grad():
        emb = model.embed(ctx.inputs)
        sat = Saturation()
        out, _ = layer(emb, None, sat)
        row["spec_real"] = spectrum(entering_states(out))
        row["rms"] = float(out.double().pow(2).mean().sqrt())
        row["history"] = history_share(layer, emb, out)
        row["lag1"] = lag1(out)
        row["sig_sat"], row["tanh_sat"] = sat.share("activation_sigm"), sat.share("activation_tanh")
        other, _ = layer(model.embed(distinct_probe(config, ctx.vocab_size).to(ctx.device)), None, None)
        row["spec_distinct"] = spectrum(entering_states(other))
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def collect(path: Path, limit: int | None, config: ScoringConfig, curves: Path | None = None) -> None:
    done = set()
    if path.exists():
        done = {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}
    with path.open("a") as fh:
        for i, (cid, cell) in enumerate(all_cells(curves)):
            if limit is not None and i >= limit:
                break
            if cid in done:
                continue
            try:
                row = {"id": cid, **measure(cell, config)}
            except (RuntimeError, ValueError) as exc:  # recorded, never replaced by a made-up number
                row = {"id": cid, "error": f"{type(exc).__name__}: {exc}"}
            fh.write(json.dumps(row) + "\n")
            fh.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("out", type=Path)
    c.add_argument("--limit", type=int, default=None)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--corpus", default="ptb", help="probe corpus (ptb or wikitext-2)")
    c.add_argument("--curves", type=Path, default=None,
                   help="a curve table (csv.gz with a recipe column): its cells instead of the development split")
    r = sub.add_parser("report")
    r.add_argument("data", type=Path)
    r.add_argument("-o", "--out", type=Path, required=True)
    r.add_argument("--store", default="docs/results/nbnlp-dev-scores.db")
    r.add_argument("--wt2", type=Path, default=None, help="collect's output on the WikiText-2 logs' cells")
    r.add_argument("--curves", type=Path, default=None, help="the WikiText-2 curve table (wt2_dev_curves.csv.gz)")
    args = ap.parse_args(argv)
    if args.command == "collect":
        torch.set_num_threads(args.threads)
        collect(args.out, args.limit, ScoringConfig().with_corpus(args.corpus), args.curves)
        return 0
    from hidden_cov_anatomy_report import report  # noqa: E402 - the report's plotting stays out of collect

    report(args.data, args.out, args.store, args.wt2, args.curves)
    return 0


if __name__ == "__main__":
    sys.exit(main())
