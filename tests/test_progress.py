"""The one progress helper: a live bar on a terminal, plain lines in a log, nothing when disabled."""

from __future__ import annotations

import io

from zeronas.progress import ProgressBar, rate_text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_plain_line_at_the_end_and_no_bar():
    log = io.StringIO()
    with ProgressBar("scoring", 3, unit="cells", detail="{failed} failed", failed=0, stream=log) as bar:
        assert bar.plain
        for i in range(3):
            bar.update(advance=1, failed=i)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1  # the minute has not passed: only the line of the finished work
    assert lines[0].startswith("scoring 3/3 cells, 2 failed, ") and lines[0].endswith(" s")
    assert "\x1b[" not in log.getvalue()  # no terminal control codes in a log


def test_a_log_gets_a_line_every_interval_and_messages():
    log = io.StringIO()
    with ProgressBar("evolution", None, every_s=0.0, detail="{best}", best="", stream=log) as bar:
        bar.update(completed=5, best="best 1.5")
        bar.print("a message")
        bar.update(completed=7, label="evolution round 2")
    assert log.getvalue().splitlines()[:3] == ["evolution 5, best 1.5, 0 s", "a message",
                                               "evolution round 2 7, best 1.5, 0 s"]


def test_a_custom_plain_line():
    log = io.StringIO()
    with ProgressBar("x", 2, stream=log, line=lambda b: f"done {b.completed} of {b.total}") as bar:
        bar.update(completed=2)
    assert log.getvalue() == "done 2 of 2\n"


def test_a_terminal_gets_a_rich_bar():
    term = Terminal()
    with ProgressBar("fitting", 4, stream=term, detail="{loss} loss", loss="0.5") as bar:
        assert not bar.plain
        bar.update(advance=4, loss="0.25")
    text = term.getvalue()
    assert "fitting" in text and "4/4" in text and "0.25 loss" in text


def test_disabled_shows_nothing():
    for stream in (io.StringIO(), Terminal()):
        with ProgressBar("scoring", 2, enabled=False, stream=stream) as bar:
            bar.update(advance=2)
            bar.print("hidden")
        assert stream.getvalue() == ""


def test_rate_text():
    assert rate_text(0.0, "cells") == "-- cells/s"
    assert rate_text(2.0, "cells") == "2 cells/s"
    assert rate_text(0.05, "cells") == "3 cells/min"
