"""Word-level language-modelling corpora (AWD-LSTM style) and batching helpers.

Each line of a split becomes its words followed by ``<eos>``; the vocabulary lists word types in order of first
appearance over train, then valid, then test. The bundled Penn Treebank is read from the package itself
(:func:`load_ptb`); a user corpus is a folder with ``train.txt``, ``valid.txt`` and ``test.txt``
(:func:`load_corpus`).
"""

from __future__ import annotations

import functools
import gzip
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

Tensor = torch.Tensor

EOS = "<eos>"
SPLITS: tuple[str, ...] = ("train", "valid", "test")


class CorpusError(ValueError):
    """A corpus that cannot be read or used. The message names the file and the problem."""


class Vocabulary:
    """A bijection between word types and ids ``0..len-1``, ids given in order of first :meth:`add`."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []
        for word in words:
            self.add(word)

    def add(self, word: str) -> int:
        """Add ``word`` if new; return its id."""
        idx = self.word2idx.get(word)
        if idx is None:
            idx = self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return idx

    def id(self, word: str) -> int:
        """The id of ``word`` (KeyError if it is not in the vocabulary)."""
        try:
            return self.word2idx[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self)} types)") from None

    def word(self, idx: int) -> str:
        """The word with id ``idx``."""
        return self.idx2word[idx]

    def encode(self, words: Iterable[str]) -> list[int]:
        return [self.id(w) for w in words]

    def decode(self, ids: Iterable[int] | Tensor) -> list[str]:
        if isinstance(ids, Tensor):
            ids = ids.reshape(-1).tolist()
        return [self.idx2word[int(i)] for i in ids]

    def __len__(self) -> int:
        return len(self.idx2word)

    def __contains__(self, word: object) -> bool:
        return word in self.word2idx

    def __iter__(self) -> Iterator[str]:
        return iter(self.idx2word)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} types)"


@dataclass(frozen=True)
class Corpus:
    """Three splits as 1-D ``torch.long`` tensors of token ids over one shared :class:`Vocabulary`."""

    vocab: Vocabulary
    train: Tensor
    valid: Tensor
    test: Tensor
    name: str = "corpus"
    lines: dict[str, int] = field(default_factory=dict, compare=False)  # lines per split

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def split(self, name: str) -> Tensor:
        """The split called ``name`` (train, valid or test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.split(s).numel():,}" for s in SPLITS)
        return f"Corpus({self.name!r}, vocab={len(self.vocab):,}, {sizes})"


def _tokenize(lines: Iterable[str], vocab: Vocabulary) -> tuple[Tensor, int, int]:
    """Ids of all lines (each line's words + ``<eos>``), the number of lines and of non-``<eos>`` words."""
    ids: list[int] = []
    n_lines = n_words = 0
    add = vocab.add
    for line in lines:
        words = line.split()
        n_lines += 1
        n_words += len(words)
        ids.extend(add(w) for w in words)
        ids.append(add(EOS))
    return torch.tensor(ids, dtype=torch.long), n_lines, n_words


def build_corpus(texts: Sequence[tuple[str, Iterable[str]]], name: str = "corpus") -> Corpus:
    """Build a corpus from ``[(source, lines)]`` for train, valid and test, in that order.

    ``source`` (a file name) is only used in error messages: a split without any word raises :class:`CorpusError`.
    """
    if len(texts) != len(SPLITS):
        raise ValueError(f"expected {len(SPLITS)} splits (train, valid, test), got {len(texts)}")
    vocab = Vocabulary()
    tensors: list[Tensor] = []
    lines: dict[str, int] = {}
    for split, (source, text) in zip(SPLITS, texts):
        ids, n_lines, n_words = _tokenize(text, vocab)
        if n_lines == 0:
            raise CorpusError(f"{source}: the file is empty ({split} split)")
        if n_words == 0:
            raise CorpusError(f"{source}: the file has no tokens, only blank lines ({split} split)")
        tensors.append(ids)
        lines[split] = n_lines
    return Corpus(vocab, tensors[0], tensors[1], tensors[2], name=name, lines=lines)


