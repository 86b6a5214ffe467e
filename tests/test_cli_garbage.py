"""Generated garbage to every subcommand: deep and wide JSON, long names, markup characters, bad numbers. Every
case must end with exit code 2 and a one-line error, never a traceback. Over 2,000 cases in all (the
``max_examples`` below); each stops at input checking, so none scores anything."""

from __future__ import annotations

import json
import string
import tempfile
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from zeronas.cli import app

runner = CliRunner()
CASES = settings(max_examples=int(__import__("os").environ.get("GARBAGE_CASES", 250)), deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
WORK = Path(tempfile.mkdtemp(prefix="zeronas-garbage-"))  # hypothesis and tmp_path do not mix

MARKUP = ["[/bold]", "[red]", "[", "]", "[link=x]", "\\[", "[/]", "[bold red]x[/]"]
names = st.one_of(st.text(alphabet=string.printable + "äλ中[]/\\", min_size=1, max_size=60),
                  st.sampled_from(MARKUP),
                  st.integers(1, 5000).map(lambda n: "n" * n))
leaves = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                   names)


def deep_json(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


json_docs = st.one_of(
    st.builds(deep_json, st.integers(50, 100_000), st.sampled_from(["list", "dict"])),
    st.recursive(leaves, lambda kids: st.one_of(st.lists(kids, max_size=5),
                                                st.dictionaries(names, kids, max_size=5)),
                 max_leaves=30).map(lambda v: json.dumps(v)),
    st.dictionaries(names, st.fixed_dictionaries({"op": names, "input": st.lists(names, max_size=4)}),
                    min_size=1, max_size=40).map(json.dumps),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)
bad_ints = st.sampled_from(["-1", "-999999999999", "abc", "", "1.5", "nan", "[/bold]", "1e309", "0x10", "--"])
bad_floats = st.sampled_from(["-1", "abc", "", "nan", "-inf", "[/bold]", "1e309x", "0"])


def write(text: str, suffix: str) -> str:
    path = WORK / f"{uuid.uuid4().hex}{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return str(path)


def csv_garbage(doc: str) -> str:
    return "recipe,test_loss\n" + json.dumps(doc) + ",1.0\n" if doc[:1] in "{[" else doc


def assert_clean_error(args: list[str]) -> None:
    res = runner.invoke(app, args)
    text = res.output
    assert res.exit_code == 2, (args[:3], res.exit_code, text[-500:], repr(res.exception))
    assert "Traceback" not in text, (args[:3], text[-500:])
    assert res.exception is None or isinstance(res.exception, SystemExit), (args[:3], repr(res.exception))


@CASES
@given(doc=json_docs)
def test_cell_validate_and_show(doc):
    path = write(doc, ".json")
    assert_clean_error(["cell", "validate", path])
    assert_clean_error(["cell", "show", path])


@CASES
@given(spec=st.one_of(names.map(lambda n: "nope-" + n), json_docs.filter(lambda d: d[:1] in "{[")),
       proxies=st.one_of(names, st.just("zen,[/bold]")))
def test_score(spec, proxies):
    assert_clean_error(["score", spec, "--proxies", proxies])


@CASES
@given(doc=json_docs, limit=bad_ints, which=st.integers(0, 3))
def test_evaluate(doc, limit, which):
    store = f"sqlite:///{write('', '.db')}"
    if which == 0:
        args = ["--ground-truth", write(csv_garbage(doc), ".csv")]
    elif which == 1:
        args = ["--limit", limit]
    elif which == 2:
        args = ["--scoring-config", write(doc, ".json"), "--limit", "1"]
    else:
        args = ["--predictor", write(doc, ".json"), "--proxies", "params", "--limit", "1"]
    assert_clean_error(["evaluate", "--store", store, "--no-score", "-q", *args])


@CASES
@given(doc=json_docs, number=bad_ints, proxy=names, which=st.integers(0, 4))
def test_search(doc, number, proxy, which):
    store = f"sqlite:///{write('', '.db')}"
    args = [["--budget", number], ["--seed", number], ["--top", number],
            ["--scoring-config", write(doc, ".json"), "--top", "-1"],  # a valid file ({}) must not start a search
            ["--proxy", "[/bold]" + proxy]][which]
    assert_clean_error(["search", "--store", store, "-q", *args])


@CASES
@given(spec=names.map(lambda n: "nope-" + n), number=bad_ints, which=st.integers(0, 2))
def test_train(spec, number, which):
    args = [[spec], ["lstm", "--steps", number], ["lstm", "--epochs", number]][which]
    assert_clean_error(["train", *args, "-q"])


@CASES
@given(doc=json_docs, labels=st.one_of(bad_ints, names.map(lambda n: n + ",x")), which=st.integers(0, 3))
def test_predict(doc, labels, which):
    store = f"sqlite:///{write('', '.db')}"
    args = [["fit", "--ground-truth", write(csv_garbage(doc), ".csv")],
            ["fit", "--labels", labels],
            ["curve", "--labels", labels, "--no-score"],
            ["cell", write(doc, ".json"), "lstm"]][which]
    assert_clean_error(["predict", *args[:1], "--store", store, "-q", *args[1:]]
                       if args[0] != "cell" else ["predict", *args, "--store", store, "-q"])


@CASES
@given(doc=json_docs, status=names, which=st.integers(0, 4))
def test_store(doc, status, which):
    garbage = write("x" + doc, ".db")  # never empty: an empty file would be a new store
    args = [["info", "--store", garbage], ["export", "--store", garbage], ["vacuum", "--store", garbage],
            ["delete", "--store", f"sqlite:///{write('', '.db')}", "--status", "[/bold]" + status, "--yes"],
            ["migrate", "--store", "sqlite:///" + garbage + "-absent"]][which]
    assert_clean_error(["store", *args])


@CASES
@given(doc=json_docs)
def test_bench_describe(doc):
    assert_clean_error(["bench", "describe", "--ground-truth", write(csv_garbage(doc), ".csv")])


def tiny_lm():
    """A valid model factory for score-model's checkpoint garbage (this module is importable under pytest)."""
    import torch

    from zeronas.models.adapters import rnn_lm

    emb = torch.nn.Embedding(10000, 4)
    return rnn_lm(emb, torch.nn.LSTM(4, 4), torch.nn.Linear(4, 10000))


@CASES
@given(doc=json_docs, factory=names, raw=st.binary(max_size=300), which=st.integers(0, 3))
def test_score_model(doc, factory, raw, which):
    if which == 0:
        args = ["zn_nope_" + factory]
    elif which == 1:
        args = ["zn_nope:" + factory]
    elif which == 2:
        args = [f"{__name__}:tiny_lm", "--checkpoint", write(doc, ".pt")]
    else:
        path = WORK / f"{uuid.uuid4().hex}.pt"
        path.write_bytes(raw)
        args = [f"{__name__}:tiny_lm", "--checkpoint", str(path)]
    assert_clean_error(["score-model", *args, "--proxies", "params"])


def teardown_module() -> None:
    import shutil

    shutil.rmtree(WORK, ignore_errors=True)
