"""``zeronas evaluate`` end to end: bundled ground truth and a user CSV, scores stored and reused."""

from __future__ import annotations

import csv
import json
import math

from typer.testing import CliRunner

from zeronas.bench.nbnlp import Benchmark
from zeronas.cli import app
from zeronas.proxies import TINY

runner = CliRunner()
KEYS = {"kendall_tau", "spearman", "tau_top10", "top1_ppl", "top10_mean_ppl", "divergence_auc", "n", "n_failed",
        "seconds_per_arch"}


def tiny_config(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({k: v for k, v in TINY.to_dict().items() if k != "device"}))
    return path


def evaluate(args):
    result = runner.invoke(app, ["evaluate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_evaluate_bundled_sample_then_reuses_the_store(tmp_path):
    store = f"sqlite:///{tmp_path / 'z.db'}"
    args = ["--proxies", "params,zen,params+zen", "--limit", "12", "--sample-seed", "3", "--store", store,
            "--workers", "1", "--scoring-config", str(tiny_config(tmp_path)), "--report", str(tmp_path / "rep")]
    first = evaluate(args)
    assert first["n_archs"] == 12 and first["ground_truth"] == "nb-nlp"
    assert set(first["proxies"]) == {"params", "zen", "params+zen"}
    for metrics in first["proxies"].values():
        assert KEYS <= set(metrics)
        assert metrics["n"] + metrics["n_failed"] <= 12
    assert first["scoring"]["scored"] == 12
    second = evaluate(args)
    assert second["scoring"]["scored"] == 0 and second["scoring"]["skipped"] == 12
    assert second["proxies"]["zen"]["kendall_tau"] == first["proxies"]["zen"]["kendall_tau"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "data:image/png;base64," in html and "params+zen" in html


def test_evaluate_user_csv(tmp_path):
    bench = Benchmark.nbnlp()
    archs = bench.sample(8, seed=1)
    path = tmp_path / "truth.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["recipe", "test_loss"])
        for i, arch in enumerate(archs):
            loss = 4.5 + 0.1 * i
            writer.writerow([arch.cell.to_json(), "" if i == 0 else f"{loss:.4f}"])  # the first one diverged
    out = evaluate(["--ground-truth", str(path), "--proxies", "params", "--store", f"sqlite:///{tmp_path / 'u.db'}",
                    "--workers", "1", "--scoring-config", str(tiny_config(tmp_path))])
    assert out["n_archs"] == 8 and out["ground_truth"] == str(path)
    params = out["proxies"]["params"]
    assert params["n"] == 7  # the diverged cell is excluded from correlations
    assert params["divergence_auc"] is not None and not math.isnan(params["divergence_auc"])


def test_evaluate_json_keeps_progress_on_stderr_unless_quiet(tmp_path):
    args = ["evaluate", "--proxies", "params", "--limit", "3", "--store", f"sqlite:///{tmp_path / 'p.db'}",
            "--workers", "1", "--scoring-config", str(tiny_config(tmp_path)), "--json"]
    loud = runner.invoke(app, args)
    assert loud.exit_code == 0, loud.output
    assert json.loads(loud.stdout)["scoring"]["scored"] == 3  # stdout is the JSON object alone
    assert "scored 3/3 cells" in loud.stderr  # a log (not a terminal) gets plain progress lines
    quiet = runner.invoke(app, args[:-1] + ["--limit", "4", "--json", "--quiet"])
    assert quiet.exit_code == 0, quiet.output
    assert json.loads(quiet.stdout)["scoring"]["scored"] == 1 and quiet.stderr == ""


def test_evaluate_reports_bad_csv_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('recipe,test_loss\n"{""h_new_0"": {""op"": ""linear"", ""input"": [""x"", ""h_prev_0""]}}",4.5\n'
                    'not json,4.6\n')
    result = runner.invoke(app, ["evaluate", "--ground-truth", str(path), "--proxies", "params",
                                 "--store", f"sqlite:///{tmp_path / 'b.db'}"])
    assert result.exit_code == 2
    assert "line 3" in result.output


def test_evaluate_unknown_proxy(tmp_path):
    result = runner.invoke(app, ["evaluate", "--proxies", "zen+nonsense", "--store", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2 and "nonsense" in result.output


def test_evaluate_measures_a_gated_spec_and_scores_its_gate(tmp_path):
    store = f"sqlite:///{tmp_path / 'g.db'}"
    out = evaluate(["--proxies", "params ! state_escape,state_escape", "--limit", "8", "--sample-seed", "1",
                    "--store", store, "--workers", "1", "--scoring-config", str(tiny_config(tmp_path))])
    assert set(out["proxies"]) == {"params!state_escape", "state_escape"}
    gated = out["proxies"]["params!state_escape"]
    assert gated["members"] == ["params"] and gated["gates"] == ["state_escape"] and gated["higher_is_better"]
    assert out["scoring"]["scored"] == 8  # the gate was scored although it was named only inside the spec


def test_the_recommended_method_is_the_search_default_and_parses():
    from zeronas.core.spec import parse_spec
    from zeronas.recommended import RECOMMENDED_METHOD, TRAINABILITY_CHECK
    from zeronas.search.core import default_proxy

    assert default_proxy() == RECOMMENDED_METHOD
    members, gates = parse_spec(RECOMMENDED_METHOD)
    assert members and gates == (TRAINABILITY_CHECK,)
