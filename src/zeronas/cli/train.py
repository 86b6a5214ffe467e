"""``zeronas train``: train a cell with the NAS-Bench-NLP protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from zeronas.cells.recipe import RecipeError
from zeronas.bench.resolve import resolve_cell
from zeronas.cli._common import fail, out
from zeronas.cli._options import Quiet


def train_cmd(spec: str = typer.Argument(..., help="Recipe file, rnn|lstm|gru, a named cell, or a benchmark id."),
              epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs (protocol default: 50)."),
              steps: Optional[int] = typer.Option(None, "--steps", help="Stop after this many optimizer steps."),
              quick: bool = typer.Option(False, "--quick", help="Tiny model, 20 steps (unless --epochs or --steps "
                                                                "says how long): a smoke test."),
              seed: int = typer.Option(0, "--seed"),
              checkpoint: Optional[Path] = typer.Option(None, "--checkpoint",
                                                        help="Folder for checkpoints; an existing one is resumed."),
              corpus_name: Optional[str] = typer.Option(None, "--corpus",
                                                        help="ptb (bundled, default), a folder with train.txt, "
                                                             "valid.txt and test.txt, or one text file, cut by "
                                                             "lines into train (first 80%), valid and test (10% "
                                                             "each)."),
              device: str = typer.Option("cpu", "--device"),
              as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress still goes to "
                                                                 "stderr)."),
              quiet: Quiet = False) -> None:
    """Train a cell with the NAS-Bench-NLP protocol (on PTB, or --corpus) and report validation and test
    perplexity."""
    from zeronas.data.corpus import CorpusError, load_training_corpus
    from zeronas.proxies.device import check_device
    from zeronas.train import CheckpointError, TrainConfig, train

    try:
        check_device(device)
        cell = resolve_cell(spec)
        changes = {k: v for k, v in {"epochs": epochs, "max_steps": steps}.items() if v is not None}
        if quick and epochs is not None and steps is None:
            changes["max_steps"] = None  # --epochs says how long (e.g. continuing `zeronas refine --quick`)
        config = (TrainConfig.quick(seed=seed, device=device, **changes) if quick
                  else TrainConfig(seed=seed, device=device, **changes))
        corpus = load_training_corpus(corpus_name) if corpus_name is not None else None
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
