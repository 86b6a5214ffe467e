"""``zeronas refine``: train a shortlist under successive halving and return the best cell (a thin command over
:mod:`zeronas.refine`). Also the refine step of ``zeronas search --refine K``."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import List, Optional

import typer

from zeronas.cli._common import err, fail
from zeronas.store import DEFAULT_STORE
from zeronas.cli._refine_common import (DEFAULT_DIR, RefineOptions, bad_input, print_result,
                                        schedule_of)
from zeronas.cli.refine_replay import replay_candidates, replay_pools

# Options, one line each in the commands (search --refine shares the refine ones).
RUNGS = typer.Option(None, "--rungs", help="Comma-separated budgets at which every survivor is measured, increasing "
                                           "(fractions allowed: 0.25,0.75,2.25; default: the default policy's, "
                                           "zeronas.refine.policies.DEFAULT_RUNGS).")
ETA = typer.Option(None, "--eta", help="After each rung the best 1/eta go on, at least one (default 3).")
UNIT = typer.Option("epochs", "--unit", help="Unit of the rungs: epochs or tokens (training tokens in all).")
CHECKPOINT = typer.Option(Path(DEFAULT_DIR), "--checkpoint", help="The run's folder (a checkpoint per candidate); "
                                                                  "an existing one is resumed.")
EPOCHS = typer.Option(50, "--epochs", help="The full training the winner goes on to (the rungs must fit in it).")
QUICK = typer.Option(False, "--quick", help="TrainConfig.quick's tiny model and corpus slices: a smoke test.")
DEVICE = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.")
REFERENCES = typer.Option(True, "--references/--no-references", help="Train the reference cells lstm and gru beside "
                                                                     "the candidates (default; in a replay, the "
                                                                     "curve table's reference cells).")
EXECUTOR = typer.Option("local", "--executor", help="local (in this process) or ray (Ray Tune's ASHA scheduler: "
                                                    "trials across processes, GPUs and nodes).")
CELLS = typer.Argument(None, help="Candidates: recipe files, named cells, inline recipes or benchmark ids.")
FROM_STORE = typer.Option(None, "--from-store", metavar="K", help="Add the K best cells of --store under --proxy.")
STORE = typer.Option(DEFAULT_STORE, "--store", help="Results store URL (--from-store; a replay's scores).")
PROXY = typer.Option(None, "--proxy", "-p", help="Spec ranking cells (default: the recommended method).")
SCORING = typer.Option(None, "--scoring-config", help="JSON file of the ScoringConfig of the store's scores.")
SEED = typer.Option(0, "--seed", help="Training seed (a replay: the seed of its pools).")
CORPUS = typer.Option(None, "--corpus", help="Training corpus: ptb (default), a folder with train.txt/valid.txt/"
                                             "test.txt, or one text file (cut by lines 80/10/10, as zeronas train); "
                                             "also the probe corpus of training-free scores (--from-store, --replay: "
                                             "ptb, wikitext-2, a folder or a file).")
EVERY = typer.Option(0, "--checkpoint-every", help="Also checkpoint every N steps (0: at rungs and epoch ends).")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="Ray cluster to join (default: start one here).")
GPUS = typer.Option(None, "--gpus-per-trial", help="Ray: GPUs a trial (default 1 on cuda, else 0).")
CPUS = typer.Option(1.0, "--cpus-per-trial", help="Ray: CPUs a trial.")
JSON = typer.Option(False, "--json", help="Print one JSON object (progress on stderr).")
PLOT = typer.Option(None, "--plot", help="Write the curves to this PNG (one line a candidate, dropped ones faded).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress on stderr.")
REPLAY = typer.Option(None, "--replay", metavar="CURVES", help="Read validation losses from a curve table (the "
                                                               "released format, .csv or .csv.gz; 'bundled': the "
                                                               "WikiText-2 curves) instead of training.")
REPEATS = typer.Option(None, "--repeats", help="Replay N seeded pools of the table's cells and report per policy "
                                               "(default 300 when no candidates are named).")
POOL = typer.Option(0.8, "--pool-fraction", help="Replay: each pool is this share of the table's cells.")
K = typer.Option(None, "--k", help="Replay: shortlist size of the policies (default: the default policy's, "
                                  "zeronas.refine.policies.DEFAULT_K).")


def refine_cmd(cells: Optional[List[str]] = CELLS, from_store: Optional[int] = FROM_STORE, store: str = STORE,
               proxy: Optional[str] = PROXY, config_file: Optional[Path] = SCORING, rungs: Optional[str] = RUNGS,
               eta: Optional[int] = ETA, unit: str = UNIT, seed: int = SEED, device: str = DEVICE,
               checkpoint: Path = CHECKPOINT, corpus: Optional[str] = CORPUS, epochs: int = EPOCHS,
               quick: bool = QUICK, checkpoint_every: int = EVERY, references: bool = REFERENCES,
               executor: str = EXECUTOR, ray_address: Optional[str] = RAY_ADDRESS,
               gpus_per_trial: Optional[float] = GPUS, cpus_per_trial: float = CPUS, as_json: bool = JSON,
               plot: Optional[Path] = PLOT, quiet: bool = QUIET, replay: Optional[str] = REPLAY,
               repeats: Optional[int] = REPEATS, pool_fraction: float = POOL, k: Optional[int] = K) -> None:
    """Train candidate cells under successive halving (validation perplexity at each rung, the worst dropped) and
    print the winner, a table and the command that continues the winner to full training. With --replay, read the
    validation losses from logged curves instead: of the named candidates, or, with --repeats, of many seeded pools
    of the table's cells under each shortlist policy."""
    opts = RefineOptions(rungs, eta, unit, seed, device, checkpoint, corpus, epochs, quick, checkpoint_every,
                         references, executor, ray_address, gpus_per_trial, cpus_per_trial, as_json, plot, quiet)
    if plot is not None:  # a PNG may be replaced; the results store never (checked before hours of training)
        from zeronas.files import FileArgError, check_output
        from zeronas.store import store_file

        try:
            check_output(plot, force=True, protected=[p for p in [store_file(store)] if p is not None], what="plot")
        except FileArgError as exc:
            raise fail(f"--plot: {exc}")
    if replay is not None and not cells and from_store is None:
        return replay_pools(replay, opts, repeats if repeats is not None else 300, pool_fraction, k, store,
                            proxy, config_file)
    if repeats is not None or k is not None:
        raise fail("--repeats and --k replay pools of a curve table's cells: use them with --replay and without "
                   "named candidates")
    candidates = _candidates(cells or [], from_store, store, proxy, config_file, corpus)
    if replay is not None:
        return replay_candidates(replay, candidates, opts)
    run_refine(candidates, opts)


