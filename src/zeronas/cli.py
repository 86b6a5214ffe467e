"""The ``zeronas`` command line. Each command group is small; the work is done by the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from zeronas import __version__
from zeronas.cells.recipe import RecipeError, load_cell
from zeronas.cells.resolve import resolve_cell

app = typer.Typer(help="Training-free neural architecture search for recurrent networks.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
cell_app = typer.Typer(help="Read, check and describe cells.", no_args_is_help=True)
bench_app = typer.Typer(help="The bundled NAS-Bench-NLP ground truth.", no_args_is_help=True)
app.add_typer(cell_app, name="cell")
app.add_typer(bench_app, name="bench")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2
CORPUS_HELP = ("Probe corpus: ptb (bundled, default), wikitext-2 (bundled valid/test; probes valid), or a folder "
               "with train.txt/valid.txt/test.txt or one text file (every split). Stored scores name a user "
               "corpus by its sha256, not its path.")


def fail(message: str) -> "typer.Exit":
    """Print ``error: MESSAGE`` on stderr and return the exit (code 2) to raise. The message is printed as plain
    text: it may hold user input or exception text, whose brackets are not markup."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code=EXIT_BAD_INPUT)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit."),
          plugins: Optional[List[str]] = typer.Option(
              None, "--plugin", metavar="MODULE",
              help="Import MODULE (or module:function, called) first: a package of your own that registers "
                   "proxies, search spaces or model adapters. Repeatable or comma-separated; every worker "
                   "imports it too, so it must be installed or on PYTHONPATH. Plugins installed under the entry "
                   "point group zeronas.plugins are loaded without it.")) -> None:
    if version:
        out.print(f"zeronas {__version__}")
        raise typer.Exit()
    from zeronas.plugins import PluginError, load_plugins

    try:
        load_plugins(plugins or ())
    except PluginError as exc:
        raise fail(str(exc))


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
    from zeronas.bench.nbnlp import Benchmark, BenchmarkError

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
        "median_test_ppl": finite[len(finite) // 2] if finite else None,
    }
    if as_json:
        print(json.dumps(info))
        return
    table = Table(title="ground truth", show_header=False)
    for key, value in info.items():
        table.add_row(key.replace("_", " "), f"{value:.1f}" if isinstance(value, float) else str(value))
    out.print(table)


@app.command("proxies")
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


