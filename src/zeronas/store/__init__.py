"""Results stores: where scores live, keyed by (canonical arch id, proxy, revision, scoring-config hash, seed).

A store is opened from a URL (:func:`open_store`): ``sqlite:///relative/path.db``, ``sqlite:////abs/path.db``,
``sqlite:///:memory:`` or a plain file path. Stored records are immutable: writing a key that already exists
leaves the first record in place. Failures (``nan``, ``error``, ``timeout`` ...) are results like any other, so
a cell whose proxy failed is not scored again. The store never imports the proxy registry or torch: the caller
gives each proxy's revision (see :class:`ResultStore`). Another backend is a class that implements
:class:`ResultStore`, passed to the functions that take a store in place of a URL.
"""

from __future__ import annotations

import re
from pathlib import Path

from zeronas.store.base import DEFAULT_STORE, ResultStore, Revisions, StoreError
from zeronas.store.sqlite import SQLiteStore, sqlite_path_from_url

_SCHEME_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def open_store(url: str | Path | ResultStore, *, read_only: bool = False, create: bool = True) -> ResultStore:
    """Open a store from a URL or a plain path (SQLite). A store object is returned as it is. ``read_only``: for
    commands that only read (a read-only file can be read; nothing is written, not even the schema); a store that
    does not exist is then an error. ``create=False``: the same for a read-write open (commands that delete or
    compact: a mistyped path is an error, never a new empty store)."""
    if isinstance(url, ResultStore) and not isinstance(url, (str, Path)):
        return url
    if isinstance(url, Path):
        return SQLiteStore(url, read_only=read_only, create=create)
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"not a store URL: {url!r}")
    text = url.strip()
    if "://" not in text:
        if _SCHEME_LIKE.match(text):  # "sqlite:x.db", "postgres:..." are typos of URLs, not file names
            raise StoreError(f"not a store URL or path: {url!r} (a URL is scheme:///..., e.g. {DEFAULT_STORE})")
        return SQLiteStore(text, read_only=read_only, create=create)
    scheme = text.split("://", 1)[0].lower()
    if scheme != "sqlite":
        raise StoreError(f"unknown store URL scheme {scheme!r} in {url!r} (supported: sqlite://; or a plain file "
                         "path for SQLite)")
    return SQLiteStore(sqlite_path_from_url(text), read_only=read_only, create=create)


def store_file(url: str | Path) -> Path | None:
    """The file a SQLite store URL or plain path names (None for an in-memory store or a URL that is not one),
    without opening anything: what an output path must never be."""
    if isinstance(url, Path):
        return url.expanduser()
    if not isinstance(url, str) or not url.strip():
        return None
    text = url.strip()
    if "://" not in text:
        return None if _SCHEME_LIKE.match(text) else Path(text).expanduser()
    from zeronas.store.sqlite import MEMORY

    try:
        path = sqlite_path_from_url(text)
    except StoreError:
        return None
    return None if path == MEMORY else Path(path).expanduser()


__all__ = ["DEFAULT_STORE", "ResultStore", "Revisions", "SQLiteStore", "StoreError", "open_store", "store_file"]
