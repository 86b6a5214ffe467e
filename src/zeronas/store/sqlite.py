"""The SQLite results store (the default). One file, WAL mode, parameterised SQL only.

Tables:

- ``results``: one row per (config_hash, seed, canonical_id, proxy, revision) with value (NULL unless status is
  ``ok``), status, message, seconds, the zeronas version that computed it and created_at (UTC, ISO 8601). Rows
  are immutable: a trigger refuses any UPDATE, and writes use ``INSERT OR IGNORE`` (or fail in strict mode).
  ``revision`` is the proxy's revision when the row was written, which the caller gives (``revisions``, e.g.
  :func:`zeronas.proxies.registry.proxy_revisions`; the store knows nothing of proxies): reads and the "already
  scored?" test only see rows of each proxy's current revision (a proxy the caller does not name: its highest
  stored one), so a changed formula is scored afresh and the old rows stay, readable under their revision.
- ``configs``: the scoring config as JSON for each hash (the device is left out, as in the hash), so that a
  score can be read without knowing the code's defaults at the time.
- ``archs``: canonical id -> recipe JSON, so that results can be interpreted without the benchmark.
- ``meta``: the schema version. A version-1 file (no revision column) is migrated when opened for writing
  (``SQLiteStore.migrated`` then holds the rows carried over): every row kept, marked revision 1, in one
  transaction.

A cell is written in one transaction, so a run killed at any moment leaves whole cells only.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import zeronas
from zeronas.core.config import ScoringConfig
from zeronas.core.score import STATUSES, UNSUPPORTED, Score
from zeronas.store.base import Revisions, StoreError
from zeronas.store.sqlite_file import APPLICATION_ID, check_store_file

SCHEMA_VERSION = "2"  # 2: results carry the proxy's revision (1: no revision column; migrated on open)
MEMORY = ":memory:"
_CHUNK = 500  # ids per IN (...) query, well under SQLite's limit on bound parameters

_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)  # constants of the code, not user data
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS configs (
    config_hash TEXT PRIMARY KEY,
    config_json TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS archs (
    canonical_id TEXT PRIMARY KEY,
    recipe_json  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    id           INTEGER PRIMARY KEY,
    canonical_id TEXT    NOT NULL REFERENCES archs (canonical_id),
    proxy        TEXT    NOT NULL,
    config_hash  TEXT    NOT NULL REFERENCES configs (config_hash),
    seed         INTEGER NOT NULL,
    value        REAL,
    status       TEXT    NOT NULL CHECK (status IN ({_STATUS_LIST})),
    message      TEXT    NOT NULL DEFAULT '',
    seconds      REAL    NOT NULL,
    version      TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    revision     INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1),
    UNIQUE (config_hash, seed, canonical_id, proxy, revision),
    CHECK ((status = 'ok') = (value IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS results_by_arch ON results (canonical_id);
CREATE TRIGGER IF NOT EXISTS results_immutable BEFORE UPDATE ON results
BEGIN SELECT RAISE(ABORT, 'zeronas results are immutable'); END;
CREATE TRIGGER IF NOT EXISTS configs_immutable BEFORE UPDATE ON configs
BEGIN SELECT RAISE(ABORT, 'zeronas configs are immutable'); END;
CREATE TRIGGER IF NOT EXISTS archs_immutable BEFORE UPDATE ON archs
BEGIN SELECT RAISE(ABORT, 'zeronas archs are immutable'); END;
"""


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs.db`` -> ``/abs.db``; ``sqlite:///:memory:`` and
    ``sqlite://`` -> ``:memory:`` (the SQLAlchemy convention)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        raise StoreError(f"not a sqlite URL: {url!r} (expected sqlite:///path/to/file.db)")
    if rest == "":
        return MEMORY
    if not rest.startswith("/"):
        raise StoreError(f"bad sqlite URL {url!r}: use three slashes, sqlite:///relative.db or sqlite:////abs.db")
    path = rest[1:]
    if not path:
        raise StoreError(f"bad sqlite URL {url!r}: no file path")
    return path


