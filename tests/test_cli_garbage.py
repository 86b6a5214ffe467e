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

# -- issue 19: the adversarial classes of the second run ----------------------------------------------------------
# Each family below broke a promise before: a command that clobbered or changed a file it should have left alone,
# blocked on a FIFO, crashed in LightGBM's native code, echoed escape codes or stored a setup failure as a result.

FOREIGN = {  # another application's SQLite files: none may be changed by any command, not even by a pragma
    "a view only": ["CREATE VIEW v AS SELECT 1 AS x"],
    "an application id": ["PRAGMA application_id = 1234"],
    "a user version": ["PRAGMA user_version = 7"],
    "a WAL table": ["PRAGMA journal_mode = WAL", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"],
    "schema version 99": ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                          "INSERT INTO meta VALUES ('schema_version', '99')"],
    "zeronas tables and a view": ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                                  "INSERT INTO meta VALUES ('schema_version', '2')", "CREATE VIEW w AS SELECT 2"],
}
WRITERS = [["store", "vacuum"], ["store", "delete", "--yes"], ["store", "migrate"], ["store", "info"],
           ["store", "export"], ["evaluate", "--proxies", "params", "--limit", "1", "--workers", "1", "-q"],
           ["evaluate", "--proxies", "params", "--limit", "1", "--no-score", "-q"]]


def _store_with_rows(path: Path) -> Path:
    from zeronas.core.config import ScoringConfig
    from zeronas.core.score import Score
    from zeronas.store import open_store

    with open_store(f"sqlite:///{path}") as st:
        st.put_cell("c1", '{"x": 1}', ScoringConfig(), [Score("params", 3.0, "ok", "", 0.1)])
        st.vacuum()
    return path


def _files_beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


@CASES
@given(kind=st.sampled_from(sorted(FOREIGN)), command=st.sampled_from(WRITERS), url=st.booleans())
def test_another_applications_sqlite_file_is_never_changed(kind, command, url):
    import sqlite3

    folder = WORK / uuid.uuid4().hex
    folder.mkdir()
    path = folder / "app.db"
    conn = sqlite3.connect(path)
    for statement in FOREIGN[kind]:
        conn.execute(statement)
    conn.commit()
    conn.close()
    before, beside = path.read_bytes(), _files_beside(path)
    assert_clean_error([*command, "--store", f"sqlite:///{path}" if url else str(path)])
    assert path.read_bytes() == before and _files_beside(path) == beside, kind


@CASES
@given(spelling=st.sampled_from(["same", "url", "dot", "absolute", "symlink", "wal", "shm", "other"]),
       fmt=st.sampled_from([None, "csv", "parquet"]), force=st.booleans())
def test_export_never_writes_over_the_store_or_an_existing_file(spelling, fmt, force):
    import os

    folder = WORK / uuid.uuid4().hex
    folder.mkdir()
    store = _store_with_rows(folder / "scores")
    before = store.read_bytes()
    other = folder / "kept.csv"
    other.write_text("precious\n")
    target = {"same": str(store), "url": str(store), "dot": f"{folder}/./scores", "absolute": str(store.resolve()),
              "symlink": str(folder / "link"), "wal": f"{store}-wal", "shm": f"{store}-shm",
              "other": str(other)}[spelling]
    if spelling == "symlink":
        os.symlink(store, folder / "link")
    if spelling in ("wal", "shm"):
        Path(target).write_bytes(b"")  # as SQLite leaves them beside a store
    args = ["store", "export", "--store", f"sqlite:///{store}" if spelling == "url" else str(store), "-o", target]
    args += ["--format", fmt] if fmt else []
    if spelling == "other" and force:  # the one case the user asked for: --force replaces a file that is not the store
        if fmt != "parquet":
            res = runner.invoke(app, args + ["--force"])
            assert res.exit_code == 0 and other.read_text().startswith("canonical_id,"), res.output
        return
    assert_clean_error(args + (["--force"] if force else []))
    assert store.read_bytes() == before and other.read_text() == "precious\n"


@CASES
@given(command=st.sampled_from([["predict", "fit", "--labels", "10", "-q", "-o"], ["search", "--budget", "2", "-q",
                                                                               "--save-best"],
                                ["refine", "lstm", "--quick", "--plot"]]),
       url=st.booleans(), side=st.sampled_from(["", "-wal"]))
