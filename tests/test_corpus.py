"""Corpus loading (bundled PTB and user folders) and batching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zeronas.data.corpus import (EOS, Corpus, CorpusError, Vocabulary, batchify, get_batch, load_corpus, load_ptb,
                                 probe_batch)


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