def _schema_version(db: sqlite3.Connection) -> str | None:
    has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if not has_meta:
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return row[0] if row else None


_V1_COLUMNS = "id, canonical_id, proxy, config_hash, seed, value, status, message, seconds, version, created_at"


def _migrate_1_to_2(db: sqlite3.Connection) -> int:
    """Add the revision to the results' key: rebuild the table (SQLite cannot change a UNIQUE constraint), every
    row kept with revision 1, in one transaction. Returns the rows carried over."""
    create = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS results"):_SCHEMA.index("CREATE INDEX")]
    db.execute("BEGIN IMMEDIATE")
    try:
        before = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        db.execute("ALTER TABLE results RENAME TO results_v1")  # its index and trigger go with it
        db.execute(create)
        db.execute(f"INSERT INTO results ({_V1_COLUMNS}, revision) SELECT {_V1_COLUMNS}, 1 FROM results_v1")
        after = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        if after != before:
            raise StoreError(f"migration copied {after} of {before} rows; nothing was changed")
        db.execute("DROP TABLE results_v1")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return after


def _current_rows(rows: Iterable[tuple], revisions: Revisions | None) -> Iterator[tuple]:
    """Rows ``(key, proxy, revision, *rest)`` of the current revision of each proxy (the one ``revisions`` gives;
    for a proxy it does not name, the highest stored), keyed by (key, proxy)."""
    best: dict[tuple[str, str], tuple] = {}
    revisions = revisions or {}
    for row in rows:
        key, name, rev = row[0], row[1], row[2]
        target = revisions.get(name)
        if target is not None and rev != target:
            continue
        old = best.get((key, name))
        if old is None or rev > old[2]:
            best[(key, name)] = row
    yield from best.values()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _config_json(config: ScoringConfig) -> str:
    data = {k: v for k, v in config.to_dict().items() if k != "device"}  # as in config_hash()
    return json.dumps(data, sort_keys=True)


def _hash_and_seed(config: str | ScoringConfig, seed: int | None) -> tuple[str, int | None]:
    if isinstance(config, ScoringConfig):
        return config.config_hash(), config.seed if seed is None else seed
    return config, seed


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _check_score(canonical_id: str, name: str, score: Score) -> None:
    if score.status == UNSUPPORTED:
        raise StoreError(f"{canonical_id}/{name}: an unsupported proxy is not a result of the cell and is never "
                         f"stored ({score.message})")
    if score.status not in STATUSES:
        raise StoreError(f"{canonical_id}/{name}: unknown status {score.status!r} (known: {', '.join(STATUSES)})")
    if score.status == "ok":
        if score.value is None or score.value != score.value or score.value in (float("inf"), float("-inf")):
            raise StoreError(f"{canonical_id}/{name}: status 'ok' needs a finite value, got {score.value!r}")
    elif score.value is not None:
        raise StoreError(f"{canonical_id}/{name}: status {score.status!r} must have no value, got {score.value!r}")