def test_no_command_writes_its_output_over_the_store(command, url, side):
    folder = WORK / uuid.uuid4().hex
    folder.mkdir()
    store = _store_with_rows(folder / "zeronas.db")
    if side:
        Path(f"{store}{side}").write_bytes(b"")
    before = store.read_bytes()
    assert_clean_error([*command, f"{store}{side}", "--store", f"sqlite:///{store}" if url else str(store)])
    assert store.read_bytes() == before


@CASES
@given(command=st.sampled_from([["store", "delete", "--yes"], ["store", "vacuum"], ["store", "info"],
                                ["store", "export"], ["store", "migrate"],
                                ["evaluate", "--proxies", "params", "--limit", "1", "--no-score", "-q"]]),
       url=st.booleans(), depth=st.integers(0, 2))
def test_a_store_that_does_not_exist_is_an_error_not_a_new_store(command, url, depth):
    folder = WORK / uuid.uuid4().hex
    path = folder.joinpath(*["sub"] * depth, "mistyped.db")
    assert_clean_error([*command, "--store", f"sqlite:///{path}" if url else str(path)])
    assert not folder.exists()


def _special(kind: str) -> str:
    import os

    if kind == "fifo":
        path = WORK / f"{uuid.uuid4().hex}.fifo"
        os.mkfifo(path)
        return str(path)
    if kind == "folder":
        path = WORK / uuid.uuid4().hex
        path.mkdir()
        return str(path)
    return {"zero": "/dev/zero", "null": "/dev/null"}[kind]


FILE_ARGUMENTS = {  # where a command reads a file: a FIFO would block it forever, /dev/zero fill its memory
    "recipe": lambda f: ["cell", "validate", f],
    "ground truth": lambda f: ["bench", "describe", "--ground-truth", f],
    "evaluate config": lambda f: ["evaluate", "--scoring-config", f, "--no-score", "-q"],
    "score config": lambda f: ["score", "lstm", "-p", "params", "--scoring-config", f],
    "search config": lambda f: ["search", "--scoring-config", f, "--budget", "1", "-q"],
    "predictor": lambda f: ["evaluate", "--predictor", f, "--proxies", "params", "--no-score", "-q"],
    "predict cell": lambda f: ["predict", "cell", f, "lstm", "-q"],
    "search predictor": lambda f: ["search", "--predictor", f, "--budget", "1", "-q"],
    "checkpoint": lambda f: ["score-model", f"{__name__}:tiny_lm", "--checkpoint", f, "-p", "params"],
    "corpus": lambda f: ["score", "lstm", "-p", "params", "--corpus", f],
}


@CASES
@given(kind=st.sampled_from(["fifo", "zero", "null", "folder"]), where=st.sampled_from(sorted(FILE_ARGUMENTS)))
def test_file_arguments_are_regular_files(kind, where):
    import signal

    def hung(signum, frame):
        raise AssertionError(f"{where}: blocked on a {kind}")

    import os
    import resource

    # a reader that regressed would block on the FIFO (the alarm stops it) or read /dev/zero until the machine
    # runs out of memory (the address-space cap, 2 GiB above what the process has now, stops it)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        now = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    resource.setrlimit(resource.RLIMIT_AS, (now + (2 << 30), hard))
    try:
        args = FILE_ARGUMENTS[where](_special(kind))
        if args[0] in ("evaluate", "search", "predict"):
            args += ["--store", f"sqlite:///{WORK / uuid.uuid4().hex}.db"]
        assert_clean_error(args)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


_MODEL: dict[str, Path] = {}


