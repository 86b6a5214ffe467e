"""`zeronas refine`: a real refine (training, not replay) at a tiny config through the command line, a SIGKILL during
a rung resumed to the same winner and figures, the reference cells, continuing the winner with `zeronas train`, and
every bad input as a one-line error with exit code 2 that leaves the run's folder as it was."""

from __future__ import annotations

import json
import os
import random
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zeronas.cli import app
from zeronas.refine.rungs import RUNGS_FILE
from zeronas.refine.state import STATE_FILE
from zeronas.store import open_store
from zeronas.data.corpus import load_corpus
from zeronas.train import METRICS_FILE, TrainConfig, tokens_per_epoch

runner = CliRunner()
SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "the cat saw a dog", "a bird sang in the tree",
             "the dog saw the bird"]
BENCH_ID = "5e87042f501241ce002ae8dfcb82fc871f6e92e7"  # a six-node NAS-Bench-NLP cell
# TrainConfig.quick's tiny model on a ~7k-token corpus: an epoch is 10 batches of 20 x 35 tokens, so the rungs are
# 2, 6 and 18 batches. Four cells (two candidates and the two references), eta 2: 4, 2 and 1 at the rungs.
RUNGS = "0.2,0.6,1.8"


def write_corpus(folder: Path, n_train: int = 1000, n_eval: int = 100) -> Path:
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("valid", n_eval), ("test", n_eval)):
        (folder / f"{name}.txt").write_text("\n".join(rng.choice(SENTENCES) for _ in range(n)) + "\n")
    return folder


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def args(corpus_dir: Path, folder: Path, *extra: str, cells=("rnn", BENCH_ID)) -> list[str]:
    return ["refine", *cells, "--quick", "--corpus", str(corpus_dir), "--rungs", RUNGS, "--eta", "2",
            "--checkpoint", str(folder), "-q", *extra]


@pytest.fixture(scope="module")
def straight(corpus_dir, tmp_path_factory) -> dict:
    """One uninterrupted refine through the command line: the reference for every other test."""
    folder = tmp_path_factory.mktemp("straight") / "run"
    plot = folder.parent / "curves.png"
    res = runner.invoke(app, args(corpus_dir, folder, "--json", "--plot", str(plot)))
    assert res.exit_code == 0, res.output
    return {"out": json.loads(res.stdout), "folder": folder, "plot": plot, "corpus": corpus_dir}


def figures(out: dict) -> list[tuple]:
    """What a resumed run must reproduce exactly: per candidate its rungs, perplexities, steps, tokens, status."""
    return [(c["arch_sha1"], c["rung"], c["val_ppl"], c["steps"], c["tokens"], c["status"])
            for c in out["candidates"]]


