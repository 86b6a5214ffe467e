"""The evaluation report: files, embedded plots, tables."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from zeronas.metrics import collect_all, proxy_metrics
from zeronas.proxies.runner import Score
from zeronas.report import format_table, markdown_table, rich_table, scatter_points, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["good", "rev", "flaky", "good+flaky"]


@pytest.fixture(scope="module")
def evaluated():
    rng = np.random.default_rng(0)
    n = 300
    loss = rng.uniform(4.4, 5.6, size=n)
    div = rng.random(n) < 0.15
    targets = {f"c{i}": (None if div[i] else float(loss[i])) for i in range(n)}
    scores = {}
    for i in range(n):
        a = f"c{i}"
        flaky = Score("flaky", float(rng.normal()), "ok", "", 0.05) if i % 7 else Score("flaky", None, "error",
                                                                                           "boom", 0.01)
        scores[a] = {"good": Score("good", float(-loss[i] + rng.normal(0, 0.2)), "ok", "", 0.1),
                     "rev": Score("rev", float(loss[i] + rng.normal(0, 0.2)), "ok", "", 0.2), "flaky": flaky}
    data = collect_all(NAMES, scores, targets, {"good": True, "rev": False, "flaky": True})
    results = {k: proxy_metrics(d, n_boot=50) for k, d in data.items()}
    return results, data


META = {"command": "zeronas evaluate --proxies good,rev <script>", "ground_truth": "nbnlp (bundled)",
        "config": {"hidden_size": 600, "seed": 0}, "config_hash": "0123456789abcdef", "date": "2026-01-01T00:00:00",
        "n_archs": 300, "version": "0.1.0"}


def test_report_files(tmp_path: Path, evaluated) -> None:
    results, data = evaluated
    files = write_report(tmp_path / "rep", results, data, META)
    assert files.html.exists() and files.markdown.exists() and files.json.exists()
    assert set(files.plots) == set(NAMES)
    for p in files.plots.values():
        assert p.parent == files.html.parent and p.read_bytes().startswith(PNG_MAGIC)

    page = files.html.read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == len(NAMES)
    assert all(base64.b64decode(u).startswith(PNG_MAGIC) for u in uris)
    assert "<table" in page and page.count("<tr><td>") == len(NAMES)
    for name in NAMES:
        assert f"<td>{name}</td>" in page
    assert "&lt;script&gt;" in page and "<script>" not in page  # meta text is escaped
    assert "0123456789abcdef" in page and "nbnlp (bundled)" in page
    assert f"{results['good'].kendall_tau:.3f}" in page
    assert not re.search(r'src="(?!data:)', page)  # nothing external: the page works on its own

    md = files.markdown.read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| proxy")]
    assert [r.split("|")[1].strip() for r in rows] == NAMES
    for name, path in files.plots.items():
        assert f"]({path.name})" in md

    blob = json.loads(files.json.read_text())
    assert blob["meta"]["config_hash"] == META["config_hash"]
    assert list(blob["results"]) == NAMES
    assert blob["results"]["flaky"]["n_failed"] == results["flaky"].n_failed > 0


def test_scatter_points_mark_diverged_and_failed(evaluated) -> None:
    results, data = evaluated
    d, m = data["flaky"], results["flaky"]
    pts = scatter_points(d, m)
    n_div_ok = sum(1 for v, x in zip(d.values, d.losses) if v is not None and x is None)
    assert len(pts.x_diverged) == n_div_ok > 0
    assert pts.diverged_y > pts.ppl_trained.max()
    assert pts.n_failed == m.n_failed == sum(1 for v in d.values if v is None)
    assert len(pts.x_trained) + len(pts.x_diverged) + pts.n_failed == len(d.values)
    assert pts.pick is not None
    expected_y = pts.diverged_y if math.isinf(m.top1_ppl) else m.top1_ppl
    assert pts.pick[1] == pytest.approx(expected_y)


def test_tables_list_every_proxy(evaluated) -> None:
    results, _ = evaluated
    text = format_table(results)
    lines = text.splitlines()
    assert len(lines) == 2 + len(NAMES)
    for name, line in zip(NAMES, lines[2:]):
        assert line.startswith(name + " ")
        assert f"{results[name].kendall_tau:.3f}" in line
    assert "↓" in lines[3] and "↑" in lines[2]  # rev is lower-is-better
    md = markdown_table(results)
    assert md.count("\n") == 1 + len(NAMES)
    assert rich_table(results).row_count == len(NAMES)