def _model_and_store() -> tuple[Path, Path]:
    """A predictor of the default config on two structural proxies, and a store holding lstm's scores of them: a
    `predict cell` that needs no scoring, so each edited model file reaches LightGBM in milliseconds."""
    if not _MODEL:
        import numpy as np

        from zeronas.bench.resolve import resolve_cell
        from zeronas.core.config import ScoringConfig
        from zeronas.core.score import Score
        from zeronas.predict.features import feature_names
        from zeronas.predict.model import Predictor
        from zeronas.store import open_store

        rng = np.random.default_rng(0)
        n = len(feature_names(["params", "n_blend"], False))
        X = rng.normal(size=(200, n))
        losses = [None if x[2] > 1.0 else 5.0 - 0.3 * x[0] for x in X]
        config = ScoringConfig()
        model = Predictor.fit(X, losses, proxies=["params", "n_blend"], structure=False, scoring_config=config.to_dict(),
                              config_hash=config.config_hash())
        _MODEL["model"] = model.save(WORK / "model.json")
        cell = resolve_cell("lstm")
        with open_store(f"sqlite:///{WORK / 'model-store.db'}") as st:
            st.put_cell(cell.canonical_id, cell.to_json(), config,
                        [Score("params", 1e6, "ok", "", 0.1), Score("n_blend", 0.0, "ok", "", 0.1)])
        _MODEL["store"] = WORK / "model-store.db"
    return _MODEL["model"], _MODEL["store"]


FIELD_EDITS = ["NaN", "Infinity", "-Infinity", "-1", "2", "0", "1e400", '"x"', "null", "[]", "{}", "true", '"false"', "[1, 0]",
               "[NaN]", "-0.0", "4294967296", "[\"params\", \"params\"]"]
FIELDS = ["goodness_mean", "goodness_std", "p_diverge_constant", "loss_quantiles", "prior_values", "seed",
          "structure", "prior", "prior_higher_is_better", "objective", "proxies", "regressor", "classifier",
          "training", "params", "scoring_config"]
TOKENS = ["-5", "99", "100000", "-100000", "1e308", "nan", "", "x", "3", "-1", "0", "inf", "1.5", "2147483648",
          "0x10", "1_0", "--1"]


def _edit_booster(text: str, line: int, token: int, new: str, action: int) -> str:
    lines = text.split("\n")
    i = line % len(lines)
    key, sep, value = lines[i].partition("=")
    if action == 0 and sep:
        parts = value.split(" ")
        parts[token % len(parts)] = new
        lines[i] = key + "=" + " ".join(parts)
    elif action == 1:
        del lines[i]
    elif action == 2:
        lines.insert(i, lines[i])
    else:
        lines[i] = lines[i] + " " + new
    return "\n".join(lines)


def _strict_json(text: str):
    def no_constant(name):
        raise AssertionError(f"{name} in the JSON output")

    return json.loads(text, parse_constant=no_constant)


@CASES
@given(which=st.sampled_from(["regressor", "classifier", "field"]), line=st.integers(0, 10**6),
       token=st.integers(0, 10**6), new=st.sampled_from(TOKENS), action=st.integers(0, 3),
       field=st.sampled_from(FIELDS), value=st.sampled_from(FIELD_EDITS))
def test_an_edited_model_file_with_its_hash_recomputed_never_crashes(which, line, token, new, action, field, value):
    """The SHA-256 has no key: anyone can edit the file and compute it again. Whatever the edit, the commands
    refuse the file in one line or predict finite numbers; LightGBM's native parser never sees unchecked text."""
    from zeronas.predict.model import _digest

    model, store = _model_and_store()
    data = json.loads(model.read_text())
    if which == "field":
        data[field] = json.loads(value)
    else:
        data[which] = _edit_booster(data[which], line, token, new, action)
    data["sha256"] = _digest({k: v for k, v in data.items() if k != "sha256"})
    edited = WORK / f"{uuid.uuid4().hex}.json"
    edited.write_text(json.dumps(data))
    res = runner.invoke(app, ["predict", "cell", str(edited), "lstm", "--store", f"sqlite:///{store}", "--json",
                              "-q"])
    assert res.exit_code in (0, 2) and "Traceback" not in res.output, (res.exit_code, res.output[-500:])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code == 0:
        rows = _strict_json(res.stdout)["cells"]
        assert all(0 <= r["p_diverge"] <= 1 and r["test_ppl"] > 0 for r in rows if r["complete"])


