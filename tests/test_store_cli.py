"""``zeronas store info|delete|export|vacuum|migrate``."""

from __future__ import annotations

import csv
import io
import json

from typer.testing import CliRunner

from zeronas.cli import app
from zeronas.proxies import ScoringConfig
from zeronas.proxies.runner import Score
from zeronas.store import open_store

runner = CliRunner()


def filled(tmp_path):
    path = tmp_path / "s.db"
    cfg = ScoringConfig()
    with open_store(f"sqlite:///{path}") as st:
        for i in range(6):
            st.put_cell(f"{i:040x}", "{}", cfg, [Score("params", float(i), "ok", seconds=0.1),
                                                  Score("zen", None, "timeout" if i % 2 else "inf", "x", 1.0)])
    return path, cfg


def test_info_counts_by_config_proxy_revision_and_status(tmp_path):
    path, cfg = filled(tmp_path)
    res = runner.invoke(app, ["store", "info", "--store", f"sqlite:///{path}", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["rows"] == 12 and info["schema_version"] == "2" and info["bytes"] > 0
    entry = info["configs"][cfg.config_hash()]
    assert entry["cells"] == 6 and entry["proxies"] == {"params@1": {"ok": 6}, "zen@1": {"inf": 3, "timeout": 3}}
    text = runner.invoke(app, ["store", "info", "--store", f"sqlite:///{path}"])
    assert "12 rows" in text.stdout and "zen@1: inf 3, timeout 3" in text.stdout


def test_delete_asks_first_and_deletes_only_what_matches(tmp_path):
    path, cfg = filled(tmp_path)
    url = f"sqlite:///{path}"
    no = runner.invoke(app, ["store", "delete", "--store", url, "--proxy", "zen", "--status", "timeout"], input="n\n")
    assert no.exit_code == 1 and "delete 3 rows" in no.output
    with open_store(url) as st:
        assert st.count() == 12
    yes = runner.invoke(app, ["store", "delete", "--store", url, "--proxy", "zen", "--status", "timeout"], input="y\n")
    assert yes.exit_code == 0 and "deleted 3 rows" in yes.output
    with open_store(url) as st:
        assert st.count() == 9 and st.missing_proxies([f"{1:040x}"], ["zen"], cfg) == {f"{1:040x}": ["zen"]}
    none = runner.invoke(app, ["store", "delete", "--store", url, "--config", "feedfeedfeedfeed", "--yes"])
    assert none.exit_code == 0 and "nothing deleted" in none.output
    bad = runner.invoke(app, ["store", "delete", "--store", url, "--status", "broken", "--yes"])
    assert bad.exit_code == 2 and "unknown status 'broken'" in bad.output


def test_export_csv_has_one_row_per_score(tmp_path):
    path, cfg = filled(tmp_path)
    res = runner.invoke(app, ["store", "export", "--store", f"sqlite:///{path}"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 12 and rows[0]["proxy"] == "params" and rows[0]["revision"] == "1"
    assert {r["status"] for r in rows} == {"ok", "inf", "timeout"}
    assert float(rows[2]["value"]) == 1.0 and rows[1]["value"] == ""
    out = tmp_path / "scores.csv"
    res = runner.invoke(app, ["store", "export", "--store", f"sqlite:///{path}", "--out", str(out)])
    assert res.exit_code == 0 and "wrote 12 rows" in res.output and out.read_text() == runner.invoke(
        app, ["store", "export", "--store", f"sqlite:///{path}"]).stdout
    bad = runner.invoke(app, ["store", "export", "--store", f"sqlite:///{path}", "--format", "xlsx"])
    assert bad.exit_code == 2 and "not csv or parquet" in bad.output


def test_vacuum_and_migrate(tmp_path):
    path, _ = filled(tmp_path)
    url = f"sqlite:///{path}"
    runner.invoke(app, ["store", "delete", "--store", url, "--yes"])
    res = runner.invoke(app, ["store", "vacuum", "--store", url])
    assert res.exit_code == 0 and "MB ->" in res.output
    res = runner.invoke(app, ["store", "migrate", "--store", url])
    assert res.exit_code == 0 and "nothing to do" in res.output
    res = runner.invoke(app, ["store", "migrate", "--store", f"sqlite:///{tmp_path / 'absent.db'}"])
    assert res.exit_code == 2 and "no such results store" in res.output
    assert not (tmp_path / "absent.db").exists()
    res = runner.invoke(app, ["store", "info", "--store", f"sqlite:///{tmp_path / 'absent.db'}"])
    assert res.exit_code == 2 and "no such results store" in res.output
