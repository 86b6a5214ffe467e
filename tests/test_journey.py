"""A newcomer's journey (issue 19, items 12-17): the recommended spec everywhere a proxy name goes, a user model's
ignored parts said, a search that shows progress in a log and says what to do next, predictor rows a person can
read, and options that mean the same in every command."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import zeronas
from zeronas.bench.nbnlp import Benchmark
from zeronas.cells.recipe import load_cell
from zeronas.cli import app
from zeronas.core.config import TINY
from zeronas.core.score import Score
from zeronas.core.verdict import SpecScore, spec_verdict
from zeronas.data.corpus import CorpusError, load_training_corpus
from zeronas.models.adapters import IgnoredPartsWarning, adapt_lm

runner = CliRunner()
V = 50


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    fields = {k: v for k, v in TINY.to_dict().items() if k != "probe_split"}  # the corpus's default split
    path.write_text(json.dumps(fields))
    return path


def _tokens(n: int = 400) -> torch.Tensor:
    return torch.randint(0, V, (n,), generator=torch.Generator().manual_seed(1))


class NormedLSTM(nn.Module):
    """Embedding -> LSTM -> LayerNorm -> decoder: the LayerNorm is not part of what the adapter scores."""

    def __init__(self, vocab: int = V, width: int = 16, norm: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(vocab, width)
        self.rnn = nn.LSTM(width, width)
        self.drop = nn.Dropout(0.3)  # off when scoring: never reported
        if norm:
            self.norm = nn.LayerNorm(width)
        self.decoder = nn.Linear(width, vocab)


# ---------------------------------------------------------------- item 12: every spec wherever a proxy name goes

def _gate(value: float | None, status: str = "ok") -> Score:
    return Score("state_escape", value, status)


@pytest.mark.parametrize("gate,passes,text", [(_gate(-0.2), True, "passes state_escape (-0.2 <= 0)"),
                                              (_gate(0.3), False, "fails state_escape (0.3 > 0)"),
                                              (_gate(None, "nan"), False, "fails state_escape (nan)")])
def test_a_gated_verdict_is_the_ranking_value_and_whether_the_gate_passes(gate, passes, text):
    scores = {"hidden_cov": Score("hidden_cov", 1.5, "ok", seconds=1.0), "state_escape": gate}
    v = spec_verdict("hidden_cov!state_escape", scores, lambda p: p != "state_escape",
                     lambda p: 0.0 if p == "state_escape" else None)
    assert isinstance(v, SpecScore) and v.proxy == "hidden_cov!state_escape"
    assert (v.value, v.status, v.passes, v.gates) == (1.5, "ok", passes, ("state_escape",))
    assert text in v.message


def test_a_combination_has_no_value_for_one_cell_and_a_failed_member_fails_it():
    ok = {"params": Score("params", 3.0, "ok"), "zen": Score("zen", 2.0, "ok")}
    v = spec_verdict("params+zen", ok, lambda p: True, lambda p: None)
    assert (v.value, v.status, v.passes, v.members) == (None, "ok", None, ("params", "zen"))
    bad = {**ok, "zen": Score("zen", None, "inf")}
    assert spec_verdict("params+zen", bad, lambda p: True, lambda p: None).status == "inf"
    gated = spec_verdict("zen!params", bad, lambda p: True, lambda p: None)
    assert (gated.value, gated.status, gated.passes) == (None, "inf", True)


def test_score_takes_the_recommended_spec_and_a_scoring_config(tiny):
    result = runner.invoke(app, ["score", "lstm", "-p", "hidden_cov!state_escape,params+n_blend", "--scoring-config",
                                 str(tiny), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    scores = out["scores"]
    assert list(scores) == ["hidden_cov", "state_escape", "params", "n_blend", "hidden_cov!state_escape",
                            "params+n_blend"]
    verdict = scores["hidden_cov!state_escape"]
    assert verdict["value"] == scores["hidden_cov"]["value"] and verdict["status"] == "ok"
    assert verdict["passes"] == (scores["state_escape"]["value"] <= 0)
    assert scores["params+n_blend"]["value"] is None and scores["params+n_blend"]["status"] == "ok"
    assert out["config"] == TINY.to_dict()  # the file's config, not the default one
    table = runner.invoke(app, ["score", "lstm", "-p", "hidden_cov!state_escape", "--scoring-config", str(tiny)])
    assert table.exit_code == 0 and f" {'pass' if verdict['passes'] else 'FAIL'} " in table.stdout  # gates column
    bad = runner.invoke(app, ["score", "lstm", "-p", "hidden_cov!nope", "--scoring-config", str(tiny)])
    assert bad.exit_code == 2 and "unknown proxy 'nope'" in bad.output


def test_the_python_api_scores_specs_of_a_user_model():
    model = NormedLSTM(norm=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is ignored in this model: no warning
        got = zeronas.score_model(model, ["hidden_cov!state_escape", "params+n_blend"], tokens=_tokens(),
                                  config=TINY)
    plain = zeronas.score_model(model, ["hidden_cov", "state_escape"], tokens=_tokens(), config=TINY)
    verdict = got["hidden_cov!state_escape"]
    assert isinstance(verdict, SpecScore) and verdict.value == plain["hidden_cov"].value
    assert verdict.passes == (plain["state_escape"].value <= 0)
    assert got["params+n_blend"].value is None
    one = zeronas.score_model(model, "hidden_cov!state_escape", tokens=_tokens(), config=TINY)  # a string, not chars
    assert (one["hidden_cov!state_escape"].value, one["hidden_cov!state_escape"].passes) == (verdict.value,
                                                                                            verdict.passes)
    with pytest.raises(KeyError, match="unknown proxy 'nope'"):
        zeronas.score_model(model, ["hidden_cov!nope"], tokens=_tokens(), config=TINY)
    from zeronas.cells.reference import reference_cell

    cell = zeronas.score_cell(reference_cell("rnn"), ["params!state_escape"], TINY)
    assert cell["params!state_escape"].value == cell["params"].value


USER_MODULE = '''
import torch
from torch import nn

class NormedLM(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(10000, 8)    # the PTB vocabulary
        self.rnn = nn.LSTM(8, 8)
        self.norm = nn.LayerNorm(8)
        self.out = nn.Linear(8, 10000)
'''


def _score_model_cli(args, tmp_path, monkeypatch):
    (tmp_path / "zn_journey_lm.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("zn_journey_lm", None)
    return runner.invoke(app, ["score-model", "zn_journey_lm:NormedLM", "--batch-size", "3", "--seq-len", "6",
                               *args])


def test_score_model_command_takes_specs_quiet_and_says_what_it_ignores(tmp_path, monkeypatch):
    res = _score_model_cli(["-p", "hidden_cov!state_escape", "-q", "--json"], tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["scores"]["hidden_cov!state_escape"]["passes"] in (True, False)
    assert out["not_scored"] == ["norm (LayerNorm)"]
    table = _score_model_cli(["-p", "params", "-q"], tmp_path, monkeypatch)
    assert table.exit_code == 0, table.output
    assert table.stdout.count("not scored: norm (LayerNorm)") == 1  # once per model


# ------------------------------------------------------------- item 13: parts of a user's model that are ignored

def test_a_layernorm_the_adapter_leaves_out_is_said_once_per_model():
    model = NormedLSTM()
    assert adapt_lm(model).ignored == ("norm (LayerNorm)",)
    with pytest.warns(IgnoredPartsWarning, match=r"not scored: norm \(LayerNorm\)") as caught:
        with_norm = zeronas.score_model(model, ["hidden_cov"], tokens=_tokens(), config=TINY)
    assert len([w for w in caught if w.category is IgnoredPartsWarning]) == 1
    without = zeronas.score_model(NormedLSTM(norm=False), ["hidden_cov"], tokens=_tokens(), config=TINY)
    assert with_norm["hidden_cov"].value == without["hidden_cov"].value  # what the warning is about

    class Scaled(NormedLSTM):  # a bare parameter and an activation are parts too; a softmax is not
        def __init__(self) -> None:
            super().__init__(norm=False)
            self.scale = nn.Parameter(torch.ones(1))
            self.act = nn.ReLU()
            self.softmax = nn.LogSoftmax(dim=-1)

    assert adapt_lm(Scaled()).ignored == ("scale (parameter)", "act (ReLU)")


# ------------------------------------------------------------------- item 14: a search that says what to do next

def _search(tmp_path, tiny, *extra, budget="12", store="s.db"):
    return runner.invoke(app, ["search", "--algorithm", "evolution", "--budget", budget, "--proxy", "params",
                               "--scoring-config", str(tiny), "--store", f"sqlite:///{tmp_path / store}",
                               "--workers", "1", *extra])


def test_search_progress_reaches_a_log_and_the_answer_says_what_next(tmp_path, tiny):
    best = tmp_path / "best.json"
    res = _search(tmp_path, tiny, "--save-best", str(best))
    assert res.exit_code == 0, res.output
    assert "evolution 12/12 cells, best params" in res.stderr  # stderr is not a terminal here
    assert "warning: --budget 12 is small" in res.stderr
    top = load_cell(best)
    assert f"#1 {top.canonical_id}" in res.stdout  # the saved recipe is the top cell
    ids = [line.split()[1].rstrip(":") for line in res.stdout.splitlines() if line.startswith("#")]
    assert f"zeronas refine {' '.join(ids)} " in res.stdout  # benchmark cells: the top 5 by id
    assert f"zeronas train {best} --epochs 50" in res.stdout
    assert "params (higher is better): trainable parameters" in res.stdout  # what the scores are
    quiet = _search(tmp_path, tiny, "-q", "--json", "--no-benchmark", budget="100", store="own.db")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    out = json.loads(quiet.stdout)  # one object, as every --json
    assert set(out) == {"search", "top", "saved_best", "next"} and out["search"]["evaluated"] == 100
    assert out["saved_best"] is None and out["next"]["train"] == "zeronas train best.json --epochs 50"
    # the refine step's shortlist is the search's top 5: the store's best under the same ranking and config
    from zeronas.core.config import ScoringConfig
    from zeronas.refine.sources import from_store

    assert out["next"]["refine"].startswith("zeronas refine --from-store 5 ")
    shortlist = from_store(f"sqlite:///{tmp_path / 'own.db'}", 5, "params",
                           ScoringConfig.from_dict(json.loads(tiny.read_text())))
    assert [c.cell.canonical_id for c in shortlist] == [row["canonical_id"] for row in out["top"]]


def test_save_best_is_checked_before_the_search(tmp_path, tiny):
    for path, message in ((tmp_path, "is a folder"), (tmp_path / "no" / "best.json", "does not exist")):
        res = _search(tmp_path, tiny, "--save-best", str(path))
        assert res.exit_code == 2 and message in res.output
    assert not (tmp_path / "s.db").exists()  # nothing was scored


# -------------------------------------------------------------- item 15: predictor rows a person can read

def test_search_by_a_predictor_shows_its_prediction_not_its_features(tmp_path, tiny):
    archs = Benchmark.nbnlp().sample(40, 3)
    truth = tmp_path / "truth.csv"
    truth.write_text("recipe,test_loss\n" + "".join(
        f"\"{a.cell.to_json().replace(chr(34), chr(34) * 2)}\",{'' if l is None else l}\n"
        for a in archs for l in a.test_losses))
    store = f"sqlite:///{tmp_path / 's.db'}"
    model = tmp_path / "model.json"
    cheap = "params,n_blend,n_prod,cell_depth,recurrent_fanin"
    fit = runner.invoke(app, ["predict", "fit", "--ground-truth", str(truth), "--proxies", cheap, "--store", store,
                              "--workers", "1", "--scoring-config", str(tiny), "-q", "-o", str(model)])
    assert fit.exit_code == 0, fit.output
    args = ["search", "--predictor", str(model), "--algorithm", "random", "--budget", "10", "--top", "3",
            "--scoring-config", str(tiny), "--store", store, "--workers", "1", "-q"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert table.stdout.count("predicted ppl") == 3 and "P(diverge)" in table.stdout
    assert "n_prod" not in table.stdout.split("#1 ")[0]  # the feature scores stay out of the table
    rows = json.loads(runner.invoke(app, args + ["--json"]).stdout)["top"]
    for row in rows:
        p = row["prediction"]
        assert 0 <= p["p_diverge"] <= 1 and p["test_ppl"] == pytest.approx(math.exp(p["test_loss"]))
        assert p["score"] == pytest.approx(row["fitness"])


# ----------------------------------------------------------- items 16 and 17: options that mean the same everywhere

def test_predict_takes_a_corpus_like_the_others(tmp_path, tiny):
    text = tmp_path / "mine.txt"
    text.write_text("".join(f"the cat {i % 7} sat on the mat number {i % 13}\n" for i in range(200)))
    store = f"sqlite:///{tmp_path / 's.db'}"
    archs = Benchmark.nbnlp().sample(30, 5)
    truth = tmp_path / "truth.csv"
    truth.write_text("recipe,test_loss\n" + "".join(
        f"\"{a.cell.to_json().replace(chr(34), chr(34) * 2)}\",{'' if l is None else l}\n"
        for a in archs for l in a.test_losses))
    model = tmp_path / "model.json"
    fit = runner.invoke(app, ["predict", "fit", "--ground-truth", str(truth), "--proxies", "params,hidden_cov",
                              "--corpus", str(text), "--scoring-config", str(tiny), "--store", store, "--workers",
                              "1", "-q", "-o", str(model)])
    assert fit.exit_code == 0, fit.output
    assert json.loads(model.read_text())["scoring_config"]["corpus"].startswith("sha256:")
    cell = runner.invoke(app, ["predict", "cell", str(model), "lstm", "--corpus", str(text), "--store", store,
                               "--workers", "1", "-q", "--json"])
    assert cell.exit_code == 0, cell.output
    answer = json.loads(cell.stdout)  # one object, as every --json
    assert answer["cells"][0]["complete"] is True and answer["config_hash"] == json.loads(model.read_text())[
        "config_hash"]
    missing = runner.invoke(app, ["predict", "cell", str(model), "lstm", "--store", store, "-q"])
    assert missing.exit_code == 2 and "give that text with --corpus" in missing.output
    other = tmp_path / "other.txt"
    other.write_text("a b c\n" * 50)
    wrong = runner.invoke(app, ["predict", "cell", str(model), "lstm", "--corpus", str(other), "--store", store])
    assert wrong.exit_code == 2 and "is not the corpus" in wrong.output
    search = runner.invoke(app, ["search", "--predictor", str(model), "--scoring-config", str(tiny), "--store", store,
                                 "--budget", "4", "-q"])
    assert search.exit_code == 2 and "--corpus (mine.txt)" in search.output


def test_train_takes_one_text_file_cut_into_train_valid_and_test(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("".join(f"line {i} of my own text\n" for i in range(100)))
    corpus = load_training_corpus(text)
    assert corpus.lines == {"train": 80, "valid": 10, "test": 10}
    assert (corpus.train.numel(), corpus.valid.numel(), corpus.test.numel()) == (80 * 7, 10 * 7, 10 * 7)
    assert corpus.vocab.idx2word[corpus.test[1].item()] == "90"  # the last tenth of the lines, in order
    res = runner.invoke(app, ["train", "rnn", "--quick", "--steps", "2", "--corpus", str(text), "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["corpus"]["name"] == "mine.txt"
    short = tmp_path / "short.txt"
    short.write_text("one line\ntwo\n")
    with pytest.raises(CorpusError, match="at least 3"):
        load_training_corpus(short)
    bad = runner.invoke(app, ["train", "rnn", "--quick", "--corpus", "wikitext-2", "-q"])
    assert bad.exit_code == 2 and "training split is not bundled" in bad.output


def test_evaluate_on_another_corpus_says_it_compares_with_ptb(tmp_path, tiny):
    res = runner.invoke(app, ["evaluate", "--corpus", "wikitext-2", "--scoring-config", str(tiny), "--proxies",
                              "params", "--limit", "3", "--store", f"sqlite:///{tmp_path / 's.db'}", "--workers", "1",
                              "-q", "--json"])
    assert res.exit_code == 0, res.output
    assert "perplexities of cells trained on PTB" in res.stderr
    ptb = runner.invoke(app, ["evaluate", "--scoring-config", str(tiny), "--proxies", "params", "--limit", "3",
                              "--store", f"sqlite:///{tmp_path / 's.db'}", "--workers", "1", "-q", "--json"])
    assert ptb.exit_code == 0 and "trained on PTB" not in ptb.stderr
