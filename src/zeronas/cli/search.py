"""``zeronas search``: search a space for the cells a proxy (or a predictor) ranks best, and say what to do next."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from zeronas.cli._common import err, fail, out, scoring_config
from zeronas.cli._options import Corpus, Quiet, ScoringConfigFile, Store, Timeout, Workers
from zeronas.store import DEFAULT_STORE
from zeronas.cli._refine_common import RefineOptions
from zeronas.cli.refine import (CHECKPOINT, DEVICE, EPOCHS, ETA, QUICK, REFERENCES, RUNGS, UNIT, check_inputs,
                                run_refine)

#: Below this many cells a search warns that its pick is ordinary. Measured in benchmark mode with the default
#: ranking (hidden_cov!state_escape), evolution, 20 seeds per budget (python benchmarks/search_quality.py --seeds 20
#: --budget B --scoring-config default --workers 1, on a copy of docs/results/nbnlp-dev-scores.db): the median
#: pick's test ppl is 115.7 at 8 cells, 118.6 at 16 (mean percentile 20-23%: evolution samples at random until its
#: population of 20 is full), 110.4 at 32, 104.3 at 64 (11%), 99.4 at 100 (6%) and at the default 200 (1.4%).
#: A cell picked at random: 133.3 (52%).
SMALL_BUDGET = 100
SMALL_BUDGET_NOTE = ("on NAS-Bench-NLP, evolution by the default ranking picks a cell of median test ppl 116-119 "
                     "with 8-16 cells (about the 20th percentile; a random cell: 133.3), 110.4 with 32, 104.3 with "
                     "64, 99.4 with 100 or the default 200 (20 seeds each)")


def search_cmd(space: str = typer.Option("nb-nlp", "--space",
                                         help="Search space: nb-nlp, enas, darts, or one a plugin registers."),
               proxy: Optional[str] = typer.Option(None, "--proxy", "-p",
                                                   help="A proxy, a rank combination a+b or a gated spec rank!gate "
                                                        "(default: the recommended method, the search module's "
                                                        "DEFAULT_PROXY; prune: ntk_cond+linear_regions)."),
               gate: Optional[str] = typer.Option(None, "--gate", "-g",
                                                  help="Comma-separated gate proxies: a cell whose gate score "
                                                       "fails (NaN, inf, ...) ranks last, e.g. zen,synflow (cells "
                                                       "that overflow untrained mostly diverge in training)."),
               guard: Optional[str] = typer.Option(None, "--guard", hidden=True, help="The former name of --gate."),
               predictor: Optional[Path] = typer.Option(None, "--predictor", help="Rank by a model of `zeronas "
                                                        "predict fit` instead of a proxy (random and evolution)."),
               algorithm: str = typer.Option("evolution", "--algorithm", "-a", help="random, evolution or prune."),
               budget: Optional[int] = typer.Option(None, "--budget", help="Distinct cells to evaluate (default "
                                                                           "200; prune: trial networks, no limit)."),
               time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds, checked per round."),
               top: int = typer.Option(5, "--top", help="How many of the best cells to print."),
               seed: int = typer.Option(0, "--seed", help="Seed of the search's random choices (the scoring seed "
                                                          "is the scoring config's)."),
               store: Store = DEFAULT_STORE,
               benchmark: Optional[bool] = typer.Option(None, "--benchmark/--no-benchmark", help="Candidates are the "
                                                        "bundled benchmark's cells (default for nb-nlp; nb-nlp only)."),
               workers: Workers = None, timeout: Timeout = None, config_file: ScoringConfigFile = None,
               corpus: Corpus = None,
               save_best: Optional[Path] = typer.Option(None, "--save-best", metavar="FILE",
                                                        help="Write the best cell's recipe to FILE (JSON), ready "
                                                             "for `zeronas train FILE`."),
               as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the search, its top "
                                                                  "cells, the saved file and the next step "
                                                                  "(progress still goes to stderr)."),
               quiet: Quiet = False,
               refine: Optional[int] = typer.Option(None, "--refine", metavar="K",
                                                    help="Then train K of the cells it scored (the default shortlist "
                                                         "policy) under successive halving, as zeronas refine; the "
                                                         "training corpus is --corpus when it is a file or folder, "
                                                         "else PTB."),
               rungs: Optional[str] = RUNGS, eta: Optional[int] = ETA, unit: str = UNIT,
               refine_dir: Path = CHECKPOINT, epochs: int = EPOCHS, quick: bool = QUICK, device: str = DEVICE,
               references: bool = REFERENCES) -> None:
    """Search a space for the cells the proxy ranks best; print the top cells (with their trained perplexity
    when they are benchmark cells), what the scores mean, and the next step. Scores go to the store: a re-run
    (same seed) resumes, scoring nothing twice. With --refine K, then refine K of the cells it scored by training
    (see zeronas refine)."""
    config = _config(config_file, corpus, algorithm)
    gates = _check_options(gate, guard, top, proxy, save_best, store)
    opts = _refine_options(refine, RefineOptions(rungs, eta, unit, seed, device, refine_dir, None, epochs, quick,
                                                 references=references, as_json=as_json, quiet=quiet), corpus)
    _warn_small_budget(algorithm, budget, time_budget)
    result = _run(space=space, proxy=proxy, gates=gates, algorithm=algorithm, budget=budget,
                  time_budget=time_budget, seed=seed, store=store, benchmark=benchmark, workers=workers,
                  timeout_s=timeout, config=config, predictor=predictor, quiet=quiet)
    found = _answer(result, top, save_best, store, config_file, corpus, show=not as_json)
    if opts is None or refine is None:
        if as_json:
            print(json.dumps(found))
        return
    from zeronas.refine.sources import from_search

    run_refine(from_search(result, refine, seed), opts, wrap=(found, "refine") if as_json else None)


def _answer(result: Any, top: int, save_best: Optional[Path], store: str, config_file: Optional[Path],
            corpus: Optional[str], show: bool) -> dict[str, Any]:
    """The search's answer (its top cells, the saved best cell, the next step) as one JSON-ready object; with
    ``show``, also printed as a table and notes."""
    from zeronas.search import ground_truth_for

    rows = result.entries(top, ground_truth_for(result))
    if save_best is not None:
        _save_best(result, save_best)
    hint = next_step(result, save_best, store, config_file, corpus)
    if show:
        _print_table(result, rows)
        _print_notes(result, save_best, hint)
    return {"search": result.summary(), "top": rows, "saved_best": str(save_best) if save_best is not None else None,
            "next": hint}


def _refine_options(refine: Optional[int], opts: RefineOptions, corpus: Optional[str]) -> Optional[RefineOptions]:
    """The refine step's options, every one checked before the search computes anything (None without
    --refine). The training corpus is the search's --corpus when that is a file or a folder, else PTB."""
    if refine is None:
        return None
    if refine < 1:
        raise fail(f"--refine must be 1 or more, got {refine}")
    if corpus is not None and Path(corpus).exists():
        opts.corpus = corpus
    check_inputs(opts)
    return opts