def _db_errors(fn):
    """A damaged or unreadable file met while reading (``database disk image is malformed``) is a
    :class:`StoreError` naming the store, never a traceback."""
    import functools
    import inspect

    def convert(self, exc: sqlite3.DatabaseError) -> StoreError:
        return StoreError(f"{self.path}: cannot read the results store: {exc}")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(self, *args, **kwargs):
            try:
                yield from fn(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                raise convert(self, exc) from None
        return gen

    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise convert(self, exc) from None
    return call


class SQLiteStore:
    """A :class:`~zeronas.store.ResultStore` in one SQLite file (or in memory). Not shared across threads;
    several processes may open the same file (WAL; writers wait up to ``busy_timeout_s``)."""

    def __init__(self, path: str | Path = MEMORY, *, busy_timeout_s: float = 60.0, read_only: bool = False,
                 create: bool = True) -> None:
        """``read_only``: never write (a read-only file or folder is fine). ``create=False``: a store that does
        not exist yet is an error, not a new store (for commands that only read or delete)."""
        self.path = str(path)
        self.read_only = read_only
        self.migrated: int | None = None  # rows carried over when this open upgraded a version-1 file
        if self.path != MEMORY:
            self.path = str(Path(self.path).expanduser())
            # before anything is written: another application's file stays untouched, byte for byte
            check_store_file(self.path, must_exist=read_only or not create)
            if read_only:
                self._open_read_only(busy_timeout_s)
                return
            parent = Path(self.path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the folder {parent}: {exc}") from None
        elif read_only or not create:
            raise StoreError("an in-memory store is new and empty each time: it cannot be opened to read or delete")
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._check_version()  # a file of an unknown version is refused before the WAL switch writes to it
            if self.path != MEMORY:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
                self._db.execute("PRAGMA synchronous = NORMAL")  # durable across a killed process in WAL mode
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            hint = " (open it read-only to read it, e.g. evaluate --no-score)" if "readonly" in str(exc) else ""
            raise StoreError(f"{self.path}: cannot open as a zeronas results store: {exc}{hint}") from None

    def _check_version(self) -> None:
        version = _schema_version(self._db)
        if version not in (None, "1", SCHEMA_VERSION):
            self._db.close()
            raise StoreError(f"{self.path}: schema version {version}, this zeronas reads version {SCHEMA_VERSION}")

    def _open_read_only(self, busy_timeout_s: float) -> None:
        """Open an existing store for reading only: no journal switch, no schema, no writes (a read-only file or
        folder is fine)."""
        if not Path(self.path).is_file():
            raise StoreError(f"{self.path}: no such results store")
        uri = Path(self.path).resolve().as_uri()
        row = None
        # mode=ro reads a WAL store when its -shm file exists or can be made; in a read-only folder it cannot,
        # and immutable=1 (no locking: right for a file nobody writes) reads it anyway
        for query in ("mode=ro", "mode=ro&immutable=1"):
            try:
                self._db = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=busy_timeout_s, isolation_level=None)
                row = self._db.execute("SELECT value FROM meta WHERE key = ?", ("schema_version",)).fetchone()
                break
            except sqlite3.OperationalError as exc:
                if "unable to open" not in str(exc) or "immutable" in query:
                    raise StoreError(f"{self.path}: cannot open as a zeronas results store: {exc}") from None
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: cannot open as a zeronas results store: {exc}") from None
        if row is not None and row[0] == "1":
            raise StoreError(f"{self.path}: a version-1 store (before proxy revisions); open it once for writing, "
                             f"e.g. `zeronas store migrate --store sqlite:///{self.path}`, to upgrade it")
        if row is None or row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {row[0] if row else None}, this zeronas reads version "
                             f"{SCHEMA_VERSION}")

    # -- set-up ------------------------------------------------------------------------------------------------
    def _init_schema(self) -> None:
        version = _schema_version(self._db)
        if version == "1":
            self.migrated = _migrate_1_to_2(self._db)
        elif version not in (None, SCHEMA_VERSION):
            raise StoreError(f"{self.path}: schema version {version}, this zeronas reads version {SCHEMA_VERSION}")
        # executescript commits any open transaction first, so the script carries its own BEGIN/COMMIT
        self._db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                             ("schema_version", SCHEMA_VERSION))
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", ("schema_version",)).fetchone()
            if self._db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                self._db.execute(f"PRAGMA application_id = {int(APPLICATION_ID)}")  # a constant, not user data
        if row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {row[0]}, this zeronas reads version {SCHEMA_VERSION}")

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only; nothing can be written")

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)

    # -- writing -----------------------------------------------------------------------------------------------
    def put_cell(self, canonical_id: str, recipe_json: str, config: ScoringConfig,
                 scores: Mapping[str, Score] | Iterable[Score], *, revisions: Revisions | None = None,
                 strict: bool = False) -> int:
        """Write one finished cell (its arch, its config and one row per score) in ONE transaction; each score
        under its proxy's revision in ``revisions`` (revision 1 for a proxy it does not name).

        Returns the number of result rows written. A row whose key is already stored is left as it is; with
        ``strict=True`` that raises :class:`StoreError` and nothing of the cell is written."""
        self._writable()
        items = list(scores.items()) if isinstance(scores, Mapping) else [(s.proxy, s) for s in scores]
        for name, score in items:
            if name != score.proxy:
                raise StoreError(f"{canonical_id}: score for {score.proxy!r} filed under {name!r}")
            _check_score(canonical_id, name, score)
        config_hash, seed, now, version = config.config_hash(), config.seed, _now(), zeronas.__version__
        try:
            return self._put_rows(canonical_id, recipe_json, config, items, strict, config_hash, seed, now, version,
                                  revisions or {})
        except sqlite3.OperationalError as exc:  # disk full, a locked or vanished file: the cell is not written
            raise StoreError(f"{self.path}: cannot write the scores of {canonical_id}: {exc}; the cells written "
                             "before are kept, and a rerun scores this one again") from None

    def _put_rows(self, canonical_id: str, recipe_json: str, config: ScoringConfig, items: list[tuple[str, Score]],
                  strict: bool, config_hash: str, seed: int, now: str, version: str, revisions: Revisions) -> int:
        written = 0
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO configs (config_hash, config_json, created_at) VALUES (?, ?, ?)",
                             (config_hash, _config_json(config), now))
            self._db.execute("INSERT OR IGNORE INTO archs (canonical_id, recipe_json, created_at) VALUES (?, ?, ?)",
                             (canonical_id, recipe_json, now))
            for name, s in items:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO results (canonical_id, proxy, config_hash, seed, value, status, message, "
                    "seconds, version, created_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (canonical_id, name, config_hash, seed, s.value if s.ok else None, s.status, s.message,
                     float(s.seconds), version, now, revisions.get(name, 1)))
                if cur.rowcount == 1:
                    written += 1
                elif strict:
                    raise StoreError(f"{canonical_id}/{name} under config {config_hash} seed {seed} is already "
                                     "stored; stored results are immutable")
        return written

    def delete(self, config: ScoringConfig, *, proxies: Iterable[str] | None = None,
               statuses: Iterable[str] | None = None) -> int:
        """Explicitly forget results of one config (optionally only some proxies / statuses), so that a later
        run computes them again. Returns the number of rows deleted."""
        return self.delete_where(config_hash=config.config_hash(), seed=config.seed, proxies=proxies,
                                 statuses=statuses)

    # -- reading -----------------------------------------------------------------------------------------------
    @_db_errors
    def get(self, canonical_id: str, config_hash: str | ScoringConfig, seed: int | None = None, *,
            revisions: Revisions | None = None) -> dict[str, Score]:
        """``{proxy: Score}`` of one cell under one config (a hash or a :class:`ScoringConfig`); ``seed``
        narrows further when given (the config hash already includes the seed)."""
        h, seed = _hash_and_seed(config_hash, seed)
        sql = ("SELECT canonical_id, proxy, revision, value, status, message, seconds FROM results WHERE "
               "canonical_id = ? AND config_hash = ?")
        params: list[object] = [canonical_id, h]
        if seed is not None:
            sql += " AND seed = ?"
            params.append(seed)
        rows = _current_rows(self._db.execute(sql + " ORDER BY id", params), revisions)
        return {row[1]: self._score(row[0], row[1], row[2], *row[3:]) for row in rows}

    @_db_errors
    def missing_proxies(self, canonical_ids: Iterable[str], proxies: Iterable[str], config: ScoringConfig, *,
                        revisions: Revisions | None = None) -> dict[str, list[str]]:
        """``{canonical_id: proxies with no stored row}`` (of the proxy's revision in ``revisions``) for each id
        that needs work, in input order."""
        ids = list(dict.fromkeys(canonical_ids))
        wanted = list(dict.fromkeys(proxies))
        if not wanted:
            return {}
        have: dict[str, set[str]] = {}
        h, seed = config.config_hash(), config.seed
        for chunk in _chunks(ids):
            sql = (f"SELECT canonical_id, proxy, revision FROM results WHERE config_hash = ? AND seed = ? AND "
                   f"canonical_id IN ({', '.join('?' * len(chunk))})")
            for cid, name, _ in _current_rows(self._db.execute(sql, [h, seed, *chunk]), revisions):
                have.setdefault(cid, set()).add(name)
        out: dict[str, list[str]] = {}
        for cid in ids:
            todo = [p for p in wanted if p not in have.get(cid, ())]
            if todo:
                out[cid] = todo
        return out

    def missing(self, canonical_ids: Iterable[str], proxies: Iterable[str], config: ScoringConfig, *,
                revisions: Revisions | None = None) -> set[str]:
        """The ids needing work: some requested proxy has no stored row (a stored failure counts as done)."""
        return set(self.missing_proxies(canonical_ids, proxies, config, revisions=revisions))

    @_db_errors
    def scores_table(self, config: ScoringConfig, proxies: Iterable[str] | None = None, *,
                     revisions: Revisions | None = None) -> dict[str, dict[str, Score]]:
        """``{canonical_id: {proxy: Score}}`` of every stored cell under ``config`` (in order of storage)."""
        sql = ("SELECT canonical_id, proxy, revision, value, status, message, seconds FROM results "
               "WHERE config_hash = ? AND seed = ?")
        params: list[object] = [config.config_hash(), config.seed]
        if proxies is not None:
            names = list(dict.fromkeys(proxies))
            if not names:
                return {}
            sql += f" AND proxy IN ({', '.join('?' * len(names))})"
            params.extend(names)
        table: dict[str, dict[str, Score]] = {}
        for cid, name, rev, *rest in _current_rows(self._db.execute(sql + " ORDER BY id", params), revisions):
            table.setdefault(cid, {})[name] = self._score(cid, name, rev, *rest)
        return table

    def _score(self, cid: str, name: str, rev: object, value: object, status: object, message: object,
               seconds: object) -> Score:
        """A stored row as a :class:`Score`, checked: a row changed outside zeronas (a value that is not a finite
        number, a status it does not know) is a :class:`StoreError` naming it, never a made-up score."""
        number = (int, float)
        bad = None
        if status not in STATUSES:
            bad = f"unknown status {status!r}"
        elif status == "ok" and (isinstance(value, bool) or not isinstance(value, number) or value != value
                                 or value in (float("inf"), float("-inf"))):
            bad = f"status ok with value {value!r}, not a finite number"
        elif status != "ok" and value is not None:
            bad = f"status {status} with a value ({value!r})"
        elif not isinstance(message, str) or isinstance(seconds, bool) or not isinstance(seconds, number):
            bad = f"message {message!r}, seconds {seconds!r}"
        if bad:
            raise StoreError(f"{self.path}: the stored row of {cid}/{name} (revision {rev}) is damaged ({bad}); "
                             "the file was changed outside zeronas")
        return Score(name, None if value is None else float(value), status, message, float(seconds))

    @_db_errors
    def recipe(self, canonical_id: str) -> str | None:
        row = self._db.execute("SELECT recipe_json FROM archs WHERE canonical_id = ?", (canonical_id,)).fetchone()
        return row[0] if row else None

    @_db_errors
    def configs(self) -> dict[str, ScoringConfig]:
        return {h: ScoringConfig.from_dict(json.loads(text), validate=False)
                for h, text in self._db.execute("SELECT config_hash, config_json FROM configs ORDER BY created_at")}

    @_db_errors
    def count(self, config: ScoringConfig | None = None) -> int:
        """Stored result rows (of one config, or all)."""
        if config is None:
            return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM results WHERE config_hash = ? AND seed = ?",
                                (config.config_hash(), config.seed)).fetchone()[0]

    # -- maintenance (``zeronas store``) -------------------------------------------------------------------------
    @_db_errors
    def summary(self) -> dict[str, object]:
        """What the store holds: schema version, file size, and per config and proxy the rows by status and
        revision."""
        version = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        size = Path(self.path).stat().st_size if self.path != MEMORY and Path(self.path).exists() else 0
        configs: dict[str, dict[str, object]] = {}
        for h, text in self._db.execute("SELECT config_hash, config_json FROM configs ORDER BY created_at"):
            configs[h] = {"config": json.loads(text), "rows": 0, "cells": 0, "proxies": {}}
        sql = ("SELECT config_hash, seed, proxy, revision, status, COUNT(*) FROM results "
               "GROUP BY config_hash, seed, proxy, revision, status ORDER BY config_hash, proxy, revision, status")
        for h, seed, name, rev, status, n in self._db.execute(sql):
            entry = configs.setdefault(h, {"config": None, "rows": 0, "cells": 0, "proxies": {}})
            entry["rows"] = int(entry["rows"]) + n  # type: ignore[call-overload]
            per = entry["proxies"].setdefault(f"{name}@{rev}", {})  # type: ignore[union-attr]
            per[status] = per.get(status, 0) + n
        for h, cells in self._db.execute("SELECT config_hash, COUNT(DISTINCT canonical_id) FROM results "
                                         "GROUP BY config_hash"):
            configs[h]["cells"] = cells
        return {"path": self.path, "schema_version": version[0] if version else None, "bytes": size,
                "rows": self.count(), "configs": configs}

    @_db_errors
    def rows(self) -> Iterator[dict[str, object]]:
        """Every stored score, one dict per row (all revisions), in order of storage."""
        cur = self._db.execute("SELECT canonical_id, proxy, revision, config_hash, seed, value, status, message, "
                               "seconds, version, created_at FROM results ORDER BY id")
        names = [d[0] for d in cur.description]
        for row in cur:
            yield dict(zip(names, row))

    @_db_errors
    def delete_where(self, *, config_hash: str | None = None, seed: int | None = None,
                     proxies: Iterable[str] | None = None, statuses: Iterable[str] | None = None,
                     dry_run: bool = False) -> int:
        """Forget rows by config hash, seed, proxy and status (each optional; all rows when none is given). With
        ``dry_run``, only count them."""
        if not dry_run:
            self._writable()
        where, params = [], []  # type: ignore[var-annotated]
        for column, value in (("config_hash", config_hash), ("seed", seed)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        for column, values in (("proxy", proxies), ("status", statuses)):
            if values is not None:
                vals = list(values)
                if not vals:
                    return 0
                where.append(f"{column} IN ({', '.join('?' * len(vals))})")
                params.extend(vals)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        if dry_run:
            return self._db.execute("SELECT COUNT(*) FROM results" + clause, params).fetchone()[0]
        with self._transaction():
            return self._db.execute("DELETE FROM results" + clause, params).rowcount

    @_db_errors
    def vacuum(self) -> tuple[int, int]:
        """Fold the write-ahead log into the file and rebuild it without free pages; (bytes before, after)."""
        self._writable()
        if self.path == MEMORY:
            return 0, 0
        before = Path(self.path).stat().st_size
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, Path(self.path).stat().st_size

    # -- life cycle --------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "SQLiteStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception): the writer lock is taken up front, so
    two processes writing the same file queue instead of failing midway."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:  # SQLite may have rolled back already (e.g. on a full disk)
            self._db.execute("ROLLBACK")