def test_a_real_refine_halves_on_measured_perplexity(straight):
    out, folder = straight["out"], straight["folder"]
    cands = out["candidates"]
    assert [c["name"] for c in cands] == ["rnn", BENCH_ID[:12], "lstm", "gru"]
    assert [c["reference"] for c in cands] == [False, False, True, True]
    assert out["schedule"] == {"rungs": [0.2, 0.6, 1.8], "eta": 2, "unit": "epochs"}
    # eta 2 on 4 cells: 4 measured at rung 1, 2 at rung 2, 1 at rung 3; nothing diverges at this size
    assert sorted(c["rung"] for c in cands) == [1, 1, 2, 3]
    assert not any(c["diverged"] for c in cands)
    by_rung = {r: [c for c in cands if c["rung"] >= r] for r in (1, 2, 3)}
    for r in (1, 2):  # the survivors of a rung are the best there
        kept = [c for c in cands if c["rung"] > r]
        dropped = [c for c in cands if c["rung"] == r]
        assert max(c["val_ppl"][r - 1] for c in kept) <= min(c["val_ppl"][r - 1] for c in dropped)
    (winner,) = by_rung[3]
    assert winner["status"] == "winner" and out["winner"]["arch_sha1"] == winner["arch_sha1"]
    assert out["winner"]["val_ppl"] == winner["val_ppl"][-1]
    # continued training: the winner's perplexity falls from rung to rung, and its steps are those of 1.8 epochs
    assert winner["val_ppl"][0] > winner["val_ppl"][1] > winner["val_ppl"][2]
    per_epoch = tokens_per_epoch(load_corpus(straight["corpus"]), TrainConfig.quick())
    assert 1.8 * per_epoch <= winner["tokens"] < 1.8 * per_epoch + 2 * 35 * 20  # the first batch end past 1.8
    assert out["spent"] == pytest.approx(0.2 * 2 + 0.6 + 1.8)
    # every candidate has its checkpoint, recipe and measurements; the run-state file holds the result
    for c in cands:
        sub = folder / c["folder"]
        assert {"checkpoint.pt", "cell.json", RUNGS_FILE, METRICS_FILE} <= {p.name for p in sub.iterdir()}
        rungs = json.loads((sub / RUNGS_FILE).read_text())["rungs"]
        assert [m["val_ppl"] for m in rungs] == c["val_ppl"]
    state = json.loads((folder / STATE_FILE).read_text())
    assert state["result"]["winner"] == out["winner"] and state["result"]["candidates"] == cands
    assert straight["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_finished_refine_rerun_trains_nothing_and_prints_the_table(straight, corpus_dir):
    res = runner.invoke(app, args(corpus_dir, straight["folder"])[:-1])  # without -q: progress and the table
    assert res.exit_code == 0, res.output
    assert "resuming the refine" in res.stderr and "(recorded)" in res.stderr
    name = straight["out"]["winner"]["name"]
    assert f"winner: {name}" in res.stdout and "zeronas train" in res.stdout and "0 rung trainings done" in res.stdout
    for c in straight["out"]["candidates"]:
        assert c["name"] in res.stdout


def test_the_winner_continues_to_full_training_with_the_printed_command(straight, tmp_path):
    command = shlex.split(straight["out"]["continue"])
    assert command[:2] == ["zeronas", "train"] and "--checkpoint" in command
    winner = next(c for c in straight["out"]["candidates"] if c["status"] == "winner")
    i = command.index("--epochs")
    command[i + 1] = "2"  # the printed full training is 50 epochs; 2 are enough to see it continue
    res = runner.invoke(app, command[1:] + ["--json", "-q"])
    assert res.exit_code == 0, res.output
    trained = json.loads(res.stdout)
    assert trained["resumed_from"]["step"] == winner["steps"]  # no work thrown away
    assert trained["stopped"] == "epochs" and len(trained["epochs"]) == 2 and trained["test_ppl"] is not None


def test_reference_cells_run_by_default_and_can_be_left_out(corpus_dir, tmp_path):
    res = runner.invoke(app, ["refine", "rnn", "--quick", "--corpus", str(corpus_dir), "--rungs", "0.2",
                              "--checkpoint", str(tmp_path / "noref"), "--no-references", "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert [c["name"] for c in json.loads(res.stdout)["candidates"]] == ["rnn"]
    # a candidate that is a reference cell is trained once and marked as one
    res = runner.invoke(app, ["refine", "lstm", "rnn", "--quick", "--corpus", str(corpus_dir), "--rungs", "0.2",
                              "--checkpoint", str(tmp_path / "ref"), "--json", "-q"])
    assert res.exit_code == 0, res.output
    cands = json.loads(res.stdout)["candidates"]
    assert [(c["name"], c["reference"]) for c in cands] == [("lstm", True), ("rnn", False), ("gru", True)]


def _recorded(folder: Path) -> list[dict]:
    out = []
    for path in (folder / "cells").glob(f"*/{RUNGS_FILE}"):
        try:
            out.append({"rungs": json.loads(path.read_text())["rungs"],
                        "progress": json.loads((path.parent / METRICS_FILE).read_text())["progress"]})
        except (OSError, ValueError, KeyError):  # a file being replaced at this instant
            pass
    return out


def test_a_sigkill_during_a_rung_resumes_to_the_same_winner_and_figures(straight, corpus_dir, tmp_path,
                                                                        sigkill_once):
    folder = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    command = [sys.executable, "-m", "zeronas", *args(corpus_dir, folder, "--json", "--checkpoint-every", "1")]

    def mid_rung() -> int:
        """1 once the four first-rung measurements are in and a survivor's checkpoint is past its last rung."""
        seen = _recorded(folder)
        measured = sum(len(s["rungs"]) for s in seen)
        ahead = any(s["progress"]["step"] > s["rungs"][-1]["steps"] for s in seen)
        return int(measured >= 4 and ahead)

    sigkill_once(command, env, mid_rung, 1, 600)
    killed = _recorded(folder)
    assert sum(len(s["rungs"]) for s in killed) < 7  # it was killed before the end
    import subprocess

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["resumed"] and 0 < out["trained"] < 7
    assert out["winner"] == {**straight["out"]["winner"], "checkpoint": out["winner"]["checkpoint"]}
    assert figures(out) == figures(straight["out"])


def one_line_error(res) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output[-800:], repr(res.exception))
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


@pytest.mark.parametrize("extra, cells, message", [
    ([], ("no-such-cell",), "'no-such-cell' is not a file"),
    ([], (), "no candidates"),
    (["--rungs", "0.6,0.2"], ("rnn",), "rungs must increase: 0.2 after 0.6"),
    (["--rungs", "0.2,x"], ("rnn",), "rungs must be numbers"),
    (["--rungs", "0.01,0.6"], ("rnn",), "below one training batch"),
    (["--unit", "tokens", "--rungs", "100,700"], ("rnn",), "below one training batch"),
    (["--unit", "tokens", "--rungs", "700.5"], ("rnn",), "whole numbers"),
    (["--epochs", "1"], ("rnn",), "past the full training"),
    (["--eta", "1"], ("rnn",), "eta must be an integer >= 2"),
    (["--unit", "steps"], ("rnn",), "unit must be one of epochs, tokens"),
    (["--device", "nonsense"], ("rnn",), "nonsense"),
    (["--executor", "spark"], ("rnn",), "executor must be one of local, ray"),
    (["--checkpoint-every", "-1"], ("rnn",), "--checkpoint-every"),
])
def test_bad_input_is_one_line_and_exit_2(corpus_dir, tmp_path, extra, cells, message):
    folder = tmp_path / "run"
    res = runner.invoke(app, args(corpus_dir, folder, *extra, cells=cells))
    assert message in one_line_error(res)
    assert not folder.exists()  # refused before anything was written


def test_bad_corpus_and_store_are_one_line_errors(corpus_dir, tmp_path):
    base = ["refine", "rnn", "--quick", "--rungs", RUNGS, "--checkpoint", str(tmp_path / "run"), "-q"]
    assert "training split is not bundled" in one_line_error(runner.invoke(app, base + ["--corpus", "wikitext-2"]))
    assert "no such file or folder" in one_line_error(runner.invoke(app, base + ["--corpus", str(tmp_path / "none")]))
    store = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(store).close()
    line = one_line_error(runner.invoke(app, ["refine", "--from-store", "3", "--store", store, "--quick",
                                              "--corpus", str(corpus_dir), "--checkpoint", str(tmp_path / "run")]))
    assert line.startswith("error: --from-store:")
    assert "--from-store" in one_line_error(runner.invoke(app, ["refine", "--from-store", "0", "--store", store]))
    assert not (tmp_path / "run").exists()


def test_a_folder_holding_another_run_is_refused_and_left_alone(straight, corpus_dir):
    folder = straight["folder"]
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    cases = [
        (args(corpus_dir, folder, cells=("gru", BENCH_ID)), "field 'candidates' differs"),
        ([*args(corpus_dir, folder), "--eta", "3"], "field 'schedule.eta' differs"),
        ([*args(corpus_dir, folder), "--rungs", "0.2,0.7,1.8"], "field 'schedule.rungs' differs"),
        ([*args(corpus_dir, folder), "--seed", "1"], "field 'config.seed' differs"),
    ]
    for argv, message in cases:
        assert message in one_line_error(runner.invoke(app, argv)), argv
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # nothing trained so far is lost, nothing rewritten


@pytest.mark.slow
def test_ray_tune_asha_measures_what_the_in_process_refine_measures(straight, corpus_dir, tmp_path):
    """The Ray path at the same tiny config: the candidates as Ray Tune trials under ASHA. Promotions are
    asynchronous (which candidates go on may differ), but every measurement equals the in-process one."""
    pytest.importorskip("ray.tune", reason="the 'ray' extra (ray[tune]) is not installed (CI installs it and runs "
                                           "this)", exc_type=ImportError)  # ray without Tune's dependencies too
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        res = runner.invoke(app, args(corpus_dir, tmp_path / "ray", "--json", "--executor", "ray"))
    finally:
        ray.shutdown()
    assert res.exit_code == 0, res.output[-2000:]
    out = json.loads(res.stdout)  # Ray's own output went to stderr: stdout is the JSON alone
    assert out["executor"] == "ray" and out["winner"] is not None
    local = {c["arch_sha1"]: c["val_ppl"] for c in straight["out"]["candidates"]}
    for c in out["candidates"]:
        assert c["rung"] >= 1  # every trial reached the first rung
        shared = min(len(c["val_ppl"]), len(local[c["arch_sha1"]]))
        assert c["val_ppl"][:shared] == local[c["arch_sha1"]][:shared]
    # the winner is the best of those that reached the furthest rung
    top = max(c["rung"] for c in out["candidates"])
    best = min((c for c in out["candidates"] if c["rung"] == top), key=lambda c: c["val_ppl"][-1])
    assert out["winner"]["arch_sha1"] == best["arch_sha1"]


def test_search_refine_and_from_store_train_the_cells_a_search_ranked_best(corpus_dir, tmp_path):
    """`search --refine 2` refines the two best cells the search scored (params ranks them: the default shortlist
    is the top K under the search's spec); `refine --from-store 2` finds the same two in the search's store."""
    from zeronas.core.config import TINY

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({k: v for k, v in TINY.to_dict().items()
                                  if k not in ("device", "corpus", "probe_split")}))
    store = f"sqlite:///{tmp_path / 's.db'}"
    short = ["--quick", "--rungs", "0.2,0.6", "--eta", "2", "--no-references", "-q", "--json"]
    res = runner.invoke(app, ["search", "-a", "random", "--budget", "6", "-p", "params", "--store", store,
                              "--workers", "1", "--corpus", str(corpus_dir), "--scoring-config", str(config),
                              "--refine", "2", "--checkpoint", str(tmp_path / "run"), *short])
    assert res.exit_code == 0, res.output
    found = json.loads(res.stdout)  # the search's JSON object, the refine's under "refine"
    best_two = [row["canonical_id"] for row in found["top"][:2]]
    out = found["refine"]
    assert [c["canonical_id"] for c in out["candidates"]] == best_two
    assert out["winner"]["canonical_id"] in best_two and out["continue"].startswith("zeronas train ")
    res = runner.invoke(app, ["refine", "--from-store", "2", "--proxy", "params", "--store", store,
                              "--scoring-config", str(config), "--corpus", str(corpus_dir),
                              "--checkpoint", str(tmp_path / "from-store"), *short])
    assert res.exit_code == 0, res.output
    assert [c["canonical_id"] for c in json.loads(res.stdout)["candidates"]] == best_two
    # bad refine input stops the search before it scores anything
    bad = runner.invoke(app, ["search", "-a", "random", "--budget", "2", "-p", "params", "--store",
                              f"sqlite:///{tmp_path / 'never.db'}", "--refine", "2", "--rungs", "3,1"])
    assert "rungs must increase" in one_line_error(bad) and not (tmp_path / "never.db").exists()


def test_a_candidate_out_of_memory_is_recorded_as_failed_and_the_others_go_on(corpus_dir, tmp_path, monkeypatch):
    import torch

    from zeronas.refine import rungs
    from zeronas.refine.halving import Schedule
    from zeronas.refine.run import refine
    from zeronas.refine.sources import named
    from zeronas.train import TrainConfig

    real = rungs.train

    def gru_runs_out(cell, *a, **kw):
        if cell.name == "gru":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(cell, *a, **kw)

    monkeypatch.setattr(rungs, "train", gru_runs_out)
    result = refine(named(["rnn", "gru"]), Schedule((0.2, 0.6), 2), TrainConfig.quick(max_steps=None, epochs=2),
                    load_corpus(corpus_dir), tmp_path / "run")
    rows = {r["name"]: r for r in result.rows()}
    assert rows["gru"]["status"] == "failed" and rows["gru"]["val_ppl"] == [None]
    assert rows["gru"]["reason"].startswith("out of memory: CUDA out of memory")
    assert rows["rnn"]["status"] == "winner" and rows["rnn"]["rung"] == 2
    recorded = json.loads((tmp_path / "run" / rows["gru"]["folder"] / RUNGS_FILE).read_text())["rungs"]
    assert recorded[0]["diverged"] and recorded[0]["val_ppl"] is None  # no made-up number
