"""A store that is never poisoned: setup errors (device, config, a proxy a worker lacks) stop the run before any
row is written, the config file means what it says, and error text is never read as markup."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest
from typer.testing import CliRunner

from zeronas.bench.nbnlp import Benchmark
from zeronas.cli import app
from zeronas.proxies import ScoringConfig
from zeronas.core.config import ConfigError
from zeronas.proxies.device import check_device
from zeronas.proxies.registry import PROXIES, proxy
from zeronas.run.executor import ExecutorError, score_many

runner = CliRunner()


def truth(tmp_path, n=3):
    path = tmp_path / "truth.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["recipe", "test_loss"])
        for a in Benchmark.nbnlp().sample(n, 1):
            w.writerow([a.cell.to_json(), a.test_losses[0] if a.test_losses[0] is not None else ""])
    return path


def rows(db) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("select count(*) from results").fetchone()[0]
        except sqlite3.OperationalError:  # no table: nothing was ever written
            return 0


@pytest.mark.parametrize("device, message", [("tpu", "not a device torch knows"), ("", "must name a device"),
                                             ("cuda", "no usable CUDA GPU"), ("cuda:7", "CUDA")])
def test_a_bad_device_stores_nothing_and_says_why(tmp_path, device, message):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: a missing one cannot be tested here")
    db = tmp_path / "s.db"
    res = runner.invoke(app, ["evaluate", "--ground-truth", str(truth(tmp_path)), "--proxies", "params", "--store",
                              f"sqlite:///{db}", "--workers", "1", "--device", device, "-q"])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
    assert rows(db) == 0
    # the same store then scores normally on the CPU: nothing was poisoned
    ok = runner.invoke(app, ["evaluate", "--ground-truth", str(truth(tmp_path)), "--proxies", "params", "--store",
                             f"sqlite:///{db}", "--workers", "1", "--json", "-q"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["proxies"]["params"]["n_failed"] == 0 and rows(db) == 3


@pytest.mark.parametrize("field, value, message", [
    ("batch_size", 0, "'batch_size' must be a positive integer"),
    ("batch_size", -3, "'batch_size' must be a positive integer"),
    ("hidden_size", "big", "'hidden_size' must be a positive integer"),
    ("n_layers", True, "'n_layers' must be a positive integer"),
    ("seed", -1, "'seed' must be an integer"),
    ("zen_alpha", 0, "'zen_alpha' must be a positive number"),
    ("corpus", "wiki", "'corpus' must be ptb, wikitext-2 or sha256:"),
    ("colour", "red", "unknown scoring config field(s): colour"),
])
def test_a_nonsense_config_is_refused_naming_the_field(tmp_path, field, value, message):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({field: value}))
    db = tmp_path / "s.db"
    res = runner.invoke(app, ["evaluate", "--ground-truth", str(truth(tmp_path)), "--proxies", "params", "--store",
                              f"sqlite:///{db}", "--scoring-config", str(cfg), "-q"])
    assert res.exit_code == 2 and message in res.output and str(cfg) in res.output
    assert rows(db) == 0
    with pytest.raises(ConfigError, match=field):
        ScoringConfig.from_dict({field: value})


def test_the_config_files_seed_and_device_are_kept(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"seed": 5, "device": "cpu", "batch_size": 4, "seq_len": 8, "emb_size": 16,
                               "hidden_size": 24, "ntk_batch": 4}))
    args = ["evaluate", "--ground-truth", str(truth(tmp_path)), "--proxies", "params", "--store",
            f"sqlite:///{tmp_path / 's.db'}", "--workers", "1", "--scoring-config", str(cfg), "--json", "-q"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["config"]["seed"] == 5  # not the option's default
    res = runner.invoke(app, args + ["--seed", "7"])  # an option that is given does override the file
    assert json.loads(res.stdout)["config"]["seed"] == 7


def test_a_proxy_a_worker_lacks_stops_the_run_without_a_row(tmp_path):
    name = "_only_in_this_process"
    with PROXIES.scoped():

        @proxy(name, higher_is_better=True, needs_data=False, description="registered in the test process only")
        def _only(ctx) -> float:  # pragma: no cover - never reached in a worker
            return 1.0

        db = tmp_path / "s.db"
        cells = [a.cell for a in Benchmark.nbnlp().sample(2, 3)]
        with pytest.raises(ExecutorError, match=f"a worker cannot score: .*{name}"):
            score_many(cells, [name], None, f"sqlite:///{db}", workers=1, executor="local", progress=False)
        assert rows(db) == 0
    assert name not in PROXIES


def test_check_device():
    assert check_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="not a device torch knows"):
        check_device("gpu please")


def test_markup_in_error_text_is_printed_as_text(tmp_path):
    bad = tmp_path / "[" / "cell.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"[/bold]": {"op": "linear", "input": ["x", "h_prev_0"]},
                               "h_new_0": {"op": "activation_tanh", "input": ["x"]}}))
    res = runner.invoke(app, ["cell", "validate", str(bad)])
    assert res.exit_code == 2, res.output
    assert "[/bold]" in res.output and "Traceback" not in res.output and str(bad.parent) in res.output


def test_an_in_memory_store_keeps_what_it_scored(tmp_path):
    res = runner.invoke(app, ["evaluate", "--ground-truth", str(truth(tmp_path)), "--proxies", "params", "--store",
                              "sqlite:///:memory:", "--workers", "1", "--json", "-q"])
    assert res.exit_code == 0, res.output
    params = json.loads(res.stdout)["proxies"]["params"]
    assert params["n_failed"] == 0 and params["n"] + params["n_diverged"] == 3


def test_another_applications_sqlite_file_is_left_untouched(tmp_path):
    from zeronas.store import StoreError, open_store

    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table users (id integer primary key, name text)")
        conn.execute("insert into users (name) values ('ada')")
    conn.close()
    before = other.read_bytes()
    res = runner.invoke(app, ["evaluate", "--ground-truth", str(truth(tmp_path)), "--proxies", "params", "--store",
                              f"sqlite:///{other}", "--workers", "1", "-q"])
    assert res.exit_code == 2 and "another application" in res.output and "users" in res.output
    assert other.read_bytes() == before and not (tmp_path / "app.db-wal").exists()
    text = tmp_path / "notes.db"
    text.write_text("not a database at all")
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_store(f"sqlite:///{text}")
    assert text.read_text() == "not a database at all"


def test_a_read_only_open_reads_and_never_writes(tmp_path):
    from zeronas.proxies.runner import Score
    from zeronas.store import StoreError, open_store

    db = tmp_path / "s.db"
    args = ["evaluate", "--ground-truth", str(truth(tmp_path)), "--proxies", "params", "--store", f"sqlite:///{db}",
            "--workers", "1", "--json", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    before = db.read_bytes()
    res = runner.invoke(app, args + ["--no-score"])  # --no-score opens the store read-only
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["proxies"]["params"]["n_failed"] == 0
    with open_store(f"sqlite:///{db}", read_only=True) as st:
        assert len(st.scores_table(ScoringConfig(), ["params"])) == 3
        with pytest.raises(StoreError, match="read-only"):
            st.put_cell("x", "{}", ScoringConfig(), [Score("params", 1.0, "ok")])
        with pytest.raises(StoreError, match="read-only"):
            st.delete(ScoringConfig())
    assert db.read_bytes() == before
    with pytest.raises(StoreError, match="no such results store"):
        open_store(f"sqlite:///{tmp_path / 'absent.db'}", read_only=True)
    assert not (tmp_path / "absent.db").exists()


def test_report_and_limit_are_checked_before_any_scoring(tmp_path):
    db = tmp_path / "s.db"
    taken = tmp_path / "report.txt"
    taken.write_text("mine")
    base = ["evaluate", "--ground-truth", str(truth(tmp_path)), "--proxies", "params", "--store", f"sqlite:///{db}",
            "--workers", "1", "-q"]
    res = runner.invoke(app, base + ["--report", str(taken)])
    assert res.exit_code == 2 and "exists and is not a folder" in res.output and taken.read_text() == "mine"
    assert rows(db) == 0
    res = runner.invoke(app, base + ["--limit", "-1"])
    assert res.exit_code == 2 and "--limit must be 0 or more" in res.output and "Traceback" not in res.output


def test_bad_numbers_and_empty_lists_are_one_line_errors(tmp_path):
    store = f"sqlite:///{tmp_path / 's.db'}"
    for args, text in ((["search", "--top", "-1", "--store", store, "-q"], "--top must be 0 or more"),
                       (["search", "--seed", "-1", "--budget", "4", "--store", store, "-q"], "the seed must be"),
                       (["search", "--proxy", " ", "--store", store, "-q"], "--proxy: no proxy named"),
                       (["evaluate", "--proxies", "", "--store", store, "-q"], "--proxies: no proxy named")):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and text in res.output and "Traceback" not in res.output, (args, res.output)
    assert rows(tmp_path / "s.db") == 0


def test_named_cells_match_case_insensitively():
    res = runner.invoke(app, ["cell", "show", "enas_ptb", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["canonical_id"] == json.loads(
        runner.invoke(app, ["cell", "show", "ENAS_PTB", "--json"]).stdout)["canonical_id"]


def test_a_huge_finite_loss_is_not_called_diverged(tmp_path):
    from zeronas.metrics import ProxyData, proxy_metrics
    from zeronas.report import table_rows

    data = ProxyData.from_values("p", [3.0, 2.0, 1.0], [1e308, 5.0, None], higher_is_better=True)
    m = proxy_metrics(data, n_boot=0)
    assert m.top1_ppl == float("inf") and not m.top1_diverged
    _, body = table_rows({"p": m})
    assert "inf (loss too large)" in body[0] and "diverged" not in body[0].__str__().split("top")[0]
    worse = proxy_metrics(ProxyData.from_values("q", [3.0, 2.0], [None, 5.0], higher_is_better=True), n_boot=0)
    assert worse.top1_diverged and "inf (diverged)" in table_rows({"q": worse})[1][0]


def test_search_json_says_diverged(tmp_path):
    bench = Benchmark.nbnlp()
    res = runner.invoke(app, ["search", "--proxy", "params", "--algorithm", "random", "--budget", "40", "--top", "40",
                              "--store", f"sqlite:///{tmp_path / 's.db'}", "--workers", "1", "--json", "-q"])
    assert res.exit_code == 0, res.output
    picks = json.loads(res.stdout)["top"]
    assert any(p["diverged"] for p in picks)  # 40 random benchmark cells hold some that diverged
    for p in picks:
        arch = bench.get(p["canonical_id"])
        assert p["diverged"] == arch.diverged and (p["test_ppl"] is None) == arch.diverged
        assert p["test_loss"] == arch.mean_test_loss


def test_report_markdown_shows_the_csv_name_as_code(tmp_path):
    from zeronas.report import _markdown

    text = _markdown({}, {}, {"ground_truth": "<img src=x onerror=alert(1)>.csv", "command": "a `b` c"})
    assert "`<img src=x onerror=alert(1)>.csv`" in text and "``a `b` c``" in text


def test_a_full_disk_is_a_store_error_that_keeps_earlier_cells(tmp_path):
    from zeronas.proxies.runner import Score
    from zeronas.store import StoreError, open_store

    with open_store(f"sqlite:///{tmp_path / 's.db'}") as st:
        cfg = ScoringConfig()
        assert st.put_cell("a" * 40, "{}", cfg, [Score("params", 1.0, "ok")]) == 1
        pages = st._db.execute("PRAGMA page_count").fetchone()[0]
        st._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full
        with pytest.raises(StoreError, match="cannot write the scores of b+: .*full"):
            st.put_cell("b" * 40, "x" * 100_000, cfg, [Score("params", 2.0, "ok")])
        assert list(st.scores_table(cfg, ["params"])) == ["a" * 40]


def test_the_store_and_the_metrics_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, zeronas.store, zeronas.store.sqlite, zeronas.metrics, zeronas.proxies; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
