"""What every command shares: the consoles, the one-line failure, the scoring config from options, printing
scores."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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


def print_scores(results, config, as_json: bool, title: str, fields: dict, note: str = "") -> None:
    """The scores of one cell or model: one JSON object (``fields``, the config, the scores) or a table, then
    ``note`` (a line about the whole model). A spec's verdict (``rank!gate``) shows whether the gates pass."""
    if as_json:
        print(json.dumps({**fields, "config": config.to_dict(), "config_hash": config.config_hash(),
                          "scores": {n: s.to_dict() for n, s in results.items()}}))
        return
    gated = any(getattr(s, "passes", None) is not None for s in results.values())
    table = Table(title=f"{title} (config {config.config_hash()}, seed {config.seed})")
    table.add_column("proxy", no_wrap=True)
    for col in ("value", "status", *(("gates",) if gated else ()), "seconds", "message"):
        table.add_column(col)
    for n, s in results.items():
        passes = getattr(s, "passes", None)
        verdict = (("" if passes is None else "pass" if passes else "FAIL"),) if gated else ()
        table.add_row(escape(n), f"{s.value:.6g}" if s.value is not None else "-", s.status, *verdict,
                      f"{s.seconds:.2f}", escape(s.message))
    out.print(table)
    if note:
        out.print(f"note: {note}", highlight=False, markup=False)


def scoring_config(seed: Optional[int], device: Optional[str], batch_size: Optional[int], seq_len: Optional[int],
                    config_file: Optional[Path] = None, corpus: Optional[str] = None, default=None):
    """The default scoring config (or ``default``), or a JSON file's, with the command-line options that were
    given on top (an option left out never overrides the file). ``--corpus`` keeps the file's probe_split if it
    names one, else takes the corpus's default (valid for wikitext-2). Checked here, device and corpus included:
    a bad config or corpus stops the command before anything is scored or stored."""
    from zeronas.data.corpus import CorpusError
    from zeronas.proxies import ScoringConfig
    from zeronas.core.config import ConfigError
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


def proxy_specs(text: str, option: str = "--proxies") -> list[str]:
    """Comma-separated proxies and specs (``a+b``, ``rank!gate``), each checked against the registry, or a one-line
    error naming the option."""
    from zeronas.core.spec import SpecError
    from zeronas.proxies.registry import parse_specs

    try:
        return parse_specs(text)
    except SpecError as exc:
        raise fail(f"{option}: {exc}")


@contextmanager
def proxies_progress(label: str, quiet: bool) -> Iterator[Callable[[int, int, str], None]]:
    """Progress over the proxies of one cell or model (``score``, ``score-model``): the callback of
    :func:`zeronas.proxies.runner.score_model`'s ``progress``, the proxy now running as its detail."""
    from zeronas.progress import ProgressBar

    with ProgressBar(label, enabled=not quiet, transient=True, unit="proxies", detail="{proxy}", proxy="") as bar:
        yield lambda done, total, name: bar.update(completed=done, total=total, proxy=name)
