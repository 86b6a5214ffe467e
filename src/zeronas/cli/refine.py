"""``zeronas refine``: train a shortlist under successive halving and return the best cell (a thin command over
:mod:`zeronas.refine`). Also the refine step of ``zeronas search --refine K``."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table

from zeronas.cli._common import err, fail, out

DEFAULT_RUNGS = "1,3,9"
DEFAULT_DIR = "zeronas-refine"

# Options shared with ``zeronas search --refine``.
RUNGS = typer.Option(DEFAULT_RUNGS, "--rungs", help="Comma-separated budgets at which every survivor is measured "
                                                    "(fractions allowed: 0.25,0.75,2.25), increasing.")
ETA = typer.Option(3, "--eta", help="After each rung the best 1/eta go on (at least one).")
UNIT = typer.Option("epochs", "--unit", help="Unit of the rungs: epochs or tokens (training tokens in all).")
CHECKPOINT = typer.Option(Path(DEFAULT_DIR), "--checkpoint", help="The run's folder (a checkpoint per candidate); "
                                                                  "an existing one is resumed.")
EPOCHS = typer.Option(50, "--epochs", help="The full training the winner goes on to (the rungs must fit in it).")
QUICK = typer.Option(False, "--quick", help="TrainConfig.quick's tiny model and corpus slices: a smoke test.")
DEVICE = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.")
REFERENCES = typer.Option(True, "--references/--no-references", help="Train the reference cells lstm and gru beside "
                                                                     "the candidates (default).")
EXECUTOR = typer.Option("local", "--executor", help="local (in this process) or ray (Ray Tune's ASHA scheduler: "
                                                    "trials across processes, GPUs and nodes).")


@dataclass
class RefineOptions:
    """How to refine, from the command line."""

    rungs: str = DEFAULT_RUNGS
    eta: int = 3
    unit: str = "epochs"
    seed: int = 0
    device: str = "cpu"
    checkpoint: Path = Path(DEFAULT_DIR)
    corpus: Optional[str] = None
    epochs: int = 50
    quick: bool = False
    checkpoint_every: int = 0
    references: bool = True
    executor: str = "local"
    ray_address: Optional[str] = None
    gpus_per_trial: Optional[float] = None
    cpus_per_trial: float = 1.0
    as_json: bool = False
    plot: Optional[Path] = None
    quiet: bool = False


def refine_cmd(cells: Optional[List[str]] = typer.Argument(None, help="Candidates: recipe files, named cells, "
                                                                      "inline recipes or benchmark ids."),
               from_store: Optional[int] = typer.Option(None, "--from-store", metavar="K",
                                                        help="Add the K best cells of --store under --proxy."),
               store: str = typer.Option("sqlite:///zeronas.db", "--store", help="Results store URL."),
               proxy: Optional[str] = typer.Option(None, "--proxy", "-p", help="Spec ranking the store's cells "
                                                                               "(default: the recommended method)."),
               config_file: Optional[Path] = typer.Option(None, "--scoring-config", help="JSON file of the "
                                                          "ScoringConfig the store's scores were computed under."),
               rungs: str = RUNGS, eta: int = ETA, unit: str = UNIT, seed: int = typer.Option(0, "--seed"),
               device: str = DEVICE, checkpoint: Path = CHECKPOINT,
               corpus: Optional[str] = typer.Option(None, "--corpus", help="Training corpus: ptb (default), a "
                                                    "folder with train.txt/valid.txt/test.txt, or one text file "
                                                    "(cut by lines 80/10/10, as zeronas train); also the probe "
                                                    "corpus of --from-store's scores."),
               epochs: int = EPOCHS, quick: bool = QUICK,
               checkpoint_every: int = typer.Option(0, "--checkpoint-every", help="Also checkpoint every N steps "
                                                    "(0: at rungs and epoch ends only)."),
               references: bool = REFERENCES, executor: str = EXECUTOR,
               ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join."),
               gpus_per_trial: Optional[float] = typer.Option(None, "--gpus-per-trial",
                                                              help="Ray: GPUs a trial (default 1 on cuda, else 0)."),
               cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="Ray: CPUs a trial."),
               as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress on stderr)."),
               plot: Optional[Path] = typer.Option(None, "--plot", help="Write the curves to this PNG."),
               quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr.")) -> None:
    """Train candidate cells under successive halving (validation perplexity at each rung, the worst dropped) and
    print the winner, a table and the command that continues the winner to full training."""
    opts = RefineOptions(rungs, eta, unit, seed, device, checkpoint, corpus, epochs, quick, checkpoint_every,
                         references, executor, ray_address, gpus_per_trial, cpus_per_trial, as_json, plot, quiet)
    if plot is not None:  # a PNG may be replaced; the results store never (checked before hours of training)
        from zeronas.core.files import FileArgError, check_output
        from zeronas.store import store_file

        try:
            check_output(plot, force=True, protected=[p for p in [store_file(store)] if p is not None], what="plot")
        except FileArgError as exc:
            raise fail(f"--plot: {exc}")
    candidates = _candidates(cells or [], from_store, store, proxy, config_file, corpus)
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


def run_refine(candidates: list, opts: RefineOptions) -> None:
    """Refine ``candidates`` (plus the reference cells unless opts.references is off) and print the outcome; every
    bad input is one line on stderr and exit code 2, before anything is trained or the run's folder is touched."""
    from zeronas.refine.run import refine, unique
    from zeronas.refine.sources import with_references

    if opts.references:
        candidates = with_references(candidates)
    candidates, dropped = unique(candidates)
    say = (lambda line: None) if opts.quiet else (lambda line: err.print(line, highlight=False, markup=False))
    for twin, kept in dropped:
        say(f"{twin.name} is the same cell as {kept.name}: trained once")
    schedule, config, corpus = _inputs(opts)
    ray = {"address": opts.ray_address, "gpus_per_trial": opts.gpus_per_trial, "cpus_per_trial": opts.cpus_per_trial,
           "quiet": opts.quiet}
    from zeronas.refine.ray_tune import TrialError

    try:
        with _bad_input():
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
        print(json.dumps({**result.to_dict(), "continue": command}, allow_nan=False))
    else:
        _print(result, command, opts)
    if result.winner is None:
        raise typer.Exit(code=1)


