"""``zeronas score-model``: score a user's own PyTorch recurrent language model from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from zeronas.cli._common import fail, print_scores, scoring_config


def score_model_cmd(
        factory: str = typer.Argument(..., help="module:attribute of your model: an nn.Module, or a class or "
                                                "function that builds one with no arguments."),
        checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="State dict to load (torch.save of "
                                                  "model.state_dict(); read weights-only)."),
        proxies: str = typer.Option("all", "--proxies", "-p", help="Comma-separated proxy names, or all."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the probe batch and the noise (default 0)."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu (default), cuda, cuda:1, ..."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size"),
        seq_len: Optional[int] = typer.Option(None, "--seq-len"),
        corpus: Optional[str] = typer.Option(None, "--corpus", help="ptb (default), wikitext-2, or a folder or text "
                                                                    "file; its vocabulary must fit the model's."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Score your own PyTorch recurrent language model (nn.LSTM/GRU/RNN, or any model an adapter takes) with the
    training-free proxies, as it is: its own weights. A proxy it cannot support says why (status unsupported)."""
    from zeronas.models.adapters import AdapterError, adapt_lm
    from zeronas.models.load import ModelLoadError, build_user_model, load_checkpoint
    from zeronas.proxies import list_proxies, parse_proxy_list
    from zeronas.proxies.runner import score_model

    try:
        names = [s.name for s in list_proxies()] if proxies.strip() == "all" else parse_proxy_list(proxies)
    except KeyError as exc:
        raise fail(str(exc).strip('"'))
    config = scoring_config(seed, device, batch_size, seq_len, corpus=corpus)
    try:
        model = build_user_model(factory)
        if checkpoint is not None:
            load_checkpoint(model, checkpoint)
        lm = adapt_lm(model)
        results = score_model(lm, names, config=config)
    except (ModelLoadError, AdapterError, ValueError, TypeError) as exc:
        raise fail(str(exc))
    n_params = sum(p.numel() for p in model.parameters())  # parameters() lists a shared (tied) one once
    print_scores(results, config, as_json, f"{factory}, {n_params:,} parameters",
                 {"model": factory, "checkpoint": checkpoint.name if checkpoint else None, "parameters": n_params})
