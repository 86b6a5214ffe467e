"""The command line, driven as a user would (typer's runner; the console script is the same app)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from zeronas.bench.nbnlp import load_recipe_list
from zeronas.cli import app
from zeronas.cells.reference import LSTM

runner = CliRunner()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_accepts_bundled_recipes(tmp_path):
    rows = list(load_recipe_list())[::500]
    for row in rows:
        path = write(tmp_path, f"{row['recepie_id']}.json", json.dumps(row["recipe"]))
        result = runner.invoke(app, ["cell", "validate", str(path)])
        assert result.exit_code == 0, result.output
        assert "valid cell" in result.output


MALFORMED = {
    "invalid_json": ('{"h_new_0": {"op": "linear", "input": ["x"]', "invalid JSON"),
    "unknown_op": ('{"h_new_0": {"op": "conv3x3", "input": ["x", "h_prev_0"]}}', "unknown op 'conv3x3'"),
    "arity": ('{"h_new_0": {"op": "blend", "input": ["x", "h_prev_0"]}}', "takes exactly 3 input(s), got 2"),
    "undefined": ('{"h_new_0": {"op": "linear", "input": ["x", "h_prev_0", "ghost"]}}', "input 'ghost' is not defined"),
    "cycle": ('{"a": {"op": "linear", "input": ["x", "b"]}, "b": {"op": "activation_tanh", "input": ["a"]},'
              ' "h_new_0": {"op": "elementwise_sum", "input": ["b", "h_prev_0"]}}', "cycle"),
    "no_output": ('{"a": {"op": "linear", "input": ["x", "h_prev_0"]}}', "missing output node 'h_new_0'"),
    "unused_x": ('{"h_new_0": {"op": "linear", "input": ["h_prev_0"]}}', "input 'x' is not used"),
    "dead_node": ('{"h_new_0": {"op": "linear", "input": ["x", "h_prev_0"]},'
                  ' "lost": {"op": "activation_tanh", "input": ["h_new_0"]}}', "node 'lost' feeds no output"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_validate_rejects_with_a_specific_message(tmp_path, case):
    text, message = MALFORMED[case]
    path = write(tmp_path, f"{case}.json", text)
    result = runner.invoke(app, ["cell", "validate", str(path)])
    assert result.exit_code == 2
    assert message in result.output, result.output
    assert str(path) in result.output.replace("\n", "")  # the message names the file
    assert "Traceback" not in result.output


def test_validate_missing_file(tmp_path):
    result = runner.invoke(app, ["cell", "validate", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_show_json_reports_ids_and_parameters(tmp_path):
    path = write(tmp_path, "lstm.json", json.dumps(LSTM))
    result = runner.invoke(app, ["cell", "show", str(path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["hidden_tuple_size"] == 2 and info["nodes"] == 13
    assert info["op_counts"]["linear"] == 4
    # 10000*400 + 10000 + per layer 4 gates * (in*H + H*H + H)
    expected = 4_010_000 + sum(4 * (i * h + h * h + h) for i, h in [(400, 600), (600, 600), (600, 400)])
    assert info["parameters"] == expected
    by_name = json.loads(runner.invoke(app, ["cell", "show", "lstm", "--json"]).output)
    assert by_name["canonical_id"] == info["canonical_id"]


def test_bench_describe_json():
    result = runner.invoke(app, ["bench", "describe", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["runs"] == 8529 and info["recipes"] == 2843
    assert 84.0 < info["best_test_ppl"] < 85.0


def test_score_json_and_bad_proxy():
    result = runner.invoke(app, ["score", "rnn", "--proxies", "params", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)  # stdout is the JSON object; progress goes to stderr
    assert "scoring 1/1 proxies" in result.stderr
    assert info["scores"]["params"]["status"] == "ok"
    assert info["config"]["seed"] == 0 and len(info["config_hash"]) == 16
    bad = runner.invoke(app, ["score", "rnn", "--proxies", "nonsense"])
    assert bad.exit_code == 2 and "unknown proxy 'nonsense'" in bad.output


def test_score_without_proxies_gives_the_recommended_methods_verdict():
    result = runner.invoke(app, ["score", "lstm", "--batch-size", "4", "--seq-len", "8", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["scores"]
    assert set(scores) == {"hidden_cov", "state_escape", "hidden_cov!state_escape"}
    verdict = scores["hidden_cov!state_escape"]
    assert verdict["status"] == "ok" and verdict["value"] == scores["hidden_cov"]["value"]
    assert "passes state_escape" in verdict["message"]  # the LSTM passes the trainability check


def test_proxies_json_lists_directions():
    result = runner.invoke(app, ["proxies", "--json"])
    listed = json.loads(result.output)
    assert {"name", "higher_is_better", "needs_data", "description", "gate"} <= set(listed[0])
    gates = {p["name"]: p["gate"] for p in listed if p["gate"] is not None}
    assert gates == {"state_escape": 0.0, "hidden_rank": 0.0}  # the trainability check and the memory check
    table = runner.invoke(app, ["proxies"])
    assert table.exit_code == 0 and "<= 0" in table.output


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "zeronas", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("zeronas ")


def test_train_quick_json(tmp_path):
    result = runner.invoke(app, ["train", "rnn", "--quick", "--steps", "3", "--checkpoint", str(tmp_path / "ck"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)  # progress, if any, is on stderr
    assert info["steps"] == 3 and not info["diverged"]
    assert info["test_ppl"] > 1
    assert (tmp_path / "ck" / "checkpoint.pt").exists()


def test_named_cells_resolve():
    result = runner.invoke(app, ["cell", "show", "DARTS_V2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["hidden_tuple_size"] == 1
