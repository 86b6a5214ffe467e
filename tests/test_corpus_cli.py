"""``--corpus`` on the command line: a user's text or the bundled WikiText-2 for score, evaluate and search."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zeronas.bench.nbnlp import Benchmark
from zeronas.cli import app
from zeronas.proxies import TINY, ScoringConfig, score_cell

runner = CliRunner()
TEXT = "".join(f"the {w} sat on the mat {i % 7} \n" for i, w in enumerate(["cat", "dog", "bird", "fox"] * 30))


def tiny_config(tmp_path: Path) -> Path:
    """TINY's sizes; corpus and probe split left to --corpus."""
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({k: v for k, v in TINY.to_dict().items()
                                if k not in ("device", "corpus", "probe_split")}))
    return path


def truth_csv(tmp_path: Path, n: int = 4) -> tuple[Path, list]:
    archs = Benchmark.nbnlp().sample(n, seed=1)
    path = tmp_path / "truth.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["recipe", "test_loss"])
        for i, arch in enumerate(archs):
            writer.writerow([arch.cell.to_json(), f"{5.0 + 0.1 * i:.4f}"])
    return path, archs


def stored_configs(db: Path) -> dict[str, dict]:
    with sqlite3.connect(db) as con:
        return {h: json.loads(t) for h, t in con.execute("SELECT config_hash, config_json FROM configs")}


def test_score_with_a_user_file_is_named_by_its_content(tmp_path: Path) -> None:
    outputs = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "notes.txt").write_text(TEXT, encoding="utf-8")
        result = runner.invoke(app, ["score", "lstm", "--corpus", str(tmp_path / folder / "notes.txt"),
                                     "--batch-size", "4", "--seq-len", "8", "-p", "params,gradscore", "--json"])
        assert result.exit_code == 0, result.output
        assert str(tmp_path) not in result.stdout  # no machine path in what is printed or stored
        outputs.append(json.loads(result.stdout))
    one, two = outputs
    assert one["config"]["corpus"].startswith("sha256:") and one["config"]["corpus_name"] == "notes.txt"
    assert one["config"]["probe_split"] == "train"  # a single file is every split
    assert one["config_hash"] == two["config_hash"] != ScoringConfig().config_hash()
    assert one["scores"]["gradscore"]["status"] == "ok"
    assert [s["value"] for s in one["scores"].values()] == [s["value"] for s in two["scores"].values()]


BAD = {
    "missing": (None, "no such file or folder"),
    "empty": (b"", "the file is empty"),
    "binary": (b"\x00\x01\x02abc", "binary file"),
    "latin-1": (b"na\xefve\n", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_corpus_is_one_error_line_and_no_store(tmp_path: Path, case: str) -> None:
    data, message = BAD[case]
    path = tmp_path / "corpus.txt"
    if data is not None:
        path.write_bytes(data)
    db = tmp_path / "z.db"
    for args in (["score", "lstm", "-p", "params"],
                 ["evaluate", "-p", "params", "--limit", "2", "--store", f"sqlite:///{db}", "--workers", "1"],
                 ["search", "-a", "random", "--budget", "2", "--store", f"sqlite:///{db}", "--workers", "1"]):
        result = runner.invoke(app, [*args, "--corpus", str(path)])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --corpus:"), result.stderr
        assert message in lines[0] and str(path) in lines[0]
        assert not db.exists()


def test_missing_split_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    for split in ("train", "valid"):
        (tmp_path / "c" / f"{split}.txt").write_text(TEXT, encoding="utf-8")
    result = runner.invoke(app, ["score", "lstm", "-p", "params", "--corpus", str(tmp_path / "c")])
    assert result.exit_code == 2 and "test.txt: missing file" in result.stderr


def test_evaluate_wikitext2_with_a_csv_ground_truth(tmp_path: Path) -> None:
    truth, archs = truth_csv(tmp_path)
    db = tmp_path / "w.db"
    result = runner.invoke(app, ["evaluate", "--corpus", "wikitext-2", "--ground-truth", str(truth),
                                 "-p", "params,zen", "--store", f"sqlite:///{db}", "--workers", "1",
                                 "--scoring-config", str(tiny_config(tmp_path)), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n_archs"] == 4 and out["scoring"]["scored"] == 4
    assert out["config"]["corpus"] == "wikitext-2" and out["config"]["probe_split"] == "valid"
    assert out["proxies"]["zen"]["n"] == 4  # every cell scored on WikiText-2 validation text
    expected = TINY.with_corpus("wikitext-2")
    assert stored_configs(db) == {expected.config_hash(): {k: v for k, v in expected.to_dict().items()
                                                           if k != "device"}}
    # a config file that asks for the training split of wikitext-2 is refused, naming the field
    asks_train = tmp_path / "train.json"
    asks_train.write_text(json.dumps({**json.loads(tiny_config(tmp_path).read_text()), "probe_split": "train"}))
    refused = runner.invoke(app, ["evaluate", "--corpus", "wikitext-2", "--ground-truth", str(truth), "-p", "params",
                                  "--store", f"sqlite:///{tmp_path / 'r.db'}", "--scoring-config", str(asks_train)])
    assert refused.exit_code == 2 and "'probe_split'" in refused.stderr
    assert not (tmp_path / "r.db").exists()


def test_evaluate_two_workers_load_a_user_corpus(tmp_path: Path) -> None:
    truth, archs = truth_csv(tmp_path, 3)
    corpus = tmp_path / "mine"
    corpus.mkdir()
    for split, text in (("train", TEXT), ("valid", TEXT[:300]), ("test", TEXT[300:600])):
        (corpus / f"{split}.txt").write_text(text, encoding="utf-8")
    db = tmp_path / "u.db"
    result = runner.invoke(app, ["evaluate", "--corpus", str(corpus), "--ground-truth", str(truth), "-p", "params",
                                 "--store", f"sqlite:///{db}", "--workers", "2",
                                 "--scoring-config", str(tiny_config(tmp_path)), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["scoring"]["scored"] == 3 and out["scoring"]["workers"] == 2
    config = ScoringConfig.from_dict(json.loads(tiny_config(tmp_path).read_text())).with_corpus(corpus)
    configs = stored_configs(db)
    assert list(configs) == [config.config_hash()] and "corpus_path" not in configs[config.config_hash()]
    assert str(tmp_path) not in db.read_bytes().decode("utf-8", "replace")  # no machine path in the store
    # the workers' models had the user corpus's vocabulary: params match this process's, not PTB's
    with sqlite3.connect(db) as con:
        stored = dict(con.execute("SELECT canonical_id, value FROM results WHERE proxy = 'params'"))
    for arch in archs:
        assert stored[arch.canonical_id] == score_cell(arch.cell, ["params"], config)["params"].value
    assert stored[archs[0].canonical_id] != score_cell(archs[0].cell, ["params"], TINY)["params"].value


def test_search_on_wikitext2(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = runner.invoke(app, ["search", "-a", "random", "--budget", "2", "--corpus", "wikitext-2", "-p", "params",
                                 "--scoring-config", str(tiny_config(tmp_path)), "--store", f"sqlite:///{db}",
                                 "--workers", "1", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["top"]) == 2
    assert [c["corpus"] for c in stored_configs(db).values()] == ["wikitext-2"]
