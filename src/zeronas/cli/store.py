"""``zeronas store info|delete|export|vacuum|migrate``: look after a results store (SQLite)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from zeronas.cli._common import fail, out
from zeronas.cli._options import Store
from zeronas.store import DEFAULT_STORE

store_app = typer.Typer(help="Look after a results store: what it holds, forget rows, export, compact, upgrade.",
                        no_args_is_help=True)

EXPORT_COLUMNS = ("canonical_id", "proxy", "revision", "config_hash", "seed", "value", "status", "message",
                  "seconds", "version", "created_at")


def _open(store: str, read_only: bool):
    """An existing SQLite store (a missing one is an error: these commands never create a store)."""
    from zeronas.store import StoreError, open_store

    try:
        return open_store(store, read_only=read_only, create=False)
    except StoreError as exc:
        raise fail(str(exc))


@store_app.command("info")
def info_cmd(store: Store = DEFAULT_STORE,
             as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Configs, proxies (with revision) and rows by status, and the file's size. Opens the store read-only."""

    with _open(store, read_only=True) as st:
        summary = st.summary()
    if as_json:
        print(json.dumps(summary))
        return
    out.print(f"{summary['path']}: schema {summary['schema_version']}, {summary['rows']:,} rows, "
              f"{summary['bytes'] / 1e6:.1f} MB", highlight=False, markup=False)
    for h, entry in summary["configs"].items():  # type: ignore[union-attr]
        out.print(f"config {h}: {entry['rows']:,} rows over {entry['cells']:,} cells", highlight=False, markup=False)
        for name, counts in entry["proxies"].items():
            text = ", ".join(f"{status} {n:,}" for status, n in counts.items())
            out.print(f"  {name}: {text}", highlight=False, markup=False)


@store_app.command("delete")
def delete_cmd(store: Store = DEFAULT_STORE,
               config: Optional[str] = typer.Option(None, "--config", help="Only this config hash."),
               proxies: Optional[str] = typer.Option(None, "--proxy", help="Only these proxies (comma-separated)."),
               statuses: Optional[str] = typer.Option(None, "--status",
                                                      help="Only these statuses (ok, nan, inf, oom, error, "
                                                           "timeout; comma-separated)."),
               yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Forget stored rows (e.g. the timeouts, to retry them with a longer limit); asks first unless --yes."""
    from zeronas.core.score import STATUSES

    names = [p.strip() for p in proxies.split(",") if p.strip()] if proxies is not None else None
    stats = [s.strip() for s in statuses.split(",") if s.strip()] if statuses is not None else None
    if names is not None and not names:
        raise fail("--proxy: no proxy named")
    if stats is not None:
        bad = [s for s in stats if s not in STATUSES]
        if bad or not stats:
            raise fail(f"--status: unknown status {bad[0]!r} (known: {', '.join(STATUSES)})" if bad
                       else "--status: no status named")
    with _open(store, read_only=False) as st:
        n = st.delete_where(config_hash=config, proxies=names, statuses=stats, dry_run=True)
        if n == 0:
            out.print("no stored row matches; nothing deleted", highlight=False, markup=False)
            return
        what = ", ".join(f"{k} {v}" for k, v in (("config", config), ("proxy", proxies), ("status", statuses)) if v)
        if not yes and not typer.confirm(f"delete {n:,} rows ({what or 'every row'}) from {st.path}?"):
            out.print("nothing deleted", highlight=False, markup=False)
            raise typer.Exit(1)
        deleted = st.delete_where(config_hash=config, proxies=names, statuses=stats)
    out.print(f"deleted {deleted:,} rows", highlight=False, markup=False)


@store_app.command("export")
def export_cmd(store: Store = DEFAULT_STORE,
               out_path: Optional[Path] = typer.Option(None, "--out", "-o",
                                                       help="File to write (default: CSV on stdout); never the "
                                                            "store itself, nor an existing file without --force."),
               fmt: Optional[str] = typer.Option(None, "--format",
                                                 help="csv or parquet (default: from --out's suffix, else csv)."),
               force: bool = typer.Option(False, "--force", help="Replace an existing --out file.")) -> None:
    """One row per stored score (every revision), as CSV or Parquet, e.g. for pandas.read_csv."""
    from zeronas.files import FileArgError, check_output
    from zeronas.store import store_file

    kind = (fmt or (out_path.suffix.lstrip(".") if out_path is not None and out_path.suffix else "csv")).lower()
    if kind not in ("csv", "parquet"):
        raise fail(f"--format: {kind!r} is not csv or parquet")
    if kind == "parquet" and out_path is None:
        raise fail("--format parquet needs --out FILE")
    if out_path is not None:  # before the store is opened and before anything is opened for writing
        try:
            check_output(out_path, force=force, protected=[p for p in [store_file(store)] if p is not None],
                         what="export")
        except FileArgError as exc:
            raise fail(f"--out: {exc}")
    with _open(store, read_only=True) as st:
        try:
            n = _write_rows(st.rows(), out_path, kind)
        except BrokenPipeError:  # `zeronas store export | head`: the reader has what it wanted
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0)
        except OSError as exc:
            raise fail(f"{out_path or 'stdout'}: cannot write: {exc.strerror or exc}")
    if out_path is not None:
        out.print(f"wrote {n:,} rows to {out_path}", highlight=False, markup=False)


def _write_rows(rows, out_path: Optional[Path], kind: str) -> int:
    """Write the rows as CSV (stdout when no path) or Parquet; return how many."""
    if kind == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise fail("Parquet needs pyarrow: pip install pyarrow (or export CSV)") from None
        table = pa.Table.from_pylist(list(rows))
        pq.write_table(table, out_path)
        return table.num_rows
    fh = sys.stdout if out_path is None else out_path.open("w", newline="", encoding="utf-8")
    try:
        writer = csv.DictWriter(fh, fieldnames=list(EXPORT_COLUMNS))
        writer.writeheader()
        n = 0
        for row in rows:
            writer.writerow(row)
            n += 1
    finally:
        if out_path is not None:
            fh.close()
    return n


@store_app.command("vacuum")
def vacuum_cmd(store: Store = DEFAULT_STORE) -> None:
    """Fold the write-ahead log into the file and compact it (after deletes, or before committing a store)."""

    with _open(store, read_only=False) as st:
        before, after = st.vacuum()
    out.print(f"{before / 1e6:.1f} MB -> {after / 1e6:.1f} MB", highlight=False, markup=False)


@store_app.command("migrate")
def migrate_cmd(store: Store = DEFAULT_STORE) -> None:
    """Upgrade a store written by an older zeronas (every row kept); any read-write open does the same."""
    from zeronas.store.sqlite import SCHEMA_VERSION

    from zeronas.store import StoreError
    from zeronas.store.sqlite import MEMORY, sqlite_path_from_url

    try:
        path = sqlite_path_from_url(store) if "://" in store else store
    except StoreError as exc:
        raise fail(str(exc))
    if path == MEMORY or not Path(path).expanduser().is_file():
        raise fail(f"{store}: no such results store")
    with _open(store, read_only=False) as st:
        migrated = st.migrated
    if migrated is None:
        out.print(f"already schema {SCHEMA_VERSION}; nothing to do", highlight=False, markup=False)
    else:
        out.print(f"upgraded to schema {SCHEMA_VERSION}: {migrated:,} rows kept, each marked revision 1",
                  highlight=False, markup=False)