@app.command("score")
def score_cmd(spec: str = typer.Argument(..., help="Recipe file, rnn|lstm|gru, or a benchmark id."),
              proxies: str = typer.Option("zen,ntk_cond,ntk_trace,gradscore", "--proxies", "-p",
                                          help="Comma-separated proxy names (see `zeronas proxies`)."),
              seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the weights, the probe batch and the "
                                                                      "noise (default 0)."),
              device: Optional[str] = typer.Option(None, "--device", help="cpu (default), cuda, cuda:1, ..."),
              batch_size: Optional[int] = typer.Option(None, "--batch-size"),
              seq_len: Optional[int] = typer.Option(None, "--seq-len"),
              corpus: Optional[str] = typer.Option(None, "--corpus", help=CORPUS_HELP),
              as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Score one cell with training-free proxies; each score comes with its status and seconds."""
    from zeronas.proxies import parse_proxy_list, score_cell

    try:
        cell = resolve_cell(spec)
        names = parse_proxy_list(proxies)
    except (RecipeError, KeyError) as exc:
        raise fail(str(exc).strip('"'))
    config = _scoring_config(seed, device, batch_size, seq_len, corpus=corpus)
    results = score_cell(cell, names, config)
    print_scores(results, config, as_json, spec, {"canonical_id": cell.canonical_id, "arch_sha1": cell.arch_sha1})


def print_scores(results, config, as_json: bool, title: str, fields: dict) -> None:
    """The scores of one cell or model: one JSON object (``fields``, the config, the scores) or a table."""
    if as_json:
        print(json.dumps({**fields, "config": config.to_dict(), "config_hash": config.config_hash(),
                          "scores": {n: s.to_dict() for n, s in results.items()}}))
        return
    table = Table(title=f"{title} (config {config.config_hash()}, seed {config.seed})")
    for col in ("proxy", "value", "status", "seconds", "message"):
        table.add_column(col)
    for n, s in results.items():
        table.add_row(n, f"{s.value:.6g}" if s.value is not None else "-", s.status, f"{s.seconds:.2f}", s.message)
    out.print(table)


def _scoring_config(seed: Optional[int], device: Optional[str], batch_size: Optional[int], seq_len: Optional[int],
                    config_file: Optional[Path] = None, corpus: Optional[str] = None, default=None):
    """The default scoring config (or ``default``), or a JSON file's, with the command-line options that were
    given on top (an option left out never overrides the file). ``--corpus`` keeps the file's probe_split if it
    names one, else takes the corpus's default (valid for wikitext-2). Checked here, device and corpus included:
    a bad config or corpus stops the command before anything is scored or stored."""
    from zeronas.data.corpus import CorpusError
    from zeronas.proxies import ScoringConfig
    from zeronas.proxies.config import ConfigError
    from zeronas.proxies.device import check_config

    base = default or ScoringConfig()
    file_split = None
    if config_file is not None:
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
            base = ScoringConfig.from_dict(data)
        except (OSError, ValueError, TypeError, RecursionError) as exc:
            raise fail(f"{config_file}: not a scoring config: {exc}")
        file_split = data.get("probe_split")
    changes = {k: v for k, v in {"seed": seed, "device": device, "batch_size": batch_size,
                                 "seq_len": seq_len}.items() if v is not None}
    try:
        config = base.with_(**changes)
        if corpus is not None:
            config = config.with_corpus(corpus, probe_split=file_split)
        return check_config(config)
    except CorpusError as exc:
        raise fail(f"--corpus: {exc}")
    except ConfigError as exc:
        raise fail(f"{config_file}: {exc}" if config_file is not None else str(exc))


@app.command("evaluate")
def evaluate_cmd(ground_truth: str = typer.Option("nb-nlp", "--ground-truth",
                                                  help="nb-nlp (bundled) or a CSV: recipe,test_loss[,arch_sha1,replica]"),
                 proxies: Optional[str] = typer.Option(None, "--proxies", "-p",
                                                       help="Comma-separated proxies, rank combinations a+b and "
                                                            "gated specs rank!gate (default: every registered "
                                                            "proxy and the recommended method)."),
                 limit: Optional[int] = typer.Option(None, "--limit", help="A seeded random sample of N cells."),
                 sample_seed: int = typer.Option(0, "--sample-seed"),
                 store: str = typer.Option("sqlite:///zeronas.db", "--store", help="Results store URL."),
                 workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
                 timeout: Optional[float] = typer.Option(600.0, "--timeout",
                                                         help="Per-cell limit in seconds; expiry is stored as "
                                                              "status timeout."),
                 executor: str = typer.Option("local", "--executor", help="local or ray."),
                 address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address."),
                 seed: Optional[int] = typer.Option(None, "--seed", help="Scoring seed (weights, probe batch, "
                                                                         "noise; default 0, or the config file's)."),
                 device: Optional[str] = typer.Option(None, "--device", help="cpu (default, or the config "
                                                                             "file's), cuda, cuda:1, ..."),
                 batch_size: Optional[int] = typer.Option(None, "--batch-size"),
                 seq_len: Optional[int] = typer.Option(None, "--seq-len"),
                 config_file: Optional[Path] = typer.Option(None, "--scoring-config",
                                                            help="JSON file of ScoringConfig fields."),
                 corpus: Optional[str] = typer.Option(None, "--corpus", help=CORPUS_HELP),
                 no_score: bool = typer.Option(False, "--no-score", help="Use only scores already stored."),
                 predictor: Optional[Path] = typer.Option(None, "--predictor",
                                                          help="A model of `zeronas predict fit`: adds the rows "
                                                               "predictor, predictor_quality and "
                                                               "predictor_trainable."),
                 report: Optional[Path] = typer.Option(None, "--report", help="Write HTML + markdown + PNGs here."),
                 as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress still goes "
                                                                    "to stderr)."),
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Score the missing cells, then rank-correlate every proxy (and combination) with trained perplexity."""
    from zeronas.bench.nbnlp import BenchmarkError
    from zeronas.evaluate import run_evaluation
    from zeronas.metrics import MetricsError, parse_proxy_specs
    from zeronas.predict.model import PredictorError
    from zeronas.report import ReportError, format_table, rich_table
    from zeronas.run.executor import ExecutorError
    from zeronas.proxies.config import ConfigError
    from zeronas.store import StoreError

    try:
        names = parse_proxy_specs(proxies) if proxies is not None else None
    except MetricsError as exc:
        raise fail(f"--proxies: {exc} (leave the option out to evaluate every registered proxy)")
    try:
        evaluation = run_evaluation(
            ground_truth=ground_truth, proxies=names, limit=limit, sample_seed=sample_seed, store=store,
            workers=workers, timeout_s=timeout,
            config=_scoring_config(seed, device, batch_size, seq_len, config_file, corpus),
            executor=executor, ray_address=address, progress=not quiet, score=not no_score,
            report_dir=report, command="zeronas " + " ".join(sys.argv[1:]), predictor=predictor)
    except (BenchmarkError, MetricsError, ExecutorError, StoreError, PredictorError, ConfigError, ReportError,
            KeyError, FileNotFoundError) as exc:
        raise fail(str(exc).strip('"'))
    in_sample = evaluation.meta.get("predictor_in_sample", 0)
    if in_sample:
        err.print(f"note: {in_sample} of the {evaluation.meta['n_archs']} cells were in the predictor's fitted "
                  "sample; its figures on them are in-sample (fit on a --labels sample, or see `zeronas predict "
                  "curve`, for held-out figures)", highlight=False, markup=False)
    if as_json:
        print(json.dumps(evaluation.to_dict()))
        return
    meta = evaluation.meta
    title = f"{meta['n_archs']} architectures of {meta['ground_truth']} (config {meta['config_hash']})"
    if out.is_terminal and out.width >= 150:
        out.print(rich_table(evaluation.results, title=title))
    else:  # a narrow terminal or a file: plain columns that never wrap
        print(title)
        print(format_table(evaluation.results))
    if report:
        out.print(f"report written to {report}/report.html and {report}/report.md")


