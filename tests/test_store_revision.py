"""Scores carry the proxy revision that made them: a changed formula is a new score, old rows stay readable, and
version-1 stores (before revisions) are migrated with every row kept."""

from __future__ import annotations

import sqlite3

import pytest

from zeronas.proxies import ScoringConfig
from zeronas.proxies.registry import get_proxy, proxy
from zeronas.proxies.runner import Score
from zeronas.store import StoreError, open_store
from zeronas.store.sqlite import SCHEMA_VERSION

V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE configs (config_hash TEXT PRIMARY KEY, config_json TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE archs (canonical_id TEXT PRIMARY KEY, recipe_json TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE results (
    id INTEGER PRIMARY KEY, canonical_id TEXT NOT NULL REFERENCES archs (canonical_id), proxy TEXT NOT NULL,
    config_hash TEXT NOT NULL REFERENCES configs (config_hash), seed INTEGER NOT NULL, value REAL,
    status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', seconds REAL NOT NULL, version TEXT NOT NULL,
    created_at TEXT NOT NULL, UNIQUE (config_hash, seed, canonical_id, proxy),
    CHECK ((status = 'ok') = (value IS NOT NULL)));
CREATE INDEX results_by_arch ON results (canonical_id);
CREATE TRIGGER results_immutable BEFORE UPDATE ON results
BEGIN SELECT RAISE(ABORT, 'zeronas results are immutable'); END;
INSERT INTO meta VALUES ('schema_version', '1');
"""


def v1_store(path, n=50):
    cfg = ScoringConfig()
    with sqlite3.connect(path) as db:
        db.executescript(V1)
        db.execute("INSERT INTO configs VALUES (?, '{}', 't')", (cfg.config_hash(),))
        for i in range(n):
            cid = f"{i:040x}"
            db.execute("INSERT INTO archs VALUES (?, '{}', 't')", (cid,))
            db.execute("INSERT INTO results (canonical_id, proxy, config_hash, seed, value, status, seconds, version, "
                       "created_at) VALUES (?, 'params', ?, 0, ?, 'ok', 0.5, '0.1.0', 't')", (cid, cfg.config_hash(), i))
            db.execute("INSERT INTO results (canonical_id, proxy, config_hash, seed, value, status, message, seconds, "
                       "version, created_at) VALUES (?, 'zen', ?, 0, NULL, 'inf', 'overflow', 0.1, '0.1.0', 't')",
                       (cid, cfg.config_hash()))
    db.close()
    return cfg


def test_a_version_1_store_is_migrated_with_every_row(tmp_path):
    path = tmp_path / "old.db"
    cfg = v1_store(path)
    with pytest.raises(StoreError, match="version-1 store.*zeronas store migrate"):
        open_store(f"sqlite:///{path}", read_only=True)
    with open_store(f"sqlite:///{path}") as st:
        assert st.migrated == 100
        table = st.scores_table(cfg)
        assert len(table) == 50 and table[f"{7:040x}"]["params"].value == 7.0
        assert table[f"{7:040x}"]["zen"] == Score("zen", None, "inf", "overflow", 0.1)
        revs = st._db.execute("SELECT revision, COUNT(*) FROM results GROUP BY revision").fetchall()
        assert revs == [(1, 100)]
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):  # the trigger came back with the table
            st._db.execute("UPDATE results SET value = 0 WHERE proxy = 'params'")
    with open_store(f"sqlite:///{path}") as st:  # a second open finds version 2: nothing to do
        assert st.migrated is None
        assert st._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == SCHEMA_VERSION


def test_a_new_revision_is_a_new_score_and_the_old_one_stays(tmp_path):
    name, cfg, cid = "p", ScoringConfig(), "c" * 40
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as st:
        st.put_cell(cid, "{}", cfg, [Score(name, 1.0, "ok")], revisions={name: 1})
        assert st.missing_proxies([cid], [name], cfg, revisions={name: 1}) == {}
        assert st.missing_proxies([cid], [name], cfg, revisions={name: 2}) == {cid: [name]}  # the formula changed
        assert st.get(cid, cfg, revisions={name: 2}) == {} and st.scores_table(cfg, revisions={name: 2}) == {}
        st.put_cell(cid, "{}", cfg, [Score(name, 2.0, "ok")], revisions={name: 2})
        assert st.get(cid, cfg, revisions={name: 2})[name].value == 2.0
        assert st.scores_table(cfg, revisions={name: 2})[cid][name].value == 2.0
        assert st.count(cfg) == 2  # both rows are kept
        assert st.get(cid, cfg, revisions={name: 1})[name].value == 1.0  # the old code reads the old row
        assert st.get(cid, cfg)[name].value == 2.0  # a proxy the caller does not name: the highest stored revision
        assert [r["revision"] for r in st.rows()] == [1, 2]
        st.put_cell("d" * 40, "{}", cfg, [Score(name, 3.0, "ok")])  # no revision given: the first revision
        assert st.get("d" * 40, cfg, revisions={name: 1})[name].value == 3.0


def test_the_executor_files_scores_under_the_registered_revision(tmp_path):
    """snip is at revision 2: the executor names it, so its rows say 2 and a rerun finds them."""
    from zeronas.cells.reference import reference_cell
    from zeronas.proxies import TINY
    from zeronas.run import score_many

    assert get_proxy("snip").revision == 2 and get_proxy("params").revision == 1
    db = f"sqlite:///{tmp_path / 's.db'}"
    first = score_many([reference_cell("gru")], ["snip", "params"], TINY, db, executor="serial", progress=False)
    again = score_many([reference_cell("gru")], ["snip", "params"], TINY, db, executor="serial", progress=False)
    assert (first.scored, again.scored, again.skipped) == (1, 0, 1)
    with open_store(db, read_only=True) as st:
        assert sorted((r["proxy"], r["revision"]) for r in st.rows()) == [("params", 1), ("snip", 2)]


STORE_WITHOUT_TORCH = """
import sys
from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score
from zeronas.store import open_store

cfg, cid = ScoringConfig(), "c" * 40
with open_store(sys.argv[1]) as st:
    st.put_cell(cid, "{}", cfg, [Score("zen", 1.5, "ok"), Score("snip", None, "nan", "x")], revisions={"snip": 2})
    assert st.missing_proxies([cid], ["zen", "snip"], cfg, revisions={"snip": 2}) == {}
with open_store(sys.argv[1], read_only=True) as st:
    assert st.get(cid, cfg)["zen"].value == 1.5 and st.scores_table(cfg)[cid]["snip"].status == "nan"
    assert sorted((r["proxy"], r["revision"]) for r in st.rows()) == [("snip", 2), ("zen", 1)]
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("zeronas.proxies") or m == "zeronas.plugins")
assert not bad, bad
print("ok")
"""


def test_the_store_writes_and_reads_without_torch_or_the_registry(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", STORE_WITHOUT_TORCH, f"sqlite:///{tmp_path / 's.db'}"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_revisions_must_be_positive():
    with pytest.raises(ValueError, match="revision must be a positive integer"):
        proxy("_bad_revision", higher_is_better=True, needs_data=False, description="", revision=0)
    assert get_proxy("zen").revision == 1
