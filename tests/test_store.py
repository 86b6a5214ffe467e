"""The results store: round trip, immutability, what is missing, configs kept apart, failures kept as results."""

from __future__ import annotations

import sqlite3

import pytest

import zeronas
from zeronas.cells.reference import reference_cell
from zeronas.proxies import TINY, Score
from zeronas.store import ResultStore, SQLiteStore, StoreError, open_store

LSTM, GRU, RNN = (reference_cell(n) for n in ("lstm", "gru", "rnn"))


def scores(**values: float | str) -> dict[str, Score]:
    """``p=1.5`` -> ok score; ``p="nan"`` -> a failure with that status."""
    out = {}
    for name, v in values.items():
        if isinstance(v, str):
            out[name] = Score(name, None, v, f"{name} failed: {v}", 0.25)
        else:
            out[name] = Score(name, float(v), "ok", "", 0.5)
    return out


@pytest.fixture
def store(tmp_path) -> SQLiteStore:
    with SQLiteStore(tmp_path / "r.db") as s:
        yield s


def test_round_trip_survives_reopening_and_keeps_arch_and_config(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/results.db"  # folders are created
    s = open_store(url)
    assert isinstance(s, ResultStore)
    written = s.put_cell(LSTM.canonical_id, LSTM.to_json(), TINY, scores(params=123.0, zen=-4.5, ntk="nan"))
    assert written == 3
    s.close()

    again = open_store(url)
    got = again.get(LSTM.canonical_id, TINY.config_hash(), TINY.seed)
    assert got == scores(params=123.0, zen=-4.5, ntk="nan")
    assert again.get(LSTM.canonical_id, TINY) == got  # a config object works as the key too
    assert again.recipe(LSTM.canonical_id) == LSTM.to_json()
    assert again.recipe(GRU.canonical_id) is None
    assert again.configs() == {TINY.config_hash(): TINY}
    again.close()

    db = sqlite3.connect(tmp_path / "sub" / "dir" / "results.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = db.execute("SELECT canonical_id, proxy, config_hash, seed, value, status, version, created_at "
                      "FROM results ORDER BY proxy").fetchall()
    db.close()
    assert [r[1] for r in rows] == ["ntk", "params", "zen"]
    ntk = rows[0]
    assert ntk[4] is None and ntk[5] == "nan"  # value NULL unless ok
    assert all(r[0] == LSTM.canonical_id and r[2] == TINY.config_hash() and r[3] == 0 for r in rows)
    assert all(r[6] == zeronas.__version__ and r[7].startswith("20") for r in rows)


def test_urls_and_plain_paths(tmp_path) -> None:
    mem = open_store("sqlite:///:memory:")
    mem.put_cell(RNN.canonical_id, RNN.to_json(), TINY, scores(params=1.0))
    assert mem.get(RNN.canonical_id, TINY)["params"].value == 1.0
    mem.close()
    plain = open_store(str(tmp_path / "plain.db"))
    plain.put_cell(RNN.canonical_id, RNN.to_json(), TINY, scores(params=2.0))
    plain.close()
    assert open_store(f"sqlite:///{tmp_path}/plain.db").get(RNN.canonical_id, TINY)["params"].value == 2.0
    with pytest.raises(StoreError, match="unknown store URL scheme 'postgres'"):
        open_store("postgres://localhost/zeronas")
    with pytest.raises(StoreError, match="not a store URL"):
        open_store("sqlite:results.db")
    with pytest.raises(StoreError, match="three slashes"):
        open_store("sqlite://results.db")
    (tmp_path / "junk.db").write_bytes(b"this is not a database file at all" * 100)
    with pytest.raises(StoreError, match="junk.db"):
        open_store(tmp_path / "junk.db")


def test_stored_records_are_immutable(store: SQLiteStore) -> None:
    cid = GRU.canonical_id
    assert store.put_cell(cid, GRU.to_json(), TINY, scores(params=10.0)) == 1
    # a second write of the same key is ignored; new keys in the same cell are added
    assert store.put_cell(cid, GRU.to_json(), TINY, scores(params=99.0, zen=3.0)) == 1
    assert store.get(cid, TINY) == scores(params=10.0, zen=3.0)
    # strict mode: refuse, and write nothing of that cell (one transaction)
    with pytest.raises(StoreError, match="immutable"):
        store.put_cell(cid, GRU.to_json(), TINY, scores(ntk=1.0, params=99.0), strict=True)
    assert "ntk" not in store.get(cid, TINY)
    # and the database itself refuses updates
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        store._db.execute("UPDATE results SET value = 0")
    assert store.get(cid, TINY)["params"].value == 10.0


def test_failures_are_results_with_status_and_message(store: SQLiteStore) -> None:
    cid = LSTM.canonical_id
    failed = scores(a="nan", b="inf", c="oom", d="error", e="timeout", f=2.0)
    store.put_cell(cid, LSTM.to_json(), TINY, failed)
    got = store.get(cid, TINY)
    assert got == failed
    assert got["d"].message == "d failed: error" and got["d"].seconds == 0.25 and got["d"].value is None
    assert store.missing([cid], list(failed), TINY) == set()  # stored failures count as done


def test_bad_scores_are_refused(store: SQLiteStore) -> None:
    cid = LSTM.canonical_id
    for bad in (Score("p", None, "ok"), Score("p", float("nan"), "ok"), Score("p", 1.0, "error"),
                Score("p", None, "crashed")):
        with pytest.raises(StoreError):
            store.put_cell(cid, LSTM.to_json(), TINY, [bad])
    with pytest.raises(StoreError, match="filed under"):
        store.put_cell(cid, LSTM.to_json(), TINY, {"q": Score("p", 1.0, "ok")})
    assert store.count() == 0


def test_missing(store: SQLiteStore) -> None:
    ids = [LSTM.canonical_id, GRU.canonical_id, RNN.canonical_id]
    store.put_cell(LSTM.canonical_id, LSTM.to_json(), TINY, scores(params=1.0, zen=2.0))
    store.put_cell(GRU.canonical_id, GRU.to_json(), TINY, scores(params=1.0))
    assert store.missing(ids, ["params"], TINY) == {RNN.canonical_id}
    assert store.missing(ids, ["params", "zen"], TINY) == {GRU.canonical_id, RNN.canonical_id}
    assert store.missing_proxies(ids, ["params", "zen"], TINY) == {GRU.canonical_id: ["zen"],
                                                                   RNN.canonical_id: ["params", "zen"]}
    assert store.missing([], ["params"], TINY) == set()
    many = [f"{i:040x}" for i in range(1200)] + ids  # more ids than one IN (...) chunk
    assert store.missing(many, ["params"], TINY) == set(many) - {LSTM.canonical_id, GRU.canonical_id}


def test_configs_do_not_mix(store: SQLiteStore) -> None:
    other_seed, bigger = TINY.with_(seed=1), TINY.with_(hidden_size=32)
    assert len({TINY.config_hash(), other_seed.config_hash(), bigger.config_hash()}) == 3
    store.put_cell(LSTM.canonical_id, LSTM.to_json(), TINY, scores(params=1.0))
    store.put_cell(LSTM.canonical_id, LSTM.to_json(), other_seed, scores(params=2.0))
    store.put_cell(GRU.canonical_id, GRU.to_json(), bigger, scores(params=3.0, zen="nan"))
    assert store.scores_table(TINY) == {LSTM.canonical_id: scores(params=1.0)}
    assert store.scores_table(other_seed) == {LSTM.canonical_id: scores(params=2.0)}
    assert store.scores_table(bigger) == {GRU.canonical_id: scores(params=3.0, zen="nan")}
    assert store.scores_table(bigger, ["zen"]) == {GRU.canonical_id: scores(zen="nan")}
    assert store.missing([LSTM.canonical_id, GRU.canonical_id], ["params"], bigger) == {LSTM.canonical_id}
    assert set(store.configs()) == {c.config_hash() for c in (TINY, other_seed, bigger)}
    assert store.get(LSTM.canonical_id, TINY.config_hash(), seed=1) == {}  # hash of seed 0, asked for seed 1
    # the device is not part of a score's identity
    assert store.get(LSTM.canonical_id, TINY.with_(device="cuda")) == scores(params=1.0)


def test_delete_is_explicit_and_targeted(store: SQLiteStore) -> None:
    store.put_cell(LSTM.canonical_id, LSTM.to_json(), TINY, scores(params=1.0, zen="timeout", ntk="error"))
    store.put_cell(LSTM.canonical_id, LSTM.to_json(), TINY.with_(seed=3), scores(zen="timeout"))
    assert store.delete(TINY, statuses=["timeout"]) == 1
    assert store.missing_proxies([LSTM.canonical_id], ["params", "zen", "ntk"], TINY) == {LSTM.canonical_id: ["zen"]}
    assert store.count(TINY.with_(seed=3)) == 1  # another config is untouched


def test_two_connections_share_one_file(tmp_path) -> None:
    a, b = SQLiteStore(tmp_path / "x.db"), SQLiteStore(tmp_path / "x.db")
    a.put_cell(LSTM.canonical_id, LSTM.to_json(), TINY, scores(params=1.0))
    b.put_cell(GRU.canonical_id, GRU.to_json(), TINY, scores(params=2.0))
    assert set(a.scores_table(TINY)) == set(b.scores_table(TINY)) == {LSTM.canonical_id, GRU.canonical_id}
    a.close()
    b.close()