@app.command("train")
def train_cmd(spec: str = typer.Argument(..., help="Recipe file, rnn|lstm|gru, a named cell, or a benchmark id."),
              epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs (protocol default: 50)."),
              steps: Optional[int] = typer.Option(None, "--steps", help="Stop after this many optimizer steps."),
              quick: bool = typer.Option(False, "--quick", help="Tiny model, few steps: a smoke test."),
              seed: int = typer.Option(0, "--seed"),
              checkpoint: Optional[Path] = typer.Option(None, "--checkpoint",
                                                        help="Folder for checkpoints; an existing one is resumed."),
              corpus_dir: Optional[Path] = typer.Option(None, "--corpus",
                                                        help="Folder with train.txt/valid.txt/test.txt (default PTB)."),
              device: str = typer.Option("cpu", "--device"),
              as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress still goes to "
                                                                 "stderr)."),
              quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr.")) -> None:
    """Train a cell with the NAS-Bench-NLP protocol on PTB and report validation and test perplexity."""
    from zeronas.data.corpus import CorpusError, load_corpus
    from zeronas.proxies.device import check_device
    from zeronas.train import CheckpointError, TrainConfig, train

    try:
        check_device(device)
        cell = resolve_cell(spec)
        changes = {k: v for k, v in {"epochs": epochs, "max_steps": steps}.items() if v is not None}
        config = (TrainConfig.quick(seed=seed, device=device, **changes) if quick
                  else TrainConfig(seed=seed, device=device, **changes))
        corpus = load_corpus(corpus_dir) if corpus_dir else None
        result = train(cell, config, corpus=corpus, checkpoint_dir=checkpoint, progress=not quiet)
    except (RecipeError, CorpusError, CheckpointError, ValueError) as exc:
        raise fail(str(exc))
    info = result.to_dict()
    if as_json:
        print(json.dumps(info))
        return
    if result.diverged:
        out.print(f"[bold red]diverged:[/] {result.divergence_reason}")
        raise typer.Exit(code=1)
    out.print(f"validation ppl {info['val_ppl']:.2f}, test ppl {info['test_ppl']:.2f}, "
              f"{info['tokens_per_second']:.0f} tokens/s, {info['steps']} steps", highlight=False)


@app.command("search")
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
    from zeronas.proxies.config import ConfigError
    from zeronas.store import StoreError

    # without a file or corpus, run_search chooses the default config for the algorithm (pruning: a small one)
    config = None
    if config_file is not None or corpus is not None:
        from zeronas.search.prune import PRUNE_CONFIG

        config = _scoring_config(None, None, None, None, config_file, corpus,
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


# The predictor's commands live in their own module; it imports this one's helpers (fail, out, err), so it is
# attached here, after they are defined.
from zeronas.models.cli import score_model_cmd  # noqa: E402
from zeronas.predict.cli import predict_app  # noqa: E402
from zeronas.store.cli import store_app  # noqa: E402

app.command("score-model")(score_model_cmd)
app.add_typer(predict_app, name="predict")
app.add_typer(store_app, name="store")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
