"""``zeronas search``: search a space for the cells a proxy (or a predictor) ranks best."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from zeronas.cli._common import CORPUS_HELP, err, fail, out, scoring_config


def search_cmd(space: str = typer.Option("nb-nlp", "--space",
                                         help="Search space: nb-nlp, enas, darts, or one a plugin registers."),
               proxy: Optional[str] = typer.Option(None, "--proxy", "-p",
                                                   help="A proxy, a rank combination a+b or a gated spec rank!gate "
                                                        "(default: the recommended method, the search module's "
                                                        "DEFAULT_PROXY; prune: ntk_cond+linear_regions)."),
               guard: Optional[str] = typer.Option(None, "--guard", "-g",
                                                   help="Comma-separated guard proxies: a cell whose guard score "
                                                        "fails (NaN, inf, ...) ranks last, e.g. zen,synflow (cells "
                                                        "that overflow untrained mostly diverge in training)."),
               predictor: Optional[Path] = typer.Option(None, "--predictor",
                                                        help="Rank by a model of `zeronas predict fit` instead of "
                                                             "a proxy (random and evolution)."),
               algorithm: str = typer.Option("evolution", "--algorithm", "-a", help="random, evolution or prune."),
               budget: Optional[int] = typer.Option(None, "--budget", help="Distinct cells to evaluate (default "
                                                                           "200; prune: trial networks, no limit)."),
               time_budget: Optional[float] = typer.Option(None, "--time-budget",
                                                           help="Seconds; checked between rounds."),
               top: int = typer.Option(5, "--top", help="How many of the best cells to print."),
               seed: int = typer.Option(0, "--seed", help="Seed of the search's random choices (the scoring seed "
                                                          "is the scoring config's)."),
               store: str = typer.Option("sqlite:///zeronas.db", "--store", help="Results store URL (shared "
                                                                                 "with evaluate)."),
               benchmark: Optional[bool] = typer.Option(None, "--benchmark/--no-benchmark",
                                                        help="Candidates are the bundled benchmark's cells "
                                                             "(default for nb-nlp; nb-nlp only)."),
               workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
               timeout: Optional[float] = typer.Option(None, "--timeout", help="Per-cell limit in seconds."),
               config_file: Optional[Path] = typer.Option(None, "--scoring-config",
                                                          help="JSON file of ScoringConfig fields (default: the "
                                                               "default config; prune: a small one)."),
               corpus: Optional[str] = typer.Option(None, "--corpus", help=CORPUS_HELP),
               as_json: bool = typer.Option(False, "--json", help="Print a JSON list of the top cells (progress "
                                                                  "still goes to stderr)."),
               quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr.")) -> None:
    """Search a space for the cells the proxy ranks best; print the top cells (with their trained perplexity
    when they are benchmark cells). Scores go to the store: a re-run (same seed) resumes, scoring nothing twice."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from zeronas.run.executor import ExecutorError
    from zeronas.search import SearchError, ground_truth_for, run_search
    from zeronas.core.config import ConfigError
    from zeronas.store import StoreError

    # without a file or corpus, run_search chooses the default config for the algorithm (pruning: a small one)
    config = None
    if config_file is not None or corpus is not None:
        from zeronas.search.prune import PRUNE_CONFIG

        config = scoring_config(None, None, None, None, config_file, corpus,
                                 default=PRUNE_CONFIG if algorithm == "prune" else None)
    bar = Progress(TextColumn(f"[bold]{algorithm}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                   TextColumn("{task.fields[best]}"), TimeElapsedColumn(), console=err, disable=quiet,
                   transient=True)
    task = bar.add_task("search", total=budget, best="")

    def progress(done: int, total: Optional[int], best) -> None:
        shown = "" if best is None or best.fitness == float("-inf") else f"best {best.fitness:.6g}"
        bar.update(task, completed=done, total=total, best=shown)

    from zeronas.proxies.registry import parse_proxy_list

    try:
        guards = parse_proxy_list(guard) if guard is not None else []
    except KeyError as exc:
        raise fail(f"--guard: {str(exc).strip(chr(34))}")
    if top < 0:
        raise fail(f"--top must be 0 or more, got {top}")
    if proxy is not None and not proxy.strip():
        raise fail("--proxy: no proxy named")
    try:
        with bar:
            result = run_search(space=space, proxy=proxy, guards=guards, algorithm=algorithm, budget=budget,
                                time_budget=time_budget, seed=seed, store=store, benchmark=benchmark,
                                workers=workers, timeout_s=timeout, config=config, progress=progress,
                                predictor=predictor)
    except (SearchError, ExecutorError, StoreError, ConfigError, KeyError) as exc:
        raise fail(str(exc).strip('"'))
    rows = result.entries(top, ground_truth_for(result))
    if as_json:
        print(json.dumps(rows))
        return
    s = result.summary()
    table = Table(title=f"{algorithm} search of {space}{' (benchmark cells)' if result.benchmark else ''}, "
                        f"proxy {result.proxy}: top {len(rows)} of {s['evaluated']}")
    for col in ("rank", "canonical id", "scores", "test ppl"):
        table.add_column(col)
    for row in rows:
        scores = ", ".join(f"{m} {v['value']:.6g}" if v["status"] == "ok" else f"{m} {v['status']}"
                           for m, v in row["scores"].items())
        if not row.get("in_benchmark"):
            ppl = "-"
        elif row["diverged"]:
            ppl = "diverged"
        else:
            ppl = f"{row['test_ppl']:.1f}" if row["test_ppl"] is not None else f"inf (loss {row['test_loss']:.3g})"
        table.add_row(str(row["rank"]), row["canonical_id"], scores, ppl)
    out.print(table)
    for row in rows:
        out.print(f"#{row['rank']} {row['canonical_id']}: {json.dumps(row['recipe'], sort_keys=True)}",
                  highlight=False, markup=False)
    if algorithm == "prune":
        note = (f"pruned a supernet of {s['supernet_candidates']} candidates in {len(result.info['rounds'])} "
                f"rounds of {s['trials']} trial networks in all")
    else:
        note = f"evaluated {s['evaluated']} cells"
    note += (f" ({s['computed']} scored now, {s['reused']} from the store) in {s['seconds']:.0f} s; "
             f"config {s['config_hash']}")
    if result.benchmark:
        from zeronas.bench.nbnlp import Benchmark

        bench = Benchmark.nbnlp()
        note += f"; benchmark best {bench.best().test_ppl:.1f}, median {bench.median_ppl():.1f} test ppl"
    out.print(note, highlight=False)