def test_the_unedited_model_file_predicts():
    """The family above starts from a file that works: an edit is what makes a case fail, not the setup."""
    model, store = _model_and_store()
    res = runner.invoke(app, ["predict", "cell", str(model), "lstm", "--store", f"sqlite:///{store}", "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert _strict_json(res.stdout)["cells"][0]["complete"]


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 and c not in "\n\t" or 0x7f <= ord(c) <= 0x9f or c == "\u202e"


CONTROL = ["\x1b[31m", "\x1b]0;owned\x07", "\x9b2J", "\x08\x08", "\r", "\u202e", "\x1b[2K\x1b[1G"]


@CASES
@given(code=st.sampled_from(CONTROL), where=st.sampled_from(["recipe", "predictor", "checkpoint", "config",
                                                              "ground truth", "store"]))
def test_control_characters_are_never_echoed_raw(code, where):
    """A path (or a key name, or a proxy name) may hold terminal escape codes; whatever the command prints shows
    them escaped."""
    name = f"x{code}y"
    path = WORK / uuid.uuid4().hex / name
    path.parent.mkdir()
    args = {"recipe": ["cell", "validate", str(path)],
            "predictor": ["evaluate", "--predictor", str(path), "-p", "params", "--no-score", "-q", "--store",
                          f"sqlite:///{WORK / uuid.uuid4().hex}.db"],
            "checkpoint": ["score-model", f"{__name__}:tiny_lm", "--checkpoint", str(path), "-p", "params"],
            "config": ["score", "lstm", "-p", "params", "--scoring-config", str(path)],
            "ground truth": ["bench", "describe", "--ground-truth", str(path)],
            "store": ["store", "info", "--store", str(path)]}[where]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    shown = res.output
    raw = [c for c in code if _is_control(c) and c in shown]
    assert not raw, (where, repr(shown[-300:]))


@CASES
@given(key=st.sampled_from(CONTROL).map(lambda c: f"encoder{c}.weight"))
def test_checkpoint_key_names_are_escaped(key):
    import torch

    state = tiny_lm().state_dict()
    state[key] = state.pop("encoder.weight")
    path = WORK / f"{uuid.uuid4().hex}.pt"
    torch.save(state, path)
    res = runner.invoke(app, ["score-model", f"{__name__}:tiny_lm", "--checkpoint", str(path), "-p", "params"])
    assert res.exit_code == 2 and "does not fit the model" in res.output
    assert not [c for c in res.output if _is_control(c)], repr(res.output)


SHORT = {"one line": "the cat sat on the mat\n", "41 tokens": " ".join(f"w{i % 7}" for i in range(40)) + "\n",
         "a few lines": "\n".join(" ".join(f"t{j}" for j in range(i, i + 9)) for i in range(6)) + "\n"}


@CASES
@given(text=st.sampled_from(sorted(SHORT)), command=st.sampled_from(["evaluate", "search", "score", "score-model",
                                                                       "predict"]),
       option=st.sampled_from([[], ["--seq-len", "5000"], ["--batch-size", "5000"]]))
def test_a_corpus_too_short_for_the_probe_stores_nothing(text, command, option):
    """Setup, not a result of the cells: exit 2 naming the corpus, and no row in the store."""
    import sqlite3

    corpus = write(SHORT[text], ".txt")
    db = WORK / f"{uuid.uuid4().hex}.db"
    store = ["--store", f"sqlite:///{db}"]
    proxies = ["-p", "params,state_escape"]
    no_options = command in ("search", "predict")  # these take the probe batch from a --scoring-config file
    if no_options and option:
        config = write(json.dumps({option[0][2:].replace("-", "_"): int(option[1])}), ".json")
        option = ["--scoring-config", config]
    args = {"evaluate": ["evaluate", "--limit", "2", "--workers", "1", "-q", *proxies, *store],
            "search": ["search", "--budget", "2", "--workers", "1", "-q", "--proxy", "state_escape", *store],
            "score": ["score", "lstm", *proxies],
            "score-model": ["score-model", f"{__name__}:tiny_lm", *proxies],
            "predict": ["predict", "fit", "--labels", "20", "--workers", "1", "-q", *proxies, *store]}[command]
    res = runner.invoke(app, [*args, "--corpus", corpus, *option])
    assert res.exit_code == 2 and "Traceback" not in res.output, (command, res.output[-400:])
    assert "tokens" in res.output, res.output[-300:]
    if db.exists():
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            assert "results" not in tables or conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
        conn.close()



def teardown_module() -> None:
    import shutil

    shutil.rmtree(WORK, ignore_errors=True)
