"""Results stores: where scores live, keyed by (canonical arch id, proxy, scoring-config hash, seed).

A store is opened from a URL (:func:`open_store`): ``sqlite:///relative/path.db``, ``sqlite:////abs/path.db``,
``sqlite:///:memory:`` or a plain file path. Stored records are immutable: writing a key that already exists
leaves the first record in place. Failures (``nan``, ``error``, ``timeout`` ...) are results like any other, so
a cell whose proxy failed is not scored again.

Another backend is a class that implements :class:`ResultStore` and a URL scheme registered with
:func:`register_backend`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Mapping, Protocol, runtime_checkable

from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score


class StoreError(RuntimeError):
    """A store that cannot be opened or used, or a write that would change a stored record."""


@runtime_checkable
class ResultStore(Protocol):
    """What the executor and the analyses need from a results store."""

    def put_cell(self, canonical_id: str, recipe_json: str, config: ScoringConfig,
                 scores: Mapping[str, Score] | Iterable[Score], *, strict: bool = False) -> int:
        """Write one finished cell in one transaction; return the number of new result rows. Existing rows are
        kept (``strict=True``: raise :class:`StoreError` instead, writing nothing)."""

    def get(self, canonical_id: str, config_hash: str | ScoringConfig,
            seed: int | None = None) -> dict[str, Score]:
        """Every stored score of one cell under one config: ``{proxy: Score}`` (empty if none)."""

    def missing_proxies(self, canonical_ids: Iterable[str], proxies: Iterable[str],
                        config: ScoringConfig) -> dict[str, list[str]]:
        """``{canonical_id: [proxies without a stored row]}`` for the ids that need any work, input order."""

    def missing(self, canonical_ids: Iterable[str], proxies: Iterable[str], config: ScoringConfig) -> set[str]:
        """The ids that need work: some requested proxy has no stored row for this config and seed."""

    def scores_table(self, config: ScoringConfig,
                     proxies: Iterable[str] | None = None) -> dict[str, dict[str, Score]]:
        """``{canonical_id: {proxy: Score}}`` for one config (all proxies if ``proxies`` is None)."""

    def recipe(self, canonical_id: str) -> str | None:
        """The recipe JSON stored for a canonical id, or None."""

    def configs(self) -> dict[str, ScoringConfig]:
        """Every scoring config with results, by hash."""

    def delete(self, config: ScoringConfig, *, proxies: Iterable[str] | None = None,
               statuses: Iterable[str] | None = None) -> int:
        """Explicitly forget results (e.g. timeouts, to retry them with a longer limit); return rows deleted."""

    def close(self) -> None: ...


Opener = Callable[..., ResultStore]  # opener(url) -> store; called with read_only=True for read-only opens
_SCHEME_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
_BACKENDS: dict[str, Opener] = {}


def register_backend(scheme: str, opener: Opener) -> None:
    """Make ``open_store("<scheme>://...")`` call ``opener(url)``."""
    _BACKENDS[scheme.lower()] = opener


def _open_sqlite(url: str, read_only: bool = False) -> ResultStore:
    from zeronas.store.sqlite import SQLiteStore, sqlite_path_from_url

    return SQLiteStore(sqlite_path_from_url(url), read_only=read_only)


register_backend("sqlite", _open_sqlite)


def open_store(url: str | Path | ResultStore, *, read_only: bool = False) -> ResultStore:
    """Open a store from a URL or a plain path (SQLite). A store object is returned as it is. ``read_only``: for
    commands that only read (a read-only file can be read; nothing is written, not even the schema)."""
    if isinstance(url, ResultStore) and not isinstance(url, (str, Path)):
        return url
    if isinstance(url, Path):
        return _open_sqlite(f"sqlite:///{url}", read_only)
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"not a store URL: {url!r}")
    text = url.strip()
    if "://" not in text:
        if _SCHEME_LIKE.match(text):  # "sqlite:x.db", "postgres:..." are typos of URLs, not file names
            raise StoreError(f"not a store URL or path: {url!r} (a URL is scheme:///..., e.g. sqlite:///zeronas.db)")
        return _open_sqlite(f"sqlite:///{text}", read_only)
    scheme = text.split("://", 1)[0].lower()
    opener = _BACKENDS.get(scheme)
    if opener is None:
        raise StoreError(f"unknown store URL scheme {scheme!r} in {url!r} (supported: "
                         f"{', '.join(s + '://' for s in sorted(_BACKENDS))}; or a plain file path for SQLite)")
    return opener(text, read_only=True) if read_only else opener(text)  # type: ignore[call-arg]


def __getattr__(name: str):  # lazy: zeronas.store.sqlite imports StoreError from this module
    if name == "SQLiteStore":
        from zeronas.store.sqlite import SQLiteStore

        return SQLiteStore
    raise AttributeError(name)


__all__ = ["ResultStore", "SQLiteStore", "StoreError", "open_store", "register_backend"]