def _config(config_file: Optional[Path], corpus: Optional[str], algorithm: str) -> Any:
    """The scoring config of a file or corpus; None (without either) lets run_search choose the algorithm's
    default (pruning: a small one)."""
    if config_file is None and corpus is None:
        return None
    from zeronas.search.prune import PRUNE_CONFIG

    return scoring_config(None, None, None, None, config_file, corpus,
                          default=PRUNE_CONFIG if algorithm == "prune" else None)


def _check_options(gate: Optional[str], guard: Optional[str], top: int, proxy: Optional[str],
                   save_best: Optional[Path], store: str) -> list[str]:
    """The gate names (of --gate and its deprecated former name --guard), after the options that need no search
    are checked (a bad one costs no scoring)."""
    from zeronas.proxies.registry import parse_proxy_list

    if guard is not None:
        err.print("--guard is deprecated: use --gate", highlight=False, markup=False)
    gates: list[str] = []
    for option, value in (("--gate", gate), ("--guard", guard)):
        try:
            gates += parse_proxy_list(value) if value is not None else []
        except KeyError as exc:
            raise fail(f"{option}: {str(exc).strip(chr(34))}")
    if top < 0:
        raise fail(f"--top must be 0 or more, got {top}")
    if proxy is not None and not proxy.strip():
        raise fail("--proxy: no proxy named")
    if save_best is not None:
        _never_the_store(save_best, store)
        if save_best.is_dir():
            raise fail(f"--save-best: {save_best} is a folder, not a file")
        if save_best.exists() and not save_best.is_file():
            raise fail(f"--save-best: {save_best} exists and is not a regular file")
        parent = save_best.parent if str(save_best.parent) else Path(".")
        if not parent.is_dir():
            raise fail(f"--save-best: the folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise fail(f"--save-best: the folder {parent} is not writable")
    return gates


def _never_the_store(save_best: Path, store: str) -> None:
    """A recipe file may be replaced; the results store (or its -wal/-shm file) never."""
    from zeronas.files import FileArgError, check_output
    from zeronas.store import store_file

    if save_best.is_dir():
        return  # said below, in the words the option has always used
    try:
        check_output(save_best, force=True, protected=[p for p in [store_file(store)] if p is not None],
                     what="best recipe")
    except FileArgError as exc:
        raise fail(f"--save-best: {exc}")


def _warn_small_budget(algorithm: str, budget: Optional[int], time_budget: Optional[float]) -> None:
    if algorithm != "prune" and budget is not None and budget < SMALL_BUDGET:
        err.print(f"warning: --budget {budget} is small: {SMALL_BUDGET_NOTE}", highlight=False, markup=False)


def _run(*, algorithm: str, budget: Optional[int], quiet: bool, **options: Any) -> Any:
    """The search, with its progress on stderr (a live bar, or plain lines when stderr is not a terminal)."""
    from zeronas.core.config import ConfigError
    from zeronas.progress import ProgressBar
    from zeronas.run.executor import ExecutorError
    from zeronas.search import SearchError, run_search
    from zeronas.store import StoreError

    unit = "trial networks" if algorithm == "prune" else "cells"
    with ProgressBar(algorithm, budget, enabled=not quiet, transient=True, unit=unit, detail="{best}",
                     best="") as bar:
        def progress(done: int, total: Optional[int], best: Any) -> None:
            bar.update(completed=done, total=total, best=_best_note(best, options.get("predictor") is not None))

        try:
            return run_search(algorithm=algorithm, budget=budget, progress=progress, **options)
        except (SearchError, ExecutorError, StoreError, ConfigError, KeyError) as exc:
            raise fail(str(exc).strip('"'))


def _best_note(best: Any, predictor: bool) -> str:
    """The best cell so far, by its scores (a predictor's: its ranking score; its features are too many)."""
    if best is None or best.fitness == float("-inf"):
        return ""
    if predictor:
        return f"best score {best.fitness:.3g}"
    return "best " + ", ".join(f"{m} {s.value:.4g}" if s.ok else f"{m} {s.status}" for m, s in best.scores.items())


def _save_best(result: Any, path: Path) -> None:
    """The best cell's recipe, written whole or not at all (a temporary file renamed over ``path``)."""
    if not result.best:
        raise fail("--save-best: the search evaluated no cell")
    text = json.dumps(result.best[0].cell.recipe, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise fail(f"--save-best: cannot write {path}: {exc.strerror or exc}")


#: How many of the best cells the next step trains under successive halving (``zeronas refine``).
REFINE_K = 5


def next_step(result: Any, saved: Optional[Path], store: str, config_file: Optional[Path],
              corpus: Optional[str]) -> dict[str, Optional[str]]:
    """What to do with the search's answer: ``refine`` (a command) trains its best cells briefly under successive
    halving and keeps the winner: the top benchmark cells by id, or else the store's best under the search's
    ranking and config (None after pruning, which returns one cell); ``train`` trains one cell fully; ``text``
    says both in a sentence."""
    k = min(REFINE_K, len(result.best))
    refine: Optional[list[str]] = None
    what = ""
    if result.benchmark and k > 1:
        refine = ["zeronas", "refine", *(c.canonical_id for c in result.best[:k])]
        what = f"the top {k} cells"
    elif result.ranking is None and result.algorithm != "prune":
        refine = ["zeronas", "refine", "--from-store", str(REFINE_K), "--store", store, "-p", result.proxy]
        refine += ["--scoring-config", str(config_file)] if config_file is not None else []
        refine += ["--corpus", corpus] if corpus is not None else []
        what = f"the {REFINE_K} best cells of the store by this ranking"
    train = ["zeronas", "train", str(saved) if saved is not None else "best.json", "--epochs", "50"]
    train += ["--corpus", corpus] if corpus is not None else []
    text = (f"train {what} briefly under successive halving and keep the winner: {_command(refine)} (hours on a "
            "CPU, or --device cuda); or " if refine else "")
    text += f"train the best cell fully (the NAS-Bench-NLP protocol): {_command(train)}"
    if saved is None:
        text += " after saving it with --save-best best.json (a re-run reads every score from the store)"
    return {"refine": _command(refine) if refine else None, "train": _command(train), "text": text}


def _command(words: Optional[list[str]]) -> str:
    import shlex

    return " ".join(shlex.quote(w) for w in words or [])


def _ppl_cell(row: dict[str, Any]) -> str:
    if not row.get("in_benchmark"):
        return "-"
    if row["diverged"]:
        return "diverged"
    return f"{row['test_ppl']:.1f}" if row["test_ppl"] is not None else f"inf (loss {row['test_loss']:.3g})"


def _scores_cell(row: dict[str, Any]) -> str:
    """The proxy scores of a row, or what a predictor says of it (its 26 feature scores would fill the screen)."""
    if "prediction" in row:
        p = row["prediction"]
        if p is None:
            return "features incomplete (ranks last)"
        ppl = f"{p['test_ppl']:.1f}" if p["test_ppl"] is not None else "inf"
        return f"predicted ppl {ppl}, P(diverge) {p['p_diverge']:.2f}, score {p['score']:.3f}"
    return ", ".join(f"{m} {v['value']:.6g}" if v["status"] == "ok" else f"{m} {v['status']}"
                     for m, v in row["scores"].items())


def _print_table(result: Any, rows: list[dict[str, Any]]) -> None:
    s = result.summary()
    title = (f"{result.algorithm} search of {result.space}{' (benchmark cells)' if result.benchmark else ''}, "
             f"ranked by {result.proxy}: top {len(rows)} of {s['evaluated']}")
    table = Table(title=escape(title))
    for col in ("rank", "canonical id", "prediction" if result.ranking is not None else "scores", "test ppl"):
        table.add_column(col)
    for row in rows:
        table.add_row(str(row["rank"]), row["canonical_id"], escape(_scores_cell(row)), _ppl_cell(row))
    out.print(table)
    for row in rows:
        out.print(f"#{row['rank']} {row['canonical_id']}: {json.dumps(row['recipe'], sort_keys=True)}",
                  highlight=False, markup=False)


def _print_notes(result: Any, saved: Optional[Path], hint: dict[str, Optional[str]]) -> None:
    """What was done, what the numbers mean, and the next step."""
    s = result.summary()
    if result.algorithm == "prune":
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
    lines = [note, *explain_ranking(result)]
    if saved is not None:
        lines.append(f"saved the best cell's recipe to {saved}")
    lines.append(f"next: {hint['text']}")
    for line in lines:
        out.print(line, highlight=False, markup=False)


def explain_ranking(result: Any) -> list[str]:
    """What the scores in the table are: the ranking rule and each proxy's meaning and direction."""
    if result.ranking is not None:
        return ["prediction: the predictor's test perplexity if the cell trains, its probability of diverging, "
                "and the ranking score quality x (1 - P(diverge)) (higher is better; see zeronas predict --help)"]
    from zeronas.core.spec import parse_spec
    from zeronas.proxies.registry import get_proxy

    members, gates = parse_spec(result.proxy)
    if gates:
        rule = (f"cells that pass {', '.join(gates)} rank above the others; "
                f"{'+'.join(members)} orders each group")
    elif len(members) > 1:
        rule = "the sum of each member's rank among the cells evaluated (each in its own direction)"
    else:
        rule = f"{members[0]}'s value"
    lines = [f"ranked by {result.proxy}: {rule}. The scores are untrained-model proxies (zeronas proxies):"]
    for name in dict.fromkeys(members + gates):
        spec = get_proxy(name)
        direction = "higher is better" if spec.higher_is_better else "lower is better"
        gate = "" if spec.gate is None or name not in gates else \
            f"; passes at {'>=' if spec.higher_is_better else '<='} {spec.gate:g}"
        lines.append(f"  {name} ({direction}{gate}): {spec.description}")
    return lines
