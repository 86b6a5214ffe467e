"""Issue 19, items 1 to 11: what a second adversarial run found. The generated families of bad inputs are in
test_cli_garbage.py; here, one test per finding that is not a family: a plugin's wrong return value, a proxy that
writes into its inputs, non-finite weights, the store's application id, a read-only folder, and the messages."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zeronas.cells.reference import reference_cell
from zeronas.cli import app
from zeronas.core.config import TINY, ConfigError, ScoringConfig
from zeronas.core.score import Score
from zeronas.proxies import registry
from zeronas.proxies.runner import ProxyReturnError, score_cell, score_model
from zeronas.run import ExecutorError, score_many
from zeronas.store import StoreError, open_store

runner = CliRunner()
TEXT = "\n".join(" ".join(f"w{(i * 7 + j) % 23}" for j in range(12)) for i in range(40)) + "\n"


@pytest.fixture
def scoped_proxies():
    """Register test proxies for one test only."""
    with registry.PROXIES.scoped():
        yield registry.proxy


def small_corpus(tmp_path: Path):
    from zeronas.data.corpus import load_user_corpus

    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return load_user_corpus(path)


# -- 2: a corpus too short for the probe -------------------------------------------------------------------------

def test_data_needs_name_the_corpus_the_split_and_the_proxy(tmp_path):
    from zeronas.data.corpus import load_ptb, load_wikitext2
    from zeronas.proxies.needs import BUNDLED_TOKENS, check_data_needs, data_needs

    for corpus in (load_ptb(), load_wikitext2()):  # the constants that spare a check loading the bundled text
        for split in ("train", "valid", "test"):
            if split not in corpus.missing:
                assert BUNDLED_TOKENS[(corpus.name, split)] == corpus.split(split).numel()
    config = TINY.with_(seq_len=8, batch_size=4)
    assert data_needs(["params"], config) == (12, data_needs(["params"], config)[1])
    assert data_needs(["params", "state_escape"], config)[0] == 62  # 60 steps from 2 places
    corpus = small_corpus(tmp_path)  # 40 lines of 12 words and an end of line: 520 tokens
    check_data_needs(["state_escape"], config, corpus)
    with pytest.raises(ConfigError, match=r"corpus text.txt: its train split has 520 tokens, but the probe batch "
                                          r".* needs 1,004"):
        check_data_needs(["params"], config.with_(seq_len=1000), corpus)
    with pytest.raises(ConfigError, match="has 8 tokens, but the probe batch .* needs 8,001"):
        check_data_needs(["params"], config.with_(batch_size=8000, seq_len=1), corpus.__class__(
            corpus.vocab, corpus.train[:8], corpus.valid, corpus.test, name="tiny"))


def test_score_cell_refuses_a_short_corpus_before_any_proxy_runs(tmp_path, scoped_proxies):
    ran = []

    @scoped_proxies("t_ran", higher_is_better=True, needs_data=False, description="test")
    def t_ran(ctx):
        ran.append(1)
        return 1.0

    corpus = small_corpus(tmp_path)
    short = corpus.__class__(corpus.vocab, corpus.train[:40], corpus.valid, corpus.test, name="short")
    with pytest.raises(ConfigError, match="proxy state_escape needs 62"):
        score_cell(reference_cell("lstm"), ["t_ran", "state_escape"], TINY, short)
    assert ran == []


# -- 4: a plugin's mistakes are the plugin's, and proxies cannot change each other's inputs ---------------------

@pytest.mark.parametrize("value, shown", [("1.5", "str '1.5'"), (None, "NoneType None"), (1 + 2j, "complex"),
                                          (torch.zeros(3), "torch Tensor of shape (3,)"), (True, "bool True"),
                                          ([1.0], "list [1.0]")])
def test_a_value_that_is_not_a_real_number_is_the_plugins_error(value, shown, scoped_proxies):
    @scoped_proxies("t_wrong", higher_is_better=True, needs_data=False, description="test")
    def t_wrong(ctx):
        return value

    with pytest.raises(ProxyReturnError) as info:
        score_cell(reference_cell("rnn"), ["params", "t_wrong"], TINY)
    message = str(info.value)
    assert "'t_wrong'" in message and __name__ in message and shown in message and "not a real number" in message


def test_real_numbers_of_every_kind_are_scores(scoped_proxies):
    import numpy as np

    for i, value in enumerate([2, 2.5, np.float32(1.5), np.int64(3), torch.tensor(4.0), torch.tensor([5]),
                               np.array([6.0]), float("nan")]):
        scoped_proxies(f"t_real{i}", higher_is_better=True, needs_data=False, description="test")(
            lambda ctx, v=value: v)
    out = score_cell(reference_cell("rnn"), [f"t_real{i}" for i in range(8)], TINY)
    assert [out[f"t_real{i}"].value for i in range(7)] == [2.0, 2.5, 1.5, 3.0, 4.0, 5.0, 6.0]
    assert out["t_real7"].status == "nan"


def test_a_wrong_value_in_a_worker_stores_nothing_and_names_the_plugin(tmp_path):
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "zn_wrong_value.py").write_text(
        "from zeronas.proxies.registry import proxy\n\n"
        "@proxy('t_text', higher_is_better=True, needs_data=False, description='test')\n"
        "def t_text(ctx):\n    return '1.5'\n")
    sys.path.insert(0, str(folder))
    try:
        url = f"sqlite:///{tmp_path / 's.db'}"
        with registry.PROXIES.scoped(), pytest.raises(
                ExecutorError, match=r"'t_text' \(registered by zn_wrong_value\) returned str '1.5'"):
            score_many([reference_cell("rnn"), reference_cell("gru")], ["params", "t_text"], TINY, url, workers=1,
                       progress=False, imports=["zn_wrong_value"])
        with open_store(url) as st:
            assert st.count() == 0
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("zn_wrong_value", None)


def test_a_proxy_that_writes_into_its_inputs_changes_nothing_after_it(tmp_path, scoped_proxies):
    corpus = small_corpus(tmp_path)
    split = corpus.split(TINY.probe_split).clone()

    @scoped_proxies("t_vandal", higher_is_better=True, needs_data=True, description="test")
    def t_vandal(ctx):
        ctx.inputs.zero_()
        ctx.targets.fill_(3)
        ctx.corpus.split(ctx.config.probe_split).zero_()
        ctx.corpus.vocab.add("intruder")
        return 0.0

    @scoped_proxies("t_look", higher_is_better=True, needs_data=True, description="test")
    def t_look(ctx):
        return float(ctx.inputs.sum() + ctx.targets.sum() + ctx.corpus.split(ctx.config.probe_split).sum()
                     + ctx.vocab_size)

    cell = reference_cell("lstm")
    clean = score_cell(cell, ["t_look", "hidden_cov"], TINY, corpus)
    after = score_cell(cell, ["t_vandal", "t_look", "hidden_cov"], TINY, corpus)
    assert after["t_look"].value == clean["t_look"].value and after["hidden_cov"].value == clean["hidden_cov"].value
    assert torch.equal(corpus.split(TINY.probe_split), split) and "intruder" not in corpus.vocab  # next cells too


def test_ctrl_c_stops_the_run_but_a_proxys_keyboard_interrupt_is_its_row(scoped_proxies):
    import os
    import signal
    import time

    from zeronas.proxies.context import ScoringContext
    from zeronas.proxies.runner import run_proxies

    @scoped_proxies("t_raises", higher_is_better=True, needs_data=False, description="test")
    def t_raises(ctx):
        raise KeyboardInterrupt

    @scoped_proxies("t_ctrl_c", higher_is_better=True, needs_data=False, description="test")
    def t_ctrl_c(ctx):  # the user presses Ctrl-C while this proxy runs
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
        return 1.0

    out = score_cell(reference_cell("rnn"), ["params", "t_raises"], TINY)
    assert out["t_raises"].status == "error" and out["params"].status == "ok"
    with pytest.raises(KeyboardInterrupt):
        score_cell(reference_cell("rnn"), ["params", "t_ctrl_c"], TINY)
    seen = []

    @scoped_proxies("t_look_sigint", higher_is_better=True, needs_data=False, description="test")
    def t_look_sigint(ctx):
        seen.append(signal.getsignal(signal.SIGINT))
        return 1.0

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # in a worker (which ignores SIGINT: Ctrl-C is its parent's), the proxies run with SIGINT still ignored
        run_proxies(["t_look_sigint"], ScoringContext(reference_cell("rnn"), TINY), catch_interrupt=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [signal.SIG_IGN]


# -- 5: non-finite weights are nan/inf, never a clean number --------------------------------------------------

def _lm(fill: float | None = None) -> torch.nn.Module:
    from zeronas.models.adapters import rnn_lm

    torch.manual_seed(0)
    lm = rnn_lm(torch.nn.Embedding(30, 8), torch.nn.LSTM(8, 8), torch.nn.Linear(8, 30))
    if fill is not None:
        with torch.no_grad():
            next(lm.parameters()).fill_(fill)
    return lm


@pytest.mark.parametrize("fill, status", [(float("nan"), "nan"), (float("inf"), "nan"), (None, "ok")])
def test_state_escape_of_non_finite_weights_is_not_a_clean_number(fill, status):
    tokens = torch.arange(200) % 30
    score = score_model(_lm(fill), ["state_escape"], tokens=tokens, config=TINY)["state_escape"]
    assert score.status == status and (score.value is None) == (status != "ok")


def test_state_escape_of_a_state_that_overflows_at_once_is_inf(monkeypatch):
    from zeronas.proxies import _escape

    lm = _lm()
    real_layer = lm.layers[0].forward

    def overflowing(x, state):  # finite weights, but the first step already leaves float range
        out, new = real_layer(x, state)
        return out, tuple(s * float("inf") for s in new)

    monkeypatch.setattr(type(lm.layers[0]), "forward", lambda self, x, state: overflowing(x, state))
    tokens = torch.arange(200) % 30
    assert _escape.RADII[0] == 1.0
    score = score_model(lm, ["state_escape"], tokens=tokens, config=TINY)["state_escape"]
    assert score.status == "inf" and score.value is None


# -- 6 and 10: the store's own files only, and stores in odd places ---------------------------------------------

APP_ID = 0x7A4E4153


def _app_id(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[68:72], "big")


def test_a_new_store_is_stamped_and_an_older_one_is_stamped_when_written(tmp_path):
    new = tmp_path / "new.db"
    with open_store(new) as st:
        st.put_cell("c", "{}", TINY, [Score("params", 1.0, "ok")])
    assert _app_id(new) == APP_ID
    old = tmp_path / "old.db"  # a store of an earlier zeronas: the same schema, no application id
    with open_store(old) as st:
        st.put_cell("c", "{}", TINY, [Score("params", 1.0, "ok")])
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA application_id = 0")
    conn.commit()
    conn.close()
    assert _app_id(old) == 0
    with open_store(old, read_only=True) as st:  # read as it is
        assert st.get("c", TINY)["params"].value == 1.0
    assert _app_id(old) == 0
    with open_store(old) as st:
        assert st.count() == 1
    assert _app_id(old) == APP_ID


def test_a_store_in_a_read_only_folder_is_read(tmp_path, monkeypatch):
    """A read-only folder (no -shm file can be made) is simulated: every non-immutable read-only open of the store
    fails as SQLite fails there. The check that a file is a store never needs one; reading falls back to it."""
    db = tmp_path / "s.db"
    with open_store(db) as st:
        st.put_cell("c", "{}", ScoringConfig(), [Score("params", 2.0, "ok")])
    real = sqlite3.connect

    def folder_is_read_only(target, *args, **kwargs):
        text = str(target)
        if text.startswith("file:") and "mode=ro" in text and "immutable=1" not in text:
            raise sqlite3.OperationalError("unable to open database file")
        return real(target, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", folder_is_read_only)
    res = runner.invoke(app, ["store", "info", "--store", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 1


def test_delete_and_vacuum_of_a_mistyped_path_create_nothing(tmp_path):
    for args in (["store", "delete", "--yes"], ["store", "vacuum"]):
        res = runner.invoke(app, [*args, "--store", f"sqlite:///{tmp_path / 'typo' / 'scores.db'}"])
        assert res.exit_code == 2 and "no such results store" in res.output
    assert not (tmp_path / "typo").exists()
    with pytest.raises(StoreError, match="no such results store"):
        open_store(tmp_path / "absent.db", create=False)


def test_a_tampered_value_is_a_store_error_naming_the_row(tmp_path):
    db = tmp_path / "s.db"
    with open_store(db) as st:
        st.put_cell("cell1", "{}", TINY, [Score("params", 1.0, "ok")])
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER results_immutable")
    conn.execute("UPDATE results SET value = 'abc'")
    conn.commit()
    conn.close()
    with open_store(db, read_only=True) as st, pytest.raises(StoreError, match=r"cell1/params .* damaged"):
        st.scores_table(TINY)


# -- 9: tracebacks ------------------------------------------------------------------------------------------------

def test_odd_arguments_are_one_line_errors(tmp_path):
    store = ["--store", f"sqlite:///{tmp_path / 's.db'}"]
    cases = [
        (["evaluate", "--sample-seed", "-1", "--limit", "2", "-p", "params", "--no-score", "-q", *store],
         "--sample-seed"),
        (["evaluate", "--limit", "1", "-p", "params", "-q", "--report", str(tmp_path / "r\udcff"), *store],
         "not valid UTF-8"),
        (["score-model", f"{__name__}:meta_lm", "-p", "params"], "meta device"),
    ]
    for args, words in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output, (args, res.output)
        assert len(res.output.strip().splitlines()) == 1, res.output


def meta_lm():
    with torch.device("meta"):
        return _lm()


def test_a_user_corpus_that_cannot_be_found_or_changed_is_a_clean_error(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text(TEXT)
    config = ScoringConfig().with_corpus(text)
    (tmp_path / "moved.json").write_text(json.dumps({k: v for k, v in config.to_dict().items()}))  # no path
    text.write_text(TEXT + "changed\n")
    (tmp_path / "changed.json").write_text(json.dumps(config.to_dict(with_path=True)))
    for name, words in (("moved.json", "not where it is"), ("changed.json", "the corpus changed")):
        res = runner.invoke(app, ["evaluate", "--limit", "1", "-p", "params", "--workers", "1", "-q",
                                  "--scoring-config", str(tmp_path / name), "--store",
                                  f"sqlite:///{tmp_path / 's.db'}"])
        assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "s.db").exists() or open_store(tmp_path / "s.db", read_only=True).count() == 0


# -- 11: messages that said the wrong thing -----------------------------------------------------------------------

def test_options_are_blamed_for_their_own_values(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"seq_len": 8}))
    res = runner.invoke(app, ["score", "lstm", "-p", "params", "--scoring-config", str(config), "--seed", "-1"])
    assert res.exit_code == 2 and res.output.startswith("error: --seed:") and str(config) not in res.output
    if not torch.cuda.is_available():
        res = runner.invoke(app, ["score", "lstm", "-p", "params", "--scoring-config", str(config), "--device",
                                  "cuda"])
        assert res.exit_code == 2 and res.output.startswith("error: --device:") and str(config) not in res.output


class Unsafe:
    def __reduce__(self):
        return (print, ("never run",))


def test_checkpoint_messages_say_what_the_file_is(tmp_path):
    lm = _lm()
    state = lm.state_dict()
    cases = {"pickle.pt": {"x": Unsafe()}, "ints.pt": {k: v.to(torch.int64) for k, v in state.items()},
             "complex.pt": {k: v.to(torch.complex64) for k, v in state.items()}}
    for name, data in cases.items():
        torch.save(data, tmp_path / name)
    (tmp_path / "text.pt").write_text("model weights\n")
    from zeronas.models.load import ModelLoadError, load_checkpoint

    expect = {"pickle.pt": "pickled object of type print", "ints.pt": "torch.int64 values",
              "complex.pt": "torch.complex64 values", "text.pt": "not a PyTorch checkpoint"}
    for name, words in expect.items():
        with pytest.raises(ModelLoadError) as info:
            load_checkpoint(_lm(), tmp_path / name)
        assert words in str(info.value) and "weights_only=False" not in str(info.value) and "KeyError" not in str(
            info.value), str(info.value)


def exits():
    sys.exit(0)


def test_a_factory_that_exits_is_an_error_not_a_silent_success():
    res = runner.invoke(app, ["score-model", f"{__name__}:exits", "-p", "params"])
    assert res.exit_code == 2 and "sys.exit(0)" in res.output


@pytest.mark.parametrize("name", ["a+b", "gate!me", "x,y", "with space", "esc\x1b[31m", "", "é"])
def test_a_proxy_name_that_cannot_be_selected_is_refused_at_registration(name, scoped_proxies):
    with pytest.raises(ValueError, match="cannot be selected"):
        scoped_proxies(name, higher_is_better=True, needs_data=False, description="test")
    assert name not in registry.PROXIES


def test_a_proxy_named_twice_is_an_error_not_two_scores():
    for args in (["score", "lstm", "-p", "params,params"], ["score-model", f"{__name__}:meta_lm", "-p", "n_prod,n_prod"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "more than once" in res.output, res.output



COMMITTED_STORES = sorted((Path(__file__).resolve().parents[1] / "docs" / "results").glob("*.db"))


@pytest.mark.parametrize("path", COMMITTED_STORES, ids=lambda p: p.name)
def test_a_committed_store_is_stamped_so_opening_it_leaves_the_file_as_it_is(path):
    from zeronas.store.sqlite_file import APPLICATION_ID

    with path.open("rb") as handle:
        header = handle.read(100)
    assert int.from_bytes(header[68:72], "big") == APPLICATION_ID, f"{path.name}: open and close it once with SQLiteStore"


def test_the_committed_stores_are_found():
    assert {p.name for p in COMMITTED_STORES} >= {"nbnlp-dev-scores.db", "refine-wt2-scores.db"}