def _candidates(cells: List[str], from_store: Optional[int], store: str, proxy: Optional[str],
                config_file: Optional[Path], corpus: Optional[str]) -> list:
    from zeronas.cells.recipe import RecipeError
    from zeronas.core.config import ConfigError
    from zeronas.recommended import RECOMMENDED_METHOD
    from zeronas.refine.sources import SourceError, from_store as store_best, named
    from zeronas.search import SearchError
    from zeronas.store import StoreError

    if not cells and from_store is None:
        raise fail("no candidates: name cells (files, named cells, benchmark ids) or use --from-store K")
    try:
        found = named(cells)
    except RecipeError as exc:
        raise fail(str(exc))
    if from_store is not None:
        from zeronas.cli._common import scoring_config

        config = scoring_config(None, None, None, None, config_file, corpus)
        try:
            found += store_best(store, from_store, proxy or RECOMMENDED_METHOD, config)
        except (SourceError, StoreError, SearchError, ConfigError, RecipeError, KeyError) as exc:
            raise fail(f"--from-store: {str(exc).strip(chr(34))}")
    return found


def _train_config(opts: RefineOptions):
    from zeronas.train import TrainConfig

    if opts.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be 0 or more, got {opts.checkpoint_every}")
    base = dict(seed=opts.seed, device=opts.device, epochs=opts.epochs, checkpoint_every=opts.checkpoint_every)
    return TrainConfig.quick(max_steps=None, **base) if opts.quick else TrainConfig(**base)


