"""Is this file a zeronas results store? Decided before anything is written to it, and without any write at all.

A zeronas store is stamped with its own SQLite ``application_id`` (:data:`APPLICATION_ID`, the bytes ``zNAS``).
A file is taken as a store only when it is missing or empty (a new store), a SQLite database with nothing in it
(no table, view, index or trigger, no application id, no user version), or one holding zeronas's schema alone at
a schema version this zeronas reads. Anything else is another application's file and is refused, before any
pragma that writes (the WAL switch), so it is left byte for byte as it was. The header is read directly and the
schema through an ``immutable`` read-only connection, which creates no ``-wal``/``-shm`` file beside a database
and works in a read-only folder.
"""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from zeronas.store.base import StoreError

APPLICATION_ID = 0x7A4E4153  # "zNAS": PRAGMA application_id of every store this zeronas writes
SCHEMA_VERSIONS = ("1", "2")  # what this zeronas reads (1 is migrated on its first read-write open)
ZERONAS_TABLES = frozenset({"meta", "configs", "archs", "results"})
ZERONAS_TRIGGERS = frozenset({"results_immutable", "configs_immutable", "archs_immutable"})
_MAGIC = b"SQLite format 3\x00"


def _header(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(100)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _schema(path: Path) -> tuple[list[tuple[str, str, str]], str | None]:
    """The schema objects ``(type, name, table)`` and the zeronas schema version (None without one), read
    without locking or writing anything."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            objects = [tuple(r) for r in conn.execute("SELECT type, name, tbl_name FROM sqlite_master")]
            version = None
            if ("table", "meta", "meta") in objects:
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = None if row is None else str(row[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot read it as SQLite ({exc}); refusing to use it as a results store") from None
    return objects, version  # type: ignore[return-value]


def _foreign(objects: list[tuple[str, str, str]]) -> list[str]:
    """The schema objects that are not zeronas's."""
    other = []
    for kind, name, table in objects:
        ours = ((kind == "table" and name in ZERONAS_TABLES) or (kind == "index" and table in ZERONAS_TABLES)
                or (kind == "trigger" and name in ZERONAS_TRIGGERS))
        if not ours:
            other.append(f"{kind} {name}")
    return other


def check_store_file(path: str, *, must_exist: bool = False) -> bool:
    """Raise :class:`StoreError` unless ``path`` is a zeronas store or can become one; True when it holds a store
    already. ``must_exist``: a missing, empty or blank file is an error too (commands that only read or delete)."""
    p = Path(path)
    try:
        info = p.stat()
    except FileNotFoundError:
        if must_exist:
            raise StoreError(f"{path}: no such results store") from None
        return False
    except OSError as exc:
        raise StoreError(f"{path}: cannot use as a results store: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"{path}: not a file, so not a results store")
    if info.st_size == 0:
        if must_exist:
            raise StoreError(f"{path}: an empty file, not a results store")
        return False
    header = _header(p)
    if not header.startswith(_MAGIC):
        raise StoreError(f"{path}: not a SQLite database, so not a zeronas results store; refusing to use it")
    if len(header) < 100:
        raise StoreError(f"{path}: a truncated SQLite file (no full header); refusing to use it")
    user_version = int.from_bytes(header[60:64], "big")
    app_id = int.from_bytes(header[68:72], "big")
    if app_id not in (0, APPLICATION_ID):
        raise StoreError(f"{path}: a SQLite database of another application (application id {app_id:#010x}), "
                         "not a zeronas results store; refusing to use it")
    if user_version != 0:
        raise StoreError(f"{path}: a SQLite database of another application (user version {user_version}), not "
                         "a zeronas results store; refusing to use it")
    objects, version = _schema(p)
    other = _foreign(objects)
    if other:
        raise StoreError(f"{path}: a SQLite database of another application ({', '.join(sorted(other)[:5])}), not "
                         "a zeronas results store; refusing to use it")
    if not objects:
        if app_id == APPLICATION_ID:
            raise StoreError(f"{path}: a zeronas store without its tables (damaged); refusing to use it")
        if must_exist:
            raise StoreError(f"{path}: an empty SQLite database, not a results store")
        return False
    if version is None:
        raise StoreError(f"{path}: zeronas's tables without a schema version (damaged, or another application's); "
                         "refusing to use it")
    if version not in SCHEMA_VERSIONS:
        raise StoreError(f"{path}: schema version {version}, this zeronas reads version {SCHEMA_VERSIONS[-1]}; "
                         "refusing to use it (a newer zeronas wrote it?)")
    return True


__all__ = ["APPLICATION_ID", "SCHEMA_VERSIONS", "ZERONAS_TABLES", "check_store_file"]