@functools.lru_cache(maxsize=1)
def load_ptb() -> Corpus:
    """The bundled Penn Treebank (Mikolov's LM version): 10,000 types incl. ``<eos>``.

    Read from the package's own gzipped copies; cached, so every call returns the same object (do not modify it).
    """
    root = resources.files("zeronas.data").joinpath("ptb")
    texts = []
    for split in SPLITS:
        res = root.joinpath(f"ptb.{split}.txt.gz")
        with res.open("rb") as raw:
            text = gzip.decompress(raw.read()).decode("utf-8")
        texts.append((f"zeronas/data/ptb/ptb.{split}.txt.gz", io.StringIO(text)))
    return build_corpus(texts, name="ptb")


def load_corpus(directory: str | Path) -> Corpus:
    """A user corpus: ``directory`` must hold ``train.txt``, ``valid.txt`` and ``test.txt`` (UTF-8, one sentence a
    line). Raises :class:`CorpusError` naming the file that is missing, unreadable, empty or without tokens."""
    folder = Path(directory)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: not a directory (expected a folder with train.txt, valid.txt and test.txt)")
    texts = []
    for split in SPLITS:
        path = folder / f"{split}.txt"
        if not path.is_file():
            raise CorpusError(f"{path}: missing file (a corpus folder needs train.txt, valid.txt and test.txt)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{path}: not UTF-8 text: {exc}") from None
        except OSError as exc:
            raise CorpusError(f"{path}: cannot read: {exc}") from None
        texts.append((str(path), io.StringIO(text)))
    return build_corpus(texts, name=folder.name or str(folder))


def batchify(data: Tensor, batch_size: int) -> Tensor:
    """AWD-LSTM batching: cut a 1-D token stream into ``batch_size`` contiguous columns, dropping the remainder.

    Returns a ``(T, B)`` tensor with ``T = len(data) // batch_size``; column ``b`` is ``data[b*T:(b+1)*T]``.
    """
    if data.dim() != 1:
        raise ValueError(f"batchify expects a 1-D token tensor, got shape {tuple(data.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n_steps = data.size(0) // batch_size
    if n_steps == 0:
        raise ValueError(f"{data.size(0)} tokens are too few for batch_size {batch_size}")
    return data.narrow(0, 0, n_steps * batch_size).view(batch_size, -1).t().contiguous()


def get_batch(source: Tensor, i: int, bptt: int) -> tuple[Tensor, Tensor]:
    """Rows ``i..i+bptt-1`` of a batchified ``(T, B)`` source and the targets one step later, both ``(t, B)``
    with ``t = min(bptt, T - 1 - i)`` (AWD-LSTM; flatten the targets for ``cross_entropy`` if needed)."""
    if bptt < 1:
        raise ValueError(f"bptt must be at least 1, got {bptt}")
    seq_len = min(bptt, source.size(0) - 1 - i)
    if i < 0 or seq_len < 1:
        raise ValueError(f"no batch at row {i}: the source has {source.size(0)} rows")
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len]


def probe_batch(corpus_split: Tensor, batch_size: int, seq_len: int, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded random batch of real text: ``batch_size`` windows of ``seq_len + 1`` consecutive tokens, starting
    at offsets drawn by a ``torch.Generator`` seeded with ``seed``. Returns time-major ``(seq_len, batch_size)``
    long tensors ``(inputs, targets)`` with ``targets[t] == inputs[t + 1]``. The same arguments give the same
    tensors, whatever the global RNG state."""
    if corpus_split.dim() != 1:
        raise ValueError(f"probe_batch expects a 1-D token tensor, got shape {tuple(corpus_split.shape)}")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be at least 1, got {batch_size} and {seq_len}")
    n = corpus_split.size(0)
    if n < seq_len + 1:
        raise ValueError(f"the split has {n} tokens, fewer than seq_len + 1 = {seq_len + 1}")
    gen = torch.Generator().manual_seed(int(seed))
    starts = torch.randint(0, n - seq_len, (batch_size,), generator=gen)
    index = starts.unsqueeze(0) + torch.arange(seq_len + 1).unsqueeze(1)  # (seq_len + 1, B)
    windows = corpus_split[index].long()
    return windows[:-1].contiguous(), windows[1:].contiguous()


__all__: Sequence[str] = ["EOS", "SPLITS", "Corpus", "CorpusError", "Vocabulary", "batchify", "build_corpus",
                          "get_batch", "load_corpus", "load_ptb", "probe_batch"]
