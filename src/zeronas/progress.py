"""Progress of a long command on stderr: a live bar on a terminal, plain lines when stderr is a file or a pipe.

A live bar drawn into a log file is either lost (rich draws nothing there) or garbage (cursor codes), so when
stderr is not a terminal the same progress is written as one plain line every ``interval_s`` seconds and once
at the end. Library code and commands alike use it::

    with ProgressLine("evolution", total=200, unit="cells", enabled=not quiet) as bar:
        bar.update(completed=done, note="best 0.12")
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

__all__ = ["ProgressLine", "PLAIN_INTERVAL_S"]

PLAIN_INTERVAL_S = 60.0  # a plain line at most this often (and one at the end)


class ProgressLine:
    """One task's progress: ``label``, ``completed``/``total`` ``unit``, a free-text ``note``, the time taken.
    ``enabled=False`` shows nothing. ``terminal`` (default: whether stderr is one) picks the live bar. Plain lines
    come every ``interval_s`` and, with ``final_line`` (or after any earlier line), once at the end."""

    def __init__(self, label: str, total: Optional[int] = None, *, unit: str = "", enabled: bool = True,
                 interval_s: float = PLAIN_INTERVAL_S, terminal: Optional[bool] = None, stream: Any = None,
                 final_line: bool = True) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.completed, self.note = 0, ""
        self.enabled = enabled
        self.interval_s = interval_s
        self._stream = stream
        self._start = self._last = time.monotonic()
        self._printed: Optional[tuple[int, str]] = None
        self._final_line = final_line
        self._bar: Any = None
        if enabled and (terminal if terminal is not None else _stderr_is_terminal()):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn(f"[bold]{_escape(label)}"), BarColumn(bar_width=20),
                                 MofNCompleteColumn(), TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task(label, total=total, note="")

    def __enter__(self) -> "ProgressLine":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif (self.enabled and exc_type is None and (self._final_line or self._printed is not None)
              and self._printed != (self.completed, self.note)):
            self._line()

    def update(self, completed: Optional[int] = None, total: Optional[int] = None, note: Optional[str] = None,
               advance: int = 0) -> None:
        """Set what is done (or ``advance`` it), the total if it became known, and the note."""
        if completed is not None:
            self.completed = completed
        self.completed += advance
        if total is not None:
            self.total = total
        if note is not None:
            self.note = note
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, total=self.total, note=_escape(self.note))
        elif self.enabled and time.monotonic() - self._last >= self.interval_s:
            self._line()

    def text(self) -> str:
        """The plain line: ``label: 40/200 cells, best 0.12, 35 s``."""
        done = f"{self.completed}/{self.total}" if self.total is not None else f"{self.completed}"
        parts = [f"{self.label}: {done}{' ' + self.unit if self.unit else ''}"]
        if self.note:
            parts.append(self.note)
        parts.append(f"{time.monotonic() - self._start:.0f} s")
        return ", ".join(parts)

    def _line(self) -> None:
        self._last = time.monotonic()
        self._printed = (self.completed, self.note)
        print(self.text(), file=self._stream or sys.stderr, flush=True)


def _stderr_is_terminal() -> bool:
    from rich.console import Console

    return Console(stderr=True).is_terminal


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