def _inputs(opts: RefineOptions):
    """The schedule, training config and corpus, each checked (exit 2 naming the option)."""
    from zeronas.proxies.device import check_device
    from zeronas.refine.halving import Schedule, parse_rungs

    with _bad_input("--rungs/--eta/--unit: "):
        schedule = Schedule(parse_rungs(opts.rungs), opts.eta, opts.unit)  # type: ignore[arg-type]
    with _bad_input():
        check_device(opts.device)
    try:
        config = _train_config(opts)
    except ValueError as exc:
        raise fail(str(exc))
    with _bad_input():
        corpus = _training_corpus(opts.corpus)
    return schedule, config, corpus


class _bad_input:
    """Turn the library's input errors into ``error: ...`` and exit code 2."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        from zeronas.cells.recipe import RecipeError
        from zeronas.core.config import ConfigError
        from zeronas.data.corpus import CorpusError
        from zeronas.refine.halving import ScheduleError
        from zeronas.refine.ray_tune import RayUnavailable
        from zeronas.refine.rungs import RungError
        from zeronas.refine.run import RefineError
        from zeronas.refine.state import RefineStateError
        from zeronas.train import CheckpointError

        known = (RecipeError, ConfigError, CorpusError, ScheduleError, RayUnavailable, RungError, RefineError,
                 RefineStateError, CheckpointError)
        if exc is not None and isinstance(exc, known):
            raise fail(self.prefix + str(exc))
        return False


def continue_command(result, opts: RefineOptions) -> Optional[str]:
    """The ``zeronas train`` command that continues the winner's checkpoint to full training."""
    folder = result.winner_folder()
    if folder is None:
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


def _print(result, command: Optional[str], opts: RefineOptions) -> None:
    schedule = result.schedule
    table = Table(title=f"refine of {len(result.candidates)} cells, {schedule.describe()} ({result.executor})")
    for col in ("candidate", "rung", *[f"ppl @{r:g}" for r in schedule.rungs], "seconds", "status"):
        table.add_column(col, justify="left" if col in ("candidate", "status") else "right")
    for row in result.rows():
        name = row["name"] + (" (ref)" if row["reference"] else "")
        ppls = [("diverged" if (i == row["rung"] - 1 and row["diverged"]) else
                 (f"{row['val_ppl'][i]:.2f}" if i < row["rung"] and row["val_ppl"][i] is not None else "-"))
                for i in range(len(schedule.rungs))]
        style = "bold" if row["status"] == "winner" else ("dim" if row["status"] != "last rung" else None)
        table.add_row(name, str(row["rung"]), *ppls, f"{row['seconds']:.1f}", row["status"], style=style)
    out.print(table)
    winner = result.winner
    spent = f"{result.spent():g} {schedule.unit} of training in all"
    if winner is None:
        out.print(f"no winner: every candidate still in at the last rung reached diverged ({spent})")
        return
    ppl = result.measures[result.winner_index][-1].val_ppl
    out.print(f"winner: {winner.name} ({winner.cell.canonical_id}), validation ppl {ppl:.2f} at "
              f"{result.measures[result.winner_index][-1].budget:g} {schedule.unit}; {spent}", highlight=False)
    out.print(f"continue it to full training ({opts.epochs} epochs) with:\n  {command}", highlight=False,
              markup=False)
    if opts.plot is not None:
        out.print(f"curves written to {opts.plot}", highlight=False, markup=False)
    if math.isfinite(ppl) and result.resumed:
        out.print(f"(resumed from {result.folder}; {result.trained} rung trainings done now)", highlight=False,
                  markup=False)
