"""`zeronas refine --replay`: halving replayed from the released WikiText-2 learning curves (a 9-epoch slice of the
bundled table), of named candidates and of seeded pools per policy, through the command line; and its bad inputs
(an unknown cell, a curve file without a needed column or epoch) as one-line errors with exit code 2."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from importlib.resources import files

import pytest
from typer.testing import CliRunner

from zeronas.cli import app
from zeronas.core.config import ScoringConfig
from zeronas.core.score import Score
from zeronas.refine.halving import Schedule
from zeronas.store import open_store

runner = CliRunner()
REFERENCE_IDS = {"1000000", "1000001", "1000002"}


def bundled_rows() -> tuple[list[str], list[dict[str, str]]]:
    with files("zeronas.data").joinpath("nbnlp", "wt2_dev_curves.csv.gz").open("rb") as fh:
        reader = csv.DictReader(io.StringIO(gzip.decompress(fh.read()).decode("utf-8")))
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """The three reference logs and the first twelve other logs that trained (status OK), epochs 1 to 9."""
    fields, rows = bundled_rows()
    ok_ids = []
    for r in rows:
        if r["status"] == "OK" and r["recepie_id"] not in REFERENCE_IDS and r["recepie_id"] not in ok_ids:
            ok_ids.append(r["recepie_id"])
    keep = REFERENCE_IDS | set(ok_ids[:12])
    chosen = [r for r in rows if r["recepie_id"] in keep and int(r["epoch"]) <= 9]
    path = tmp_path_factory.mktemp("curves") / "curves.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen)
    return {"path": path, "fields": fields, "rows": chosen, "candidates": ok_ids[:12]}


def curve(rows, log_id: str) -> dict[int, float]:
    return {int(r["epoch"]): math.exp(float(r["val_loss"])) for r in rows if r["recepie_id"] == log_id}


def one_line_error(res) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output[-800:], repr(res.exception))
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    return lines[0]


def recipe_file(rows, log_id: str, folder) -> str:
    path = folder / f"{log_id}.json"
    path.write_text(next(r["recipe"] for r in rows if r["recepie_id"] == log_id))
    return str(path)


def test_replay_of_named_candidates_halves_on_the_logged_curves(table, tmp_path):
    rows = table["rows"]
    ids = table["candidates"][:4]
    res = runner.invoke(app, ["refine", *[recipe_file(rows, i, tmp_path) for i in ids], "--replay", str(table["path"]),
                              "--rungs", "1,3", "--eta", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["executor"] == "replay" and out["continue"] is None and out["winner"]["checkpoint"] is None
    # the four candidates, then the table's three reference cells (NAS-Bench-NLP's rnn, lstm, gru)
    names = [c["name"] for c in out["candidates"]]
    assert names == [f"{i}.json" for i in ids] + ["nbnlp-rnn", "nbnlp-lstm", "nbnlp-gru"]
    # by hand from the file: seven cells at epoch 1, the best 7 // 3 = 2 go on to epoch 3, the best there wins
    logs = ids + ["1000000", "1000001", "1000002"]
    at1 = {i: curve(rows, i)[1] for i in logs}
    kept = sorted(logs, key=lambda i: at1[i])[:2]
    winner = min(kept, key=lambda i: curve(rows, i)[3])
    for c, log_id in zip(out["candidates"], logs):
        assert c["val_ppl"][0] == pytest.approx(at1[log_id], rel=1e-12)
        assert c["rung"] == (2 if log_id in kept else 1)
        seconds = sum(float(r["wall_seconds"]) for r in rows if r["recepie_id"] == log_id
                      and int(r["epoch"]) <= (3 if log_id in kept else 1))
        assert c["seconds"] == pytest.approx(seconds)  # charged the logged seconds
    assert out["winner"]["name"] == names[logs.index(winner)]


def test_replay_without_references_leaves_them_out(table, tmp_path):
    rows = table["rows"]
    res = runner.invoke(app, ["refine", recipe_file(rows, table["candidates"][0], tmp_path), "--replay",
                              str(table["path"]),
                              "--rungs", "1,3", "--no-references", "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["candidates"]) == 1


def test_pool_replay_reports_every_policy_with_known_costs(table, tmp_path):
    """Scores stored beforehand (hidden_cov = -final test perplexity, every cell passing state_escape): the
    training-free top-1 is then the pool's best, as the oracle's; costs follow from the schedule."""
    rows, store = table["rows"], f"sqlite:///{tmp_path / 'scores.db'}"
    config = ScoringConfig()
    final = {r["recepie_id"]: math.exp(float(r["test_loss"])) for r in rows if r["epoch"] == "9"}
    with open_store(store) as st:
        for log_id, ppl in final.items():
            recipe = next(r["recipe"] for r in rows if r["recepie_id"] == log_id)
            from zeronas.cells.recipe import parse_recipe

            cell = parse_recipe(json.loads(recipe))
            st.put_cell(cell.canonical_id, cell.to_json(), config,
                        {"hidden_cov": Score("hidden_cov", -ppl, "ok"), "state_escape": Score("state_escape", 0.0, "ok")})
    res = runner.invoke(app, ["refine", "--replay", str(table["path"]), "--repeats", "25", "--k", "3", "--rungs",
                              "1,3,9", "--no-references", "--store", store, "--json", "-q"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    policies = report["policies"]
    default = report["default"]
    names = list(policies)
    assert names == ["shortlist+halving", "training-free-top1", "random+halving", "shortlist-full-training",
                     "oracle"] and default == "shortlist+halving"
    top1, full, rand = "training-free-top1", "shortlist-full-training", "random+halving"
    assert policies[top1]["median_pick_ppl"] == policies["oracle"]["median_pick_ppl"]
    assert policies[top1]["p_best1"] == policies["oracle"]["p_best1"] and policies[top1]["mean_epochs"] == 0
    cost = Schedule((1, 3, 9), 3).cost(3)  # 3*1 + 1*2 + 1*6 = 11 epochs: nothing in this slice diverges
    assert policies[default]["mean_epochs"] == cost == policies[rand]["mean_epochs"] == 11
    assert policies[full]["mean_epochs"] == 3 * 9
    meta = report["meta"]  # twelve logs, fewer cells: logs of the same cell (up to renaming) count once
    assert meta["n_candidates"] <= 12 and meta["pool_size"] == round(0.8 * meta["n_candidates"])
    assert policies["oracle"]["mean_epochs"] == 9 * meta["pool_size"]
    for p in policies.values():
        assert 0 <= p["p_best1"] <= p["p_best5"] <= 1
        assert policies["oracle"]["median_pick_ppl"] <= p["median_pick_ppl"]
    # the terminal table names every policy and marks the default
    res = runner.invoke(app, ["refine", "--replay", str(table["path"]), "--repeats", "5", "--k", "3",
                              "--no-references", "--store", store, "-q"])
    assert res.exit_code == 0, res.output
    assert f"* {default}" in res.stdout and all(n in res.stdout for n in names)


def test_replay_bad_inputs_are_one_line_errors(table, tmp_path):
    rows, fields = table["rows"], table["fields"]
    one = recipe_file(rows, table["candidates"][0], tmp_path)
    base = ["refine", one, "--rungs", "1,3"]
    # an unknown cell: a real cell that the table does not hold
    line = one_line_error(runner.invoke(app, ["refine", "lstm", "--replay", str(table["path"]), "--rungs", "1,3"]))
    assert "no curve of candidate 'lstm'" in line
    assert "'nope' is not a file" in one_line_error(runner.invoke(app, ["refine", "nope", "--replay",
                                                                        str(table["path"])]))
    # a curve file without a needed column
    no_val = tmp_path / "no_val.csv"
    with open(no_val, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f for f in fields if f != "val_loss"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    assert "no column val_loss" in one_line_error(runner.invoke(app, base + ["--replay", str(no_val)]))
    # a curve file without a needed epoch: a rung past the last logged epoch, and a log with a gap
    assert "beyond the logged 9" in one_line_error(runner.invoke(app, base[:2] + ["--rungs", "1,3,27", "--replay",
                                                                                 str(table["path"])]))
    gap = tmp_path / "gap.csv"
    with open(gap, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(r for r in rows if not (r["recepie_id"] == table["candidates"][0] and r["epoch"] == "2"))
    assert "has no epoch 2" in one_line_error(runner.invoke(app, base + ["--replay", str(gap)]))
    # fractional rungs cannot be read from per-epoch logs; rungs out of order; missing file
    assert "whole epochs only" in one_line_error(runner.invoke(app, base[:2] + ["--rungs", "0.25,0.75",
                                                                                "--replay", str(table["path"])]))
    assert "rungs must increase" in one_line_error(runner.invoke(app, base[:2] + ["--rungs", "3,1", "--replay",
                                                                                  str(table["path"])]))
    assert "cannot read" in one_line_error(runner.invoke(app, base + ["--replay", str(tmp_path / "none.csv")]))
    # pools: no --repeats with named candidates, a bad repeat count or pool fraction, a bad K
    assert "--repeats" in one_line_error(runner.invoke(app, base + ["--replay", str(table["path"]), "--repeats", "3"]))
    store = f"sqlite:///{tmp_path / 'empty.db'}"
    pools = ["refine", "--replay", str(table["path"]), "--store", store, "--rungs", "1,3", "-q"]
    assert "--repeats must be" in one_line_error(runner.invoke(app, pools + ["--repeats", "0", "--k", "2"]))
    assert "--pool-fraction" in one_line_error(runner.invoke(app, pools + ["--pool-fraction", "1.5", "--k", "2"]))
    assert "k must be" in one_line_error(runner.invoke(app, pools + ["--k", "0"]))
