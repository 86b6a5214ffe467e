"""Corpus loading (bundled PTB and WikiText-2, user folders and files), scoring-config corpora, batching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zeronas.cells.reference import reference_cell
from zeronas.data.corpus import (EOS, Corpus, CorpusError, Vocabulary, batchify, corpus_digest, get_batch,
                                 load_corpus, load_ptb, load_scoring_corpus, load_user_corpus, load_wikitext2,
                                 probe_batch)
from zeronas.proxies import TINY, ScoringConfig, score_cell
from zeronas.core.config import ConfigError
from zeronas.proxies.context import ScoringContext


@pytest.fixture(scope="module")
def ptb() -> Corpus:
    return load_ptb()


def test_ptb_matches_source_md(ptb: Corpus) -> None:
    assert len(ptb.vocab) == 10_000
    assert EOS in ptb.vocab
    assert ptb.train.numel() == 929_589
    assert ptb.valid.numel() == 73_760
    assert ptb.test.numel() == 82_430
    assert ptb.lines == {"train": 42_068, "valid": 3_370, "test": 3_761}
    for split in (ptb.train, ptb.valid, ptb.test):
        assert split.dtype == torch.long
        assert int(split.min()) >= 0 and int(split.max()) < 10_000
    # one <eos> per line
    eos = ptb.vocab.id(EOS)
    assert int((ptb.train == eos).sum()) == 42_068
    assert load_ptb() is ptb  # cached in-process


def test_ptb_vocabulary_order(ptb: Corpus) -> None:
    # first appearance over the training file: line 1 is " aer banknote berlitz calloway centrust ..."
    assert ptb.vocab.decode(ptb.train[:5]) == ["aer", "banknote", "berlitz", "calloway", "centrust"]
    assert ptb.vocab.decode(range(5)) == ["aer", "banknote", "berlitz", "calloway", "centrust"]
    # valid and test add no new types to PTB
    assert int(ptb.train.max()) == 9_999


def test_vocabulary_roundtrip() -> None:
    v = Vocabulary(["a", "b", "a", "c"])
    assert len(v) == 3 and v.encode(["c", "a"]) == [2, 0] and v.decode([1, 2]) == ["b", "c"]
    with pytest.raises(KeyError, match="zzz"):
        v.id("zzz")


def test_batchify_and_get_batch() -> None:
    data = torch.arange(103)
    src = batchify(data, 4)
    assert src.shape == (25, 4)
    assert src[:, 1].tolist() == list(range(25, 50))  # contiguous columns, remainder trimmed
    x, y = get_batch(src, 0, 10)
    assert x.shape == y.shape == (10, 4)
    assert torch.equal(y[:-1], x[1:])
    x, y = get_batch(src, 20, 10)  # last, shorter batch
    assert x.shape == (4, 4) and torch.equal(y, src[21:25])
    with pytest.raises(ValueError):
        batchify(torch.arange(3), 4)


def test_batchify_ptb_shapes(ptb: Corpus) -> None:
    assert batchify(ptb.train, 20).shape == (929_589 // 20, 20)
    assert batchify(ptb.test, 50).shape == (82_430 // 50, 50)


def test_probe_batch_deterministic(ptb: Corpus) -> None:
    torch.manual_seed(123)
    x1, y1 = probe_batch(ptb.test, 8, 35, seed=7)
    torch.manual_seed(999)  # the global RNG does not matter
    x2, y2 = probe_batch(ptb.test, 8, 35, seed=7)
    assert x1.shape == y1.shape == (35, 8)
    assert x1.dtype == y1.dtype == torch.long
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = probe_batch(ptb.test, 8, 35, seed=8)
    assert not torch.equal(x1, x3)


def test_probe_batch_is_real_text_shifted_by_one(ptb: Corpus) -> None:
    x, y = probe_batch(ptb.valid, 5, 20, seed=0)
    assert torch.equal(x[1:], y[:-1])
    data = ptb.valid.tolist()
    for b in range(5):
        col = x[:, b].tolist() + [int(y[-1, b])]
        starts = [i for i in range(len(data) - 20) if data[i:i + 21] == col]
        assert starts, "each column must be a contiguous window of the split"


def _write_corpus(folder: Path, **texts: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in texts.items():
        (folder / f"{split}.txt").write_text(text, encoding="utf-8")
    return folder


def test_user_corpus(tmp_path: Path) -> None:
    folder = _write_corpus(tmp_path / "c", train=" a b c \n b c d \n", valid="a e\n", test="f a\n")
    c = load_corpus(folder)
    assert c.vocab.idx2word == ["a", "b", "c", EOS, "d", "e", "f"]
    assert c.train.tolist() == [0, 1, 2, 3, 1, 2, 4, 3]
    assert c.valid.tolist() == [0, 5, 3] and c.test.tolist() == [6, 0, 3]


def test_user_corpus_missing_file(tmp_path: Path) -> None:
    folder = _write_corpus(tmp_path / "c", train="a b\n", test="a\n")
    with pytest.raises(CorpusError, match="valid.txt"):
        load_corpus(folder)
    with pytest.raises(CorpusError, match="not a directory"):
        load_corpus(tmp_path / "nowhere")


@pytest.mark.parametrize("empty", ["", "\n  \n\n"])
def test_user_corpus_empty_file(tmp_path: Path, empty: str) -> None:
    folder = _write_corpus(tmp_path / "c", train="a b\n", valid="a\n", test=empty)
    with pytest.raises(CorpusError, match=r"test\.txt.*(empty|no tokens)"):
        load_corpus(folder)


# -- WikiText-2 (bundled valid and test) ---------------------------------------------------------------------------

WT2_TYPES = 18_328  # types of valid + test incl. <eos> (SOURCE.md)


@pytest.fixture(scope="module")
def wt2() -> Corpus:
    return load_wikitext2()


def test_wikitext2_matches_source_md(wt2: Corpus) -> None:
    assert len(wt2.vocab) == 33_278  # the AWD-LSTM / NAS-Bench-NLP vocabulary size
    assert wt2.valid.numel() == 217_646 and wt2.test.numel() == 245_569
    assert wt2.lines == {"valid": 3_760, "test": 4_358}
    # the real types come first (valid, then test); the rest are placeholders that no text can produce
    assert int(torch.cat([wt2.valid, wt2.test]).max()) == WT2_TYPES - 1
    assert len(set(torch.cat([wt2.valid, wt2.test]).tolist())) == WT2_TYPES
    assert len(set(wt2.valid.tolist())) == 13_777
    assert all(" " in w for w in wt2.vocab.idx2word[WT2_TYPES:])
    assert all(" " not in w for w in wt2.vocab.idx2word[:WT2_TYPES])
    assert wt2.vocab.decode(wt2.valid[:4]) == [EOS, "=", "Homarus", "gammarus"]  # the file opens " \n = Homarus ..."
    assert "<unk>" in wt2.vocab and int((wt2.valid == wt2.vocab.id(EOS)).sum()) == 3_760
    assert load_wikitext2() is wt2


def test_wikitext2_has_no_train_split(wt2: Corpus) -> None:
    with pytest.raises(CorpusError, match="wikitext-2.*no train split"):
        wt2.split("train")
    assert "train" not in repr(wt2)


def test_wikitext2_probe_batches_come_from_valid(wt2: Corpus) -> None:
    config = TINY.with_corpus("wikitext-2")
    assert config.corpus == "wikitext-2" and config.probe_split == "valid"
    ctx = ScoringContext(reference_cell("lstm"), config)
    assert ctx.vocab_size == 33_278
    x, y = probe_batch(wt2.valid, config.batch_size, config.seq_len, config.seed)
    assert torch.equal(ctx.inputs, x) and torch.equal(ctx.targets, y)
    assert not torch.equal(ctx.inputs, probe_batch(wt2.test, config.batch_size, config.seq_len, config.seed)[0])
    # the embedding has a trained WikiText-2 model's shape
    assert any(p.dim() == 2 and p.shape[0] == 33_278 for p in ctx.model().parameters())
    assert TINY.with_(corpus="wikitext-2", probe_split="") == config  # "": the corpus's default split
    cell = reference_cell("lstm")
    scores = score_cell(cell, ["params", "gradscore"], config)
    assert scores["gradscore"].ok
    assert scores["params"].value != score_cell(cell, ["params"], TINY)["params"].value  # 33,278 vs 10,000 types


def test_wikitext2_config_rules() -> None:
    assert ScoringConfig(corpus="wikitext-2").probe_split == "valid"
    assert ScoringConfig.from_dict({"corpus": "wikitext-2"}).probe_split == "valid"
    assert ScoringConfig(corpus="wikitext-2", probe_split="test").validate().probe_split == "test"
    with pytest.raises(ConfigError, match="'probe_split'.*wikitext-2"):
        ScoringConfig(corpus="wikitext-2", probe_split="train").validate()
    with pytest.raises(ConfigError, match="'probe_split'"):
        ScoringConfig().with_(corpus="wikitext-2").validate()  # the default's train split, kept by with_
    assert ScoringConfig().with_corpus("wikitext-2").probe_split == "valid"  # with_corpus takes the corpus default
    assert ScoringConfig(corpus="wikitext-2").with_corpus("ptb").probe_split == "train"


def test_config_hashes_unchanged() -> None:
    """The committed results store keys scores by these hashes; new fields must not change them."""
    from zeronas.search.prune import PRUNE_CONFIG

    assert ScoringConfig().config_hash() == "9bacc240f87ccd86"
    assert TINY.config_hash() == "8e9106f7c37c5775"
    assert PRUNE_CONFIG.config_hash() == "9c233b994ccaf7b2"
    assert set(ScoringConfig().to_dict()) == {"batch_size", "seq_len", "emb_size", "hidden_size", "n_layers", "seed",
                                              "init", "corpus", "probe_split", "ntk_batch", "zen_alpha",
                                              "zen_repeats", "device"}
    assert ScoringConfig().with_corpus("ptb").config_hash() == "9bacc240f87ccd86"
    assert ScoringConfig(corpus="wikitext-2").config_hash() != ScoringConfig().config_hash()


@pytest.mark.parametrize("bad", [{"corpus": "wikitext-103"}, {"corpus": "sha256:abc"}, {"corpus": "/data/text"},
                                 {"corpus_path": "/data/text"}, {"corpus_name": "mine"}])
def test_config_rejects_bad_corpus_fields(bad: dict) -> None:
    with pytest.raises(ConfigError, match="'corpus"):
        ScoringConfig(**bad).validate()


# -- a user's own text: identity by content ------------------------------------------------------------------------

TEXT = "".join(f"the {w} sat on the mat {i % 7} \n" for i, w in enumerate(["cat", "dog", "bird", "fox"] * 30))


def test_user_corpus_identity_is_its_content(tmp_path: Path) -> None:
    a = _write_corpus(tmp_path / "a", train=TEXT, valid=TEXT[:200], test=TEXT[200:400])
    b = _write_corpus(tmp_path / "elsewhere" / "b", train=TEXT, valid=TEXT[:200], test=TEXT[200:400])
    ca, cb = TINY.with_corpus(a), TINY.with_corpus(str(b))
    assert ca.corpus == cb.corpus == f"sha256:{corpus_digest(a)}" and len(ca.corpus) == 7 + 64
    assert ca.config_hash() == cb.config_hash() != TINY.config_hash()
    assert (ca.corpus_name, cb.corpus_name) == ("a", "b")
    assert ca.corpus_path == str(a.resolve())
    # no machine path where configs are stored or reported; workers get it explicitly
    assert "corpus_path" not in ca.to_dict() and str(tmp_path) not in str(ca.to_dict())
    assert ScoringConfig.from_dict(ca.to_dict(with_path=True)) == ca
    assert ScoringConfig.from_dict(ca.to_dict()).config_hash() == ca.config_hash()
    # an edited text is another corpus, and a config of the old text no longer loads
    (b / "valid.txt").write_text(TEXT[:200] + "a new line\n", encoding="utf-8")
    assert TINY.with_corpus(b).config_hash() != cb.config_hash()
    with pytest.raises(CorpusError, match="changed"):
        load_scoring_corpus(cb.corpus, cb.corpus_path)
    with pytest.raises(CorpusError, match="changed"):
        ScoringContext(reference_cell("lstm"), cb)  # before any proxy runs: no "error" score to store
    with pytest.raises(CorpusError, match="corpus_path"):
        ScoringContext(reference_cell("lstm"), ScoringConfig.from_dict(ca.to_dict()))


def test_user_single_file_is_every_split(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(TEXT, encoding="utf-8")
    c = load_user_corpus(path)
    assert c.name == "notes.txt" and len(c.vocab) == 16  # 8 words, 7 digits, <eos>
    assert torch.equal(c.train, c.valid) and torch.equal(c.train, c.test)
    folder = _write_corpus(tmp_path / "f", train=TEXT, valid=TEXT, test=TEXT)
    assert corpus_digest(path) == corpus_digest(folder) == c.digest  # the identity is the splits' text
    config = TINY.with_corpus(path)
    assert config.probe_split == "train" and config.corpus_name == "notes.txt"
    cell = reference_cell("lstm")
    loaded = score_cell(cell, ["params", "gradscore"], config)  # the context loads the file from corpus_path
    given = score_cell(cell, ["params", "gradscore"], config, c)
    assert {k: (s.status, s.value) for k, s in loaded.items()} == {k: (s.status, s.value) for k, s in given.items()}
    assert loaded["gradscore"].ok
    assert score_cell(cell, ["params"], config)["params"].value != score_cell(cell, ["params"], TINY)["params"].value


BAD = {
    "missing path": (None, "no such file or folder"),
    "empty": (b"", "the file is empty"),
    "blank lines": (b"\n  \n\n", "no tokens"),
    "NUL bytes": (b"a b\x00c\n", "binary file"),
    "not UTF-8": (b"caf\xe9 au lait\n", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_user_corpus_bad_input(tmp_path: Path, case: str) -> None:
    data, message = BAD[case]
    path = tmp_path / "text.txt"
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(CorpusError, match=message) as err:
        TINY.with_corpus(path)
    assert str(path) in str(err.value)  # names the file


def test_user_folder_missing_split(tmp_path: Path) -> None:
    folder = _write_corpus(tmp_path / "c", train=TEXT, valid=TEXT)
    with pytest.raises(CorpusError, match=r"test\.txt: missing file"):
        TINY.with_corpus(folder)
    (folder / "test.txt").write_bytes(b"\x00\x01")
    with pytest.raises(CorpusError, match=r"test\.txt: a binary file"):
        load_corpus(folder)
