"""The ``zeronas`` command line (see :mod:`zeronas.cli.app`)."""

from zeronas.cli.app import app, main

__all__ = ["app", "main"]
