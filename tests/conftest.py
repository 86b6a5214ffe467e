"""Test-wide settings and helpers.

One torch thread: the test models are tiny, and thread start-up costs more than it saves."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from typing import Callable

import pytest
import torch

torch.set_num_threads(1)


def _sigkill_once(command: list[str], env: dict[str, str], count: Callable[[], int], at_least: int,
                  deadline_s: float) -> int:
    """Start ``command``, poll ``count()`` (e.g. cells in its store) and SIGKILL the process as soon as it reaches
    ``at_least``; returns its pid. Fails when the process ends by itself first or the deadline passes."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + deadline_s
        reached = 0
        while reached < at_least:
            assert proc.poll() is None, f"the process ended before it could be killed: {proc.communicate()}"
            assert time.monotonic() < deadline, f"fewer than {at_least} cells stored in {deadline_s} s"
            time.sleep(0.05)
            try:
                reached = count()
            except sqlite3.OperationalError:  # the store or its tables do not exist yet
                reached = 0
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


@pytest.fixture
def sigkill_once() -> Callable[..., int]:
    """:func:`_sigkill_once`: run a real process and kill it with SIGKILL mid-run."""
    return _sigkill_once
