"""File arguments: what is read is a regular file of bounded size, and what is written never clobbers a file the
user did not mean to replace (above all, the results store).

A FIFO or a device (``/dev/zero``) given where a file is expected would block forever or fill memory; every file
a command reads goes through :func:`read_regular` (or :func:`check_regular` for a reader that must open the file
itself), which opens without blocking, checks the kind with ``fstat`` on the open descriptor (no race between a
check and the open) and reads at most ``limit`` bytes."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

MiB = 1 << 20
GiB = 1 << 30
SIDECARS = ("-wal", "-shm", "-journal")  # SQLite's files beside a database


class FileArgError(ValueError):
    """A file argument that cannot be used; the message names the file and why."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _open_regular(path: Path, what: str, limit: int) -> tuple[int, int]:
    """An open read-only descriptor of ``path`` and its size, after checking it is a regular file of at most
    ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileArgError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise FileArgError(f"{path}: cannot open the {what}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileArgError(f"{path}: {_kind(info.st_mode)}; a {what} must be a regular file")
        if info.st_size > limit:
            raise FileArgError(f"{path}: {info.st_size:,} bytes, more than a {what} can be ({limit:,} bytes)")
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def read_regular(path: str | Path, *, what: str = "file", limit: int = 64 * MiB) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; :class:`FileArgError` naming the file
    otherwise (missing, a folder, a FIFO, a device, too large, unreadable)."""
    p = Path(path)
    fd, size = _open_regular(p, what, limit)
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise FileArgError(f"{p}: cannot read the {what}: {exc.strerror or exc}") from None
    if len(data) > limit:  # grew since fstat
        raise FileArgError(f"{p}: more than a {what} can be ({limit:,} bytes)")
    return data


def read_text(path: str | Path, *, what: str = "file", limit: int = 64 * MiB) -> str:
    """:func:`read_regular`, decoded as UTF-8 (:class:`FileArgError` if it is not)."""
    data = read_regular(path, what=what, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileArgError(f"{path}: cannot read it as UTF-8 text: {exc}") from None


def check_regular(path: str | Path, *, what: str = "file", limit: int = 64 * GiB) -> Path:
    """Check that ``path`` is a regular file of at most ``limit`` bytes (for a reader that opens it itself, e.g.
    ``torch.load``); return it."""
    p = Path(path)
    fd, _ = _open_regular(p, what, limit)
    os.close(fd)
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str | Path, *, force: bool = False, protected: Iterable[str | Path] = (),
                 what: str = "output file", may_replace=None) -> Path:
    """Refuse an output path before anything is opened for writing: one that is (or is a SQLite side file of) a
    ``protected`` file (the results store), even with ``force``; anything but a regular file; an existing file
    unless ``force`` or ``may_replace(path)`` says it is one the command itself wrote (e.g. an older model file).
    Returns the path."""
    p = Path(path)
    for kept in protected:
        base = Path(kept)
        for candidate in (base, *(Path(f"{base}{s}") for s in SIDECARS)):
            if _same_file(p, candidate) or p.expanduser().resolve() == candidate.expanduser().resolve():
                side = "" if candidate == base else f" (its {candidate.name[len(base.name):]} file)"
                raise FileArgError(f"{p}: is the results store {base}{side}; refusing to write the {what} over it")
    try:
        info = p.stat()
    except FileNotFoundError:
        return p
    except OSError as exc:
        raise FileArgError(f"{p}: cannot use as the {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileArgError(f"{p}: is {_kind(info.st_mode)}, not a file (the {what} is written to a file)")
    if not force and not (may_replace is not None and may_replace(p)):
        raise FileArgError(f"{p}: already exists; refusing to replace it (pass --force to replace it)")
    return p


__all__ = ["FileArgError", "GiB", "MiB", "check_output", "check_regular", "read_regular", "read_text"]
