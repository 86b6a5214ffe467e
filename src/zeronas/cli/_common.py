"""What every command shares: the consoles, the one-line failure, the scoring config from options, printing
scores."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table

# C0 controls but newline and tab, DEL, C1 controls (0x9b is a one-byte CSI), Unicode bidirectional overrides
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_ALL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_char(m: "re.Match[str]") -> str:
    c = ord(m.group())
    return {10: "\\n", 9: "\\t", 13: "\\r"}.get(c) or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")


def safe(text: object, *, one_line: bool = False) -> str:
    """``text`` with control characters written as escapes (``\\x1b``): a path, a key name or a proxy name of the
    user's can never move the cursor, recolour or retitle the terminal. ``one_line`` escapes newlines and tabs
    too."""
    return (_CONTROL_ALL if one_line else _CONTROL).sub(_escape_char, str(text))


class SafeConsole(Console):
    """A console that escapes control characters in everything it prints (Rich's own styling and cursor codes
    are added after, so they are kept)."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(Segment(safe(t), st, c) if not c and t else Segment(t, st, c)
                                      for t, st, c in buffer)


out = SafeConsole(soft_wrap=True)
err = SafeConsole(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2
CORPUS_HELP = ("Probe corpus: ptb (bundled, default), wikitext-2 (bundled valid/test; probes valid), or a folder "
               "with train.txt/valid.txt/test.txt or one text file (every split). Stored scores name a user "
               "corpus by its sha256, not its path.")


def fail(message: str) -> "typer.Exit":
    """Print ``error: MESSAGE`` on stderr and return the exit (code 2) to raise. The message is printed as plain
    text: it may hold user input or exception text, whose brackets are not markup."""
    err.print(f"[bold red]error:[/] {escape(safe(message, one_line=True))}", highlight=False, markup=True,
              soft_wrap=True)
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


def _config_file(config_file: Path):
    """The scoring config of a JSON file (a regular file of bounded size) and the probe split it names."""
    from zeronas.files import MiB, FileArgError, read_text
    from zeronas.proxies import ScoringConfig

    try:  # never a FIFO that blocks or /dev/zero
        text = read_text(config_file, what="scoring config file", limit=MiB)
    except FileArgError as exc:
        raise fail(f"--scoring-config: {exc}")
    try:
        data = json.loads(text)
        return ScoringConfig.from_dict(data), data.get("probe_split")
    except (ValueError, TypeError, RecursionError) as exc:
        raise fail(f"{config_file}: not a scoring config: {exc}")


def _check_options(changes: dict) -> None:
    """Each option on its own, so that a bad ``--seed`` or an unusable ``--device`` is blamed on the option, not
    on the scoring config file it is laid over."""
    from zeronas.core.config import ConfigError, ScoringConfig
    from zeronas.proxies.device import check_device

    for name, value in changes.items():
        try:
            ScoringConfig().with_(**{name: value}).validate()
            if name == "device":
                check_device(value)
        except ConfigError as exc:
            raise fail(f"--{name.replace('_', '-')}: {exc}")


def scoring_config(seed: Optional[int], device: Optional[str], batch_size: Optional[int], seq_len: Optional[int],
                    config_file: Optional[Path] = None, corpus: Optional[str] = None, default=None):
    """The default scoring config (or ``default``), or a JSON file's, with the command-line options that were
    given on top (an option left out never overrides the file). ``--corpus`` keeps the file's probe_split if it
    names one, else takes the corpus's default (valid for wikitext-2). Checked here, device and corpus included:
    a bad config or corpus stops the command before anything is scored or stored."""
    from zeronas.core.config import ConfigError
    from zeronas.data.corpus import CorpusError
    from zeronas.proxies import ScoringConfig
    from zeronas.proxies.device import check_config

    changes = {k: v for k, v in {"seed": seed, "device": device, "batch_size": batch_size,
                                 "seq_len": seq_len}.items() if v is not None}
    _check_options(changes)
    base, file_split = (default or ScoringConfig(), None) if config_file is None else _config_file(config_file)
    try:
        config = base.with_(**changes)
        if corpus is not None:
            config = config.with_corpus(corpus, probe_split=file_split)
        return check_config(config)
    except CorpusError as exc:
        raise fail(f"--corpus: {exc}")
    except ConfigError as exc:
        raise fail(f"{config_file}: {exc}" if config_file is not None else str(exc))


def command_line() -> str:
    """The command as typed, for a report or a curve file: arguments that are not valid UTF-8 (bytes a terminal
    let through) written with backslash escapes, so that writing it never fails after the work is done."""
    import sys

    text = "zeronas " + " ".join(sys.argv[1:])
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