def _training_corpus(name: Optional[str]):
    """The training corpus as ``zeronas train`` takes it: ptb, a folder, or one text file cut 80/10/10."""
    from zeronas.data.corpus import load_training_corpus

    return load_training_corpus(name or "ptb")


def run_refine(candidates: list, opts: RefineOptions, wrap: Optional[tuple[dict, str]] = None) -> None:
    """Refine ``candidates`` (plus the reference cells unless opts.references is off) and print the outcome (with
    ``wrap=(obj, key)``, --json prints ``obj`` with the refine's JSON under ``key``); every bad input is one line on
    stderr and exit code 2, before anything is trained or the run's folder is touched."""
    from zeronas.refine.run import refine, unique
    from zeronas.refine.sources import with_references

    if opts.references:
        candidates = with_references(candidates)
    candidates, dropped = unique(candidates)
    say = (lambda line: None) if opts.quiet else (lambda line: err.print(line, highlight=False, markup=False))
    for twin, kept in dropped:
        say(f"{twin.name} is the same cell as {kept.name}: trained once")
    schedule, config, corpus = check_inputs(opts)
    ray = {"address": opts.ray_address, "gpus_per_trial": opts.gpus_per_trial, "cpus_per_trial": opts.cpus_per_trial,
           "quiet": opts.quiet}
    from zeronas.refine.ray_tune import TrialError

    try:
        with bad_input():
            result = refine(candidates, schedule, config, corpus, opts.checkpoint, executor=opts.executor,
                            progress=say, train_progress=not opts.quiet and opts.executor == "local", ray=ray)
    except TrialError as exc:
        err.print(f"error: {exc} (rerun to resume: what was measured is kept)", highlight=False, markup=False)
        raise typer.Exit(code=1)
    if opts.plot is not None:
        from zeronas.refine.plot import plot_curves

        plot_curves(result, opts.plot)
    command = continue_command(result, opts)
    if opts.as_json:
        own = {**result.to_dict(), "continue": command}
        print(json.dumps(own if wrap is None else {**wrap[0], wrap[1]: own}, allow_nan=False))
    else:
        print_result(result, command, opts)
    if result.winner is None:
        raise typer.Exit(code=1)


def check_inputs(opts: RefineOptions):
    """The schedule, training config and corpus, each checked (exit 2 naming the option)."""
    from zeronas.proxies.device import check_device

    schedule = schedule_of(opts)
    with bad_input():
        check_device(opts.device)
    try:
        config = _train_config(opts)
    except ValueError as exc:
        raise fail(str(exc))
    with bad_input():
        corpus = _training_corpus(opts.corpus)
    return schedule, config, corpus


def continue_command(result, opts: RefineOptions) -> Optional[str]:
    """The ``zeronas train`` command that continues the winner's checkpoint to full training."""
    folder = result.winner_folder()
    if folder is None or result.executor == "replay":
        return None
    from zeronas.refine.rungs import CELL_FILE

    args = ["zeronas", "train", str(folder / CELL_FILE), "--checkpoint", str(folder), "--seed", str(opts.seed),
            "--epochs", str(opts.epochs)]
    if opts.quick:
        args.append("--quick")
    if opts.corpus not in (None, "ptb"):
        args += ["--corpus", str(opts.corpus)]
    if opts.device != "cpu":
        args += ["--device", opts.device]
    return shlex.join(args)
