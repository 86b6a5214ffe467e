"""One progress display for every long command (scoring, training, search, fitting), on stderr.

On a terminal it is a live rich bar; when stderr is not a terminal (a log file, a pipe, a batch job) it is a
plain line every ``every_s`` seconds and one when the work is done, so that a log still says how far a run got;
disabled, it shows nothing. Library code takes a ``progress`` flag and opens one of these; commands never build
bars of their own.

    with ProgressBar("scoring", total=len(cells), unit="cells", detail="{failed} failed") as bar:
        for cell in cells:
            ...
            bar.update(advance=1, failed=n_failed)
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Callable, Optional

__all__ = ["ProgressBar", "rate_text"]

_UNSET: Any = object()


def rate_text(per_second: float, unit: str) -> str:
    """``"1.5 cells/s"``, or per minute below 0.1 per second; ``"-- cells/s"`` before anything is done."""
    if not per_second:
        return f"-- {unit}/s"
    return f"{per_second:.3g} {unit}/s" if per_second >= 0.1 else f"{60 * per_second:.3g} {unit}/min"


class ProgressBar:
    """A progress display of one piece of work: ``label`` (changeable), ``completed`` of ``total`` (None:
    unknown), free ``fields`` shown through the ``detail`` format string (``"{failed} failed"``), a rate of
    ``unit`` per second when ``unit`` is given, and the time left when ``eta``.

    ``line(bar)`` writes the plain line for a stderr that is not a terminal (default: label, count, detail,
    rate and elapsed time); ``stream`` replaces stderr (for tests). Use as a context manager."""

    def __init__(self, label: str, total: Optional[int] = None, *, enabled: bool = True, completed: int = 0,
                 detail: str = "", unit: str = "", eta: bool = False, transient: bool = False,
                 line: Optional[Callable[["ProgressBar"], str]] = None, every_s: float = 60.0,
                 stream: Optional[IO[str]] = None, **fields: Any) -> None:
        self.label, self.total, self.completed = label, total, completed
        self.detail, self.unit, self.fields = detail, unit, dict(fields)
        self.enabled, self.every_s = enabled, every_s
        self._line, self._stream = line, stream
        self._start = self._last_line = time.monotonic()
        self._first = completed
        self._printed_at: Optional[int] = None  # the count the last plain line showed
        self.plain = enabled and not self._isatty()
        self._rich: Any = None
        if enabled and not self.plain:
            self._rich, self._task = self._make_rich(eta, transient)

    # -- what the display shows ------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        """Seconds since the bar was made."""
        return time.monotonic() - self._start

    @property
    def rate(self) -> float:
        """Items completed per second since the bar was made (those already done at the start not counted)."""
        return (self.completed - self._first) / max(self.elapsed, 1e-9)

    def detail_text(self) -> str:
        return self.detail.format(**self.fields) if self.detail else ""

    def plain_line(self) -> str:
        """The line written to a stderr that is not a terminal."""
        if self._line is not None:
            return self._line(self)
        count = f"{self.completed}/{self.total}" if self.total is not None else f"{self.completed}"
        parts = [f"{self.label} {count}" + (f" {self.unit}" if self.unit else "")]
        if self.detail_text():
            parts.append(self.detail_text())
        if self.unit:
            parts.append(rate_text(self.rate, self.unit))
        parts.append(f"{self.elapsed:.0f} s")
        return ", ".join(parts)

    # -- updating ----------------------------------------------------------------------------------------------
    def update(self, *, completed: Optional[int] = None, advance: int = 0, total: Any = _UNSET,
               label: Optional[str] = None, **fields: Any) -> None:
        """Set the count (``completed``) or add to it (``advance``); change ``total``, ``label`` or fields."""
        if completed is not None:
            self.completed = completed
        self.completed += advance
        if total is not _UNSET:
            self.total = total
        if label is not None:
            self.label = label
        self.fields.update(fields)
        if self._rich is not None:
            self._rich.update(self._task, completed=self.completed, total=self.total, description=self.label,
                              detail=self.detail_text())
        elif self.plain:
            done = self.total is not None and self.completed >= self.total
            if time.monotonic() - self._last_line >= self.every_s or (done and self._printed_at != self.completed):
                self._write_line()

    def print(self, message: str) -> None:
        """A message above the bar (a plain line in a log); nothing when disabled."""
        if self._rich is not None:
            self._rich.console.print(message, highlight=False, markup=False)
        elif self.plain:
            print(message, file=self._out(), flush=True)

    # -- life cycle --------------------------------------------------------------------------------------------
    def __enter__(self) -> "ProgressBar":
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    # -- inside ------------------------------------------------------------------------------------------------
    def _out(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    def _isatty(self) -> bool:
        try:
            return bool(self._out().isatty())
        except (AttributeError, ValueError):  # a closed or odd stream is no terminal
            return False

    def _write_line(self) -> None:
        self._last_line = time.monotonic()
        self._printed_at = self.completed
        print(self.plain_line(), file=self._out(), flush=True)

    def _make_rich(self, eta: bool, transient: bool) -> tuple[Any, Any]:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        from rich.text import Text

        unit = self.unit

        class RateColumn(ProgressColumn):
            def render(self, task: Any) -> Text:
                return Text(rate_text(task.finished_speed or task.speed or 0.0, unit), style="progress.data.speed")

        columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn()]
        if unit:
            columns.append(RateColumn())
        columns += [TextColumn("{task.fields[detail]}", markup=False), TimeElapsedColumn()]
        if eta:
            columns += [TextColumn("eta"), TimeRemainingColumn()]
        console = Console(file=self._stream) if self._stream is not None else Console(stderr=True)
        rich = Progress(*columns, console=console, transient=transient)
        task = rich.add_task(self.label, total=self.total, completed=self.completed, detail=self.detail_text())
        return rich, task
