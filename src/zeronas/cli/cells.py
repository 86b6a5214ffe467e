"""``zeronas cell``, ``bench``, ``proxies`` and ``score``: look at cells, the ground truth and the proxies, and
score one cell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from zeronas.cells.recipe import RecipeError, load_cell
from zeronas.bench.resolve import resolve_cell
from zeronas.cli._common import fail, out, print_scores, proxies_progress, proxy_specs, scoring_config
from zeronas.cli._options import BatchSize, Corpus, Device, Quiet, ScoringConfigFile, ScoringSeed, SeqLen
from zeronas.recommended import RECOMMENDED_METHOD

cell_app = typer.Typer(help="Read, check and describe cells.", no_args_is_help=True)
bench_app = typer.Typer(help="The bundled NAS-Bench-NLP ground truth.", no_args_is_help=True)


@cell_app.command("validate")
def cell_validate(file: Path = typer.Argument(..., help="Recipe JSON file.")) -> None:
    """Exit 0 if FILE is a valid cell, 2 with the reason otherwise."""
    try:
        cell = load_cell(file)
    except RecipeError as exc:
        raise fail(str(exc))
    out.print(f"{file}: valid cell, hidden tuple size {cell.hidden_tuple_size}, {len(cell)} nodes, "
              f"canonical id {cell.canonical_id}", highlight=False)


@cell_app.command("show")
def cell_show(spec: str = typer.Argument(..., help="Recipe file, rnn|lstm|gru, or a benchmark id."),
              as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Print a cell's ids, hidden tuple size, node and op counts and parameter count."""
    from zeronas.models.lm import count_parameters

    try:
        cell = resolve_cell(spec)
    except RecipeError as exc:
        raise fail(str(exc))
    info = {
        "canonical_id": cell.canonical_id,
        "arch_sha1": cell.arch_sha1,
        "hidden_tuple_size": cell.hidden_tuple_size,
        "nodes": len(cell),
        "op_counts": cell.op_counts(),
        "parameters": count_parameters(cell),
        "recipe": cell.recipe,
    }
    if as_json:
        print(json.dumps(info))
        return
    table = Table(title=f"cell {spec}", show_header=False)
    for key in ("canonical_id", "arch_sha1", "hidden_tuple_size", "nodes"):
        table.add_row(key, str(info[key]))
    table.add_row("op counts", ", ".join(f"{k} {v}" for k, v in info["op_counts"].items()))
    table.add_row("parameters", f"{info['parameters']:,} (vocabulary 10,000, NAS-Bench-NLP sizes)")
    out.print(table)


@bench_app.command("describe")
def bench_describe(ground_truth: Optional[Path] = typer.Option(None, "--ground-truth",
                                                               help="A user CSV instead of the bundled data."),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Summarise the ground truth: architectures, runs, divergence, best and median perplexity."""
    from zeronas.bench.nbnlp import Benchmark, BenchmarkError, median_ppl

    try:
        bench = Benchmark.from_csv(ground_truth) if ground_truth else Benchmark.nbnlp()
    except BenchmarkError as exc:
        raise fail(str(exc))
    archs = list(bench)
    finite = sorted(a.test_ppl for a in archs if a.test_ppl is not None)
    info = {
        "ground_truth": str(ground_truth) if ground_truth else "nb-nlp (bundled development split)",
        "architectures": len(archs),
        "runs": sum(a.n_runs for a in archs),
        "recipes": len({s for a in archs for s in a.arch_sha1s}),
        "diverged_architectures": sum(a.diverged for a in archs),
        "best_test_ppl": finite[0] if finite else None,
        "median_test_ppl": median_ppl(archs),
    }
    if as_json:
        print(json.dumps(info))
        return
    table = Table(title="ground truth", show_header=False)
    for key, value in info.items():
        table.add_row(key.replace("_", " "), f"{value:.1f}" if isinstance(value, float) else str(value))
    out.print(table)


def proxies_cmd(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List the registered proxies: name, revision, direction, whether they need data, the model capabilities
    they need beyond the model contract (a model without them gets ``unsupported``), the gate threshold of a
    trainability check (used as ``rank!gate``), and what they measure."""
    from zeronas.proxies import list_proxies

    specs = [s for s in list_proxies() if not s.name.startswith("_")]
    if as_json:
        print(json.dumps([s.as_dict() for s in specs]))
        return
    table = Table(title=f"{len(specs)} proxies")
    for col in ("name", "rev", "better", "data", "needs", "gate", "description"):
        table.add_column(col)
    for s in specs:
        gate = "" if s.gate is None else f"{'>=' if s.higher_is_better else '<='} {s.gate:g}"
        table.add_row(s.name, str(s.revision), "higher" if s.higher_is_better else "lower",
                      "yes" if s.needs_data else "no", ",".join(sorted(s.requires)), gate, s.description)
    out.print(table)


def score_cmd(spec: str = typer.Argument(..., help="Recipe file, rnn|lstm|gru, or a benchmark id."),
              proxies: str = typer.Option(RECOMMENDED_METHOD, "--proxies", "-p",
                                          help="Comma-separated proxies, rank combinations a+b and gated specs "
                                               "rank!gate; see `zeronas proxies`. Default: the recommended method, "
                                               "its two proxies and whether the cell passes the trainability "
                                               "check."),
              seed: ScoringSeed = None,
              device: Device = None, batch_size: BatchSize = None, seq_len: SeqLen = None,
              config_file: ScoringConfigFile = None, corpus: Corpus = None,
              as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
              quiet: Quiet = False) -> None:
    """Score one cell with training-free proxies; each score comes with its status and seconds."""
    from zeronas.proxies import score_cell

    try:
        cell = resolve_cell(spec)
    except (RecipeError, KeyError) as exc:
        raise fail(str(exc).strip('"'))
    names = proxy_specs(proxies)
    config = scoring_config(seed, device, batch_size, seq_len, config_file, corpus=corpus)
    from zeronas.core.config import ConfigError
    from zeronas.proxies.runner import ProxyReturnError

    try:
        with proxies_progress("scoring", quiet) as progress:
            results = score_cell(cell, names, config, progress=progress)
    except (ConfigError, ProxyReturnError) as exc:
        raise fail(str(exc))
    print_scores(results, config, as_json, spec, {"canonical_id": cell.canonical_id, "arch_sha1": cell.arch_sha1})
