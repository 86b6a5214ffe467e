"""``zeronas score-model``: score a user's own PyTorch recurrent language model from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from zeronas.cli._common import fail, print_scores, proxies_progress, proxy_specs, scoring_config
from zeronas.cli._options import BatchSize, Device, Quiet, SeqLen


def score_model_cmd(
        factory: str = typer.Argument(..., help="module:attribute of your model: an nn.Module, or a class or "
                                                "function that builds one with no arguments."),
        checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="State dict to load (torch.save of "
                                                  "model.state_dict(); read weights-only)."),
        proxies: str = typer.Option("all", "--proxies", "-p",
                                    help="Comma-separated proxies, rank combinations a+b and gated specs "
                                         "rank!gate (e.g. hidden_cov!state_escape, the recommended method: its "
                                         "value and whether the model passes the gate), or all."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the probe batch and the noise (default 0)."),
        device: Device = None, batch_size: BatchSize = None, seq_len: SeqLen = None,
        corpus: Optional[str] = typer.Option(None, "--corpus", help="ptb (default), wikitext-2, or a folder or text "
                                                                    "file; its vocabulary must fit the model's."),
        config_file: Optional[Path] = typer.Option(None, "--scoring-config",
                                                   help="JSON file of ScoringConfig fields (its probe batch, seed "
                                                        "and corpus; model sizes do not apply)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        quiet: Quiet = False) -> None:
    """Score your own PyTorch recurrent language model (nn.LSTM/GRU/RNN, or any model an adapter takes) with the
    training-free proxies, as it is: its own weights. A proxy it cannot support says why (status unsupported)."""
    from zeronas.models.adapters import AdapterError, adapt_lm, ignored_note
    from zeronas.models.load import ModelLoadError, build_user_model, load_checkpoint
    from zeronas.proxies import list_proxies
    from zeronas.proxies.runner import score_model

    names = [s.name for s in list_proxies()] if proxies.strip() == "all" else proxy_specs(proxies)
    config = scoring_config(seed, device, batch_size, seq_len, config_file, corpus=corpus)
    try:
        model = build_user_model(factory)
        if checkpoint is not None:
            load_checkpoint(model, checkpoint)
        lm = adapt_lm(model)
        with proxies_progress("scoring", quiet) as progress:
            results = score_model(lm, names, config=config, progress=progress)
    except (ModelLoadError, AdapterError, ValueError, TypeError) as exc:
        raise fail(str(exc))
    n_params = sum(p.numel() for p in model.parameters())  # parameters() lists a shared (tied) one once
    ignored = list(getattr(lm, "ignored", ()))
    print_scores(results, config, as_json, f"{factory}, {n_params:,} parameters",
                 {"model": factory, "checkpoint": checkpoint.name if checkpoint else None, "parameters": n_params,
                  "not_scored": ignored}, note=ignored_note(model, lm))
