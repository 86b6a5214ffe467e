"""Scoring at scale: resumable runs, a real SIGKILL of a real run, per-proxy time limits, Ray.

Slow and failing proxies come from a test-only module written to a temporary folder and imported by the
workers through ``score_many(imports=...)``; it is removed from the registry afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zeronas.bench.nbnlp import Benchmark
from zeronas.cells.reference import reference_cell
from zeronas.proxies import TINY, score_cell
from zeronas.proxies import registry
from zeronas.run import ExecutorError, WorkerPool, score_many
from zeronas.store import open_store

PLUGIN = "zeronas_test_plugin"
PLUGIN_SOURCE = '''
"""Test-only proxies: t_sleep sleeps (cells with hidden tuple size >= ZERONAS_TEST_SLEEP_MIN_K) and then counts
parameters; t_fail raises; t_nan returns NaN. Each records the pid of the process that ran it."""
import os
import time
from pathlib import Path

from zeronas.proxies.registry import proxy


def _mark():
    folder = os.environ.get("ZERONAS_TEST_PIDS")
    if folder:
        Path(folder, str(os.getpid())).touch()


@proxy("t_sleep", higher_is_better=True, needs_data=False, description="test only")
def t_sleep(ctx):
    _mark()
    if ctx.cell.hidden_tuple_size >= int(os.environ.get("ZERONAS_TEST_SLEEP_MIN_K", "1")):
        time.sleep(float(os.environ.get("ZERONAS_TEST_SLEEP", "0")))
    return float(ctx.model().num_parameters())


@proxy("t_fail", higher_is_better=True, needs_data=False, description="test only")
def t_fail(ctx):
    raise RuntimeError("t_fail always fails")


@proxy("t_nan", higher_is_better=True, needs_data=False, description="test only")
def t_nan(ctx):
    return float("nan")


@proxy("t_exit", higher_is_better=True, needs_data=False, description="test only")
def t_exit(ctx):
    raise SystemExit(3)


@proxy("t_osexit", higher_is_better=True, needs_data=False, description="test only")
def t_osexit(ctx):
    os._exit(5)


@proxy("t_interrupt", higher_is_better=True, needs_data=False, description="test only")
def t_interrupt(ctx):
    raise KeyboardInterrupt
'''

RUN_SCRIPT = '''
import json, sys
from zeronas.bench.nbnlp import Benchmark
from zeronas.proxies import TINY
from zeronas.run import score_many

if __name__ == "__main__":
    cells = Benchmark.nbnlp().sample(8, 123)
    summary = score_many(cells, ["params", "t_sleep"], TINY, sys.argv[1], workers=2, progress=False,
                         imports=["zeronas_test_plugin"])
    print(json.dumps(summary.to_dict()))
'''


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    (folder / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    (folder / "run_scoring.py").write_text(RUN_SCRIPT)
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(folder))  # spawned workers start with this process's sys.path
    with registry.PROXIES.scoped():  # the plugin's proxies are registered here only while the module runs
        yield folder
    mp.undo()
    sys.modules.pop(PLUGIN, None)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # an unreaped zombie has stopped running


def _rows(db_path: Path) -> list[tuple]:
    db = sqlite3.connect(db_path)
    try:
        return db.execute("SELECT id, canonical_id, proxy, status, created_at FROM results ORDER BY id").fetchall()
    finally:
        db.close()


def test_serial_scores_match_score_cell_and_resume_computes_only_what_is_missing(plugin_dir, tmp_path) -> None:
    cells = [reference_cell("lstm"), reference_cell("gru"), reference_cell("rnn")]
    url = f"sqlite:///{tmp_path}/s.db"
    first = score_many(cells + [reference_cell("lstm")], ["params"], TINY, url, executor="serial", progress=False)
    assert (first.total, first.scored, first.skipped, first.failed) == (3, 3, 0, 0)  # the duplicate counted once
    before = _rows(tmp_path / "s.db")

    # a new proxy later: only the new pairs are computed; failures (error, nan) are stored as results
    second = score_many(cells, ["params", "t_sleep", "t_fail", "t_nan"], TINY, url, executor="serial",
                        progress=False, imports=[PLUGIN])
    assert (second.scored, second.skipped, second.failed) == (3, 0, 3)
    after = _rows(tmp_path / "s.db")
    assert after[:3] == before and len(after) == 3 + 3 * 3

    with open_store(url) as store:
        table = store.scores_table(TINY)
    for cell in cells:
        row = table[cell.canonical_id]
        expected = score_cell(cell, ["params"], TINY)["params"].value
        assert row["params"].value == row["t_sleep"].value == expected
        assert row["t_fail"].status == "error" and "t_fail always fails" in row["t_fail"].message
        assert row["t_nan"].status == "nan" and row["t_nan"].value is None

    third = score_many(cells, ["params", "t_fail"], TINY, url, executor="serial", progress=False, imports=[PLUGIN])
    assert (third.scored, third.skipped) == (0, 3)
    assert _rows(tmp_path / "s.db") == after


def test_bad_arguments_are_refused(tmp_path, monkeypatch) -> None:
    cells = [reference_cell("rnn")]
    url = f"sqlite:///{tmp_path}/b.db"
    with pytest.raises(ExecutorError, match="unknown executor"):
        score_many(cells, ["params"], TINY, url, executor="threads")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no_such_proxy"):
        score_many(cells, ["no_such_proxy"], TINY, url)
    with pytest.raises(ExecutorError, match="cannot stop a cell"):
        score_many(cells, ["params"], TINY, url, executor="serial", timeout_s=1)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ExecutorError, match=r"pip install 'zeronas\[ray\]'"):
        score_many(cells, ["params"], TINY, url, executor="ray", workers=1, progress=False)


def test_time_limit_stops_the_worker_and_stores_timeout(plugin_dir, tmp_path, monkeypatch) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("ZERONAS_TEST_PIDS", str(pids))
    monkeypatch.setenv("ZERONAS_TEST_SLEEP", "120")
    monkeypatch.setenv("ZERONAS_TEST_SLEEP_MIN_K", "2")  # the LSTM (2 states) sleeps, the RNN does not
    slow, fast = reference_cell("lstm"), reference_cell("rnn")
    url = f"sqlite:///{tmp_path}/t.db"
    start = time.monotonic()
    summary = score_many([slow, fast], ["params", "t_sleep"], TINY, url, workers=1, timeout_s=1.5,
                         progress=False, imports=[PLUGIN])
    assert time.monotonic() - start < 60
    assert (summary.scored, summary.failed, summary.timed_out) == (2, 1, 1)
    with open_store(url) as store:
        timed_out, done = store.get(slow.canonical_id, TINY), store.get(fast.canonical_id, TINY)
    # only the proxy that ran past the limit is a timeout: params, computed before it, is kept
    assert timed_out["params"].status == "ok"
    assert timed_out["params"].value == score_cell(slow, ["params"], TINY)["params"].value
    late = timed_out["t_sleep"]
    assert late.status == "timeout" and late.value is None and "1.5 s limit" in late.message and late.seconds >= 1.5
    assert {s.status for s in done.values()} == {"ok"}  # a new worker took the next cell
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2 and os.getpid() not in workers
    assert not any(_alive(pid) for pid in workers)  # the sleeping worker was really stopped


def test_each_proxys_failure_is_its_own_row(plugin_dir, tmp_path, monkeypatch) -> None:
    """A proxy that exits, kills its worker, raises KeyboardInterrupt or hangs costs only its own score: the
    proxies before and after it in the same cell are computed and kept, on a new worker where needed."""
    monkeypatch.setenv("ZERONAS_TEST_SLEEP", "120")
    cell = reference_cell("gru")
    url = f"sqlite:///{tmp_path}/f.db"
    names = ["params", "t_exit", "t_osexit", "t_interrupt", "t_sleep", "recurrent_fanin"]
    summary = score_many([cell], names, TINY, url, workers=1, timeout_s=8, progress=False, imports=[PLUGIN])
    assert (summary.scored, summary.timed_out) == (1, 1)
    with open_store(url) as store:
        row = store.get(cell.canonical_id, TINY)
    expected = score_cell(cell, ["params", "recurrent_fanin"], TINY)
    for name in ("params", "recurrent_fanin"):
        assert row[name].status == "ok" and row[name].value == expected[name].value
    assert row["t_exit"].status == "error" and "sys.exit(3)" in row["t_exit"].message
    assert row["t_osexit"].status == "error" and "exit code 5" in row["t_osexit"].message
    assert row["t_interrupt"].status == "error" and "KeyboardInterrupt" in row["t_interrupt"].message
    assert row["t_sleep"].status == "timeout" and "8 s limit" in row["t_sleep"].message


def test_a_worker_pool_serves_many_calls_and_replaces_a_timed_out_worker(plugin_dir, tmp_path,
                                                                         monkeypatch) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("ZERONAS_TEST_PIDS", str(pids))
    monkeypatch.setenv("ZERONAS_TEST_SLEEP", "120")
    monkeypatch.setenv("ZERONAS_TEST_SLEEP_MIN_K", "3")  # only cells with 3+ states sleep
    bench = Benchmark.nbnlp()
    small = [a.cell for a in bench.sample(40, 5) if a.cell.hidden_tuple_size == 1][:6]
    slow = next(a.cell for a in bench.sample(200, 6) if a.cell.hidden_tuple_size >= 3)
    url = f"sqlite:///{tmp_path}/pool.db"
    with WorkerPool(TINY, workers=2, imports=[PLUGIN]) as pool:
        first = pool.score(small[:3], ["params", "t_sleep"], url, progress=False)
        processes = {proc.pid for proc in pool.slots.pool._procs.values()}
        second = pool.score(small[3:], ["params", "t_sleep"], url, progress=False)
        assert (first.scored, second.scored, first.failed + second.failed) == (3, 3, 0)
        assert len(processes) == 2 and {proc.pid for proc in pool.slots.pool._procs.values()} == processes
        scored_by = {int(p.name) for p in pids.iterdir()}
        assert scored_by <= processes and os.getpid() not in scored_by  # the same workers served both calls

        stopped = pool.score([slow], ["params", "t_sleep"], url, timeout_s=1.5, progress=False)
        assert stopped.timed_out == 1
        again = pool.score([reference_cell("rnn")], ["params", "t_sleep"], url, progress=False)
        assert again.scored == 1 and again.failed == 0  # a worker is still there (or started again)
        with pytest.raises(ExecutorError, match="scores under config"):
            score_many([reference_cell("gru")], ["params"], TINY.with_(seed=1), url, progress=False, pool=pool)
    workers = [int(p.name) for p in pids.iterdir()]
    stop_by = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < stop_by:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)  # closing the pool stopped every worker
    with pytest.raises(ExecutorError, match="closed"):
        pool.score([reference_cell("gru")], ["params"], url, progress=False)
    with open_store(url) as store:
        rows = store.scores_table(TINY)
    assert len(rows) == 8 and rows[slow.canonical_id]["t_sleep"].status == "timeout"
    assert rows[slow.canonical_id]["params"].status == "ok"  # computed before the proxy that hung: kept


def test_a_worker_pool_replaces_a_worker_killed_while_idle(plugin_dir, tmp_path) -> None:
    cells = [a.cell for a in Benchmark.nbnlp().sample(6, 9)]
    url = f"sqlite:///{tmp_path}/idle.db"
    with WorkerPool(TINY, workers=2) as pool:
        assert pool.score(cells[:2], ["params"], url, progress=False).scored == 2
        victims = list(pool.slots.pool._procs.values())
        for proc in victims:
            os.kill(proc.pid, signal.SIGKILL)  # e.g. the OOM killer, between two rounds of a search
        for proc in victims:  # gone for good (a killed process is reaped only once all its threads have exited)
            proc.join(10)
            assert proc.exitcode == -signal.SIGKILL
        again = pool.score(cells[2:], ["params"], url, progress=False)
        with open_store(url) as store:
            messages = [s.message for cell in cells[2:] for s in store.get(cell.canonical_id, TINY).values()
                        if not s.ok]
        assert (again.scored, again.failed) == (4, 0), messages
        assert not {proc.pid for proc in victims} & {proc.pid for proc in pool.slots.pool._procs.values()}


def test_sigkill_of_a_real_run_then_resume(plugin_dir, tmp_path, sigkill_once) -> None:
    db_path = tmp_path / "kill.db"
    pids = tmp_path / "pids"
    pids.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")]),
               ZERONAS_TEST_SLEEP="0.6", ZERONAS_TEST_SLEEP_MIN_K="1", ZERONAS_TEST_PIDS=str(pids))
    command = [sys.executable, str(plugin_dir / "run_scoring.py"), f"sqlite:///{db_path}"]
    killed_pid = sigkill_once(command, env, lambda: len({r[1] for r in _rows(db_path)}), at_least=2, deadline_s=90)

    rows_before = _rows(db_path)
    by_cell: dict[str, set[str]] = {}
    for _, cid, name, status, _ in rows_before:
        by_cell.setdefault(cid, set()).add(name)
        assert status == "ok"
    assert 2 <= len(by_cell) < 8
    assert all(names == {"params", "t_sleep"} for names in by_cell.values())  # whole cells only

    # the orphaned workers stop by themselves
    workers = [int(p.name) for p in pids.iterdir()]
    assert workers and killed_pid not in workers
    stop_by = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < stop_by:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["total"] == 8 and summary["skipped"] >= len(by_cell)
    assert summary["scored"] == 8 - summary["skipped"] and summary["failed"] == 0
    rows_after = _rows(db_path)
    assert rows_after[:len(rows_before)] == rows_before  # nothing stored was recomputed or rewritten
    assert len(rows_after) == 2 * 8
    expected = {a.canonical_id for a in Benchmark.nbnlp().sample(8, 123)}
    assert {r[1] for r in rows_after} == expected


def test_ray_executor(plugin_dir, tmp_path) -> None:
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed (CI installs it and runs this)")

    slow, fast = reference_cell("lstm"), [reference_cell("rnn"), reference_cell("gru")]
    url = f"sqlite:///{tmp_path}/ray.db"
    # an instance started here is used as it is; its workers find the test module through PYTHONPATH
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(plugin_dir), "ZERONAS_TEST_SLEEP": "120",
                                       "ZERONAS_TEST_SLEEP_MIN_K": "2"}})
    try:
        summary = score_many([slow, *fast], ["params", "t_sleep"], TINY, url, workers=2, executor="ray",
                             timeout_s=3, progress=False, imports=[PLUGIN])
    finally:
        ray.shutdown()
    assert (summary.scored, summary.failed, summary.timed_out, summary.workers) == (3, 1, 1, 2)
    with open_store(url) as store:
        table = store.scores_table(TINY)
    assert table[slow.canonical_id]["t_sleep"].status == "timeout"
    assert table[slow.canonical_id]["params"].status == "ok"  # each proxy's failure is its own row
    for cell in fast:
        row = table[cell.canonical_id]
        assert row["params"].value == row["t_sleep"].value == score_cell(cell, ["params"], TINY)["params"].value
