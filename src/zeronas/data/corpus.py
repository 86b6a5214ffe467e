"""Word-level language-modelling corpora (AWD-LSTM style) and batching helpers.

Each line of a split becomes its words followed by ``<eos>``; the vocabulary lists word types in order of first
appearance over train, then valid, then test. The bundled Penn Treebank (:func:`load_ptb`) and WikiText-2 valid/test
(:func:`load_wikitext2`) are read from the package itself. A user corpus is a folder with ``train.txt``,
``valid.txt`` and ``test.txt`` (:func:`load_corpus`, :func:`load_user_corpus`) or one text file that serves as every
split (:func:`load_user_corpus`); scoring identifies it by :func:`corpus_digest`, a sha256 of its bytes.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

Tensor = torch.Tensor

EOS = "<eos>"
SPLITS: tuple[str, ...] = ("train", "valid", "test")
DIGEST_PREFIX = "sha256:"  # a user corpus in a scoring config: "sha256:" + corpus_digest(path)
WIKITEXT2_VOCAB = 33_278  # types of train + valid + test incl. <eos> (AWD-LSTM / NAS-Bench-NLP)


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
    missing: tuple[str, ...] = ()  # splits not available (empty tensors): asking for one is a CorpusError
    digest: str = ""  # a user corpus: corpus_digest() of its files; "" for a bundled one

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def split(self, name: str) -> Tensor:
        """The split called ``name`` (train, valid or test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        if name in self.missing:
            available = ", ".join(s for s in SPLITS if s not in self.missing)
            raise CorpusError(f"corpus {self.name!r} has no {name} split (available: {available})")
        return getattr(self, name)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={getattr(self, s).numel():,}" for s in SPLITS if s not in self.missing)
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


@functools.lru_cache(maxsize=1)
def load_wikitext2() -> Corpus:
    """The bundled WikiText-2 (Merity et al. 2016), validation and test splits only: the training file is not
    bundled, so ``split("train")`` raises :class:`CorpusError` (``train`` is an empty tensor).

    The vocabulary has the standard 33,278 types of AWD-LSTM / NAS-Bench-NLP, which build it from train + valid +
    test with ``<eos>``. WikiText-2 is closed-vocabulary (every valid and test word also occurs in train), so the
    types here are those of valid then test in order of first appearance, ``<eos>`` included (18,328), followed by
    reserved placeholders ``"<train-only N>"`` (they hold a space, so no text produces them) for the 14,950 words
    found only in the training file. The embedding and decoder thus have a trained model's shape, but a word's id
    differs from a trained model's: irrelevant for scoring from a seeded initialisation. See ``SOURCE.md``.
    """
    root = resources.files("zeronas.data").joinpath("wikitext2")
    vocab = Vocabulary()
    tensors: dict[str, Tensor] = {}
    lines: dict[str, int] = {}
    for split in ("valid", "test"):
        with root.joinpath(f"wiki.{split}.tokens.gz").open("rb") as raw:
            text = gzip.decompress(raw.read()).decode("utf-8")
        tensors[split], lines[split], _ = _tokenize(io.StringIO(text), vocab)
    for i in range(WIKITEXT2_VOCAB - len(vocab)):
        vocab.add(f"<train-only {i}>")
    assert len(vocab) == WIKITEXT2_VOCAB, len(vocab)
    return Corpus(vocab, torch.zeros(0, dtype=torch.long), tensors["valid"], tensors["test"], name="wikitext-2",
                  lines=lines, missing=("train",))


def _split_files(path: Path) -> dict[str, Path]:
    """The file of each split: a folder's ``train.txt``, ``valid.txt`` and ``test.txt``, or one file for all."""
    if path.is_dir():
        files = {split: path / f"{split}.txt" for split in SPLITS}
        for file in files.values():
            if not file.is_file():
                raise CorpusError(f"{file}: missing file (a corpus folder needs train.txt, valid.txt and test.txt)")
        return files
    if path.exists():  # a file (a FIFO or a device is refused by name when read)
        return {split: path for split in SPLITS}
    raise CorpusError(f"{path}: no such file or folder (a corpus is ptb, wikitext-2, a text file, or a folder "
                      "with train.txt, valid.txt and test.txt)")


def _read_bytes(path: Path) -> bytes:
    from zeronas.files import GiB, FileArgError, read_regular

    try:  # a regular file of bounded size: never a FIFO that blocks or /dev/zero
        return read_regular(path, what="corpus file", limit=4 * GiB)
    except FileArgError as exc:
        raise CorpusError(str(exc)) from None


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text without NUL bytes; anything else is taken for a binary file."""
    if b"\0" in data:
        raise CorpusError(f"{path}: a binary file (it holds NUL bytes), not UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text (a binary file?): {exc}") from None


def _digest(data: dict[str, bytes]) -> str:
    """sha256 over the splits' own sha256 digests, so a single file equals a folder of three copies of it."""
    lines = "".join(f"{split} {hashlib.sha256(data[split]).hexdigest()}\n" for split in SPLITS)
    return hashlib.sha256(lines.encode()).hexdigest()


def _read_splits(path: Path) -> tuple[dict[str, Path], dict[str, bytes]]:
    """The file and the bytes of each split (a file that serves several splits is read once)."""
    files = _split_files(path)
    raw = {file: _read_bytes(file) for file in dict.fromkeys(files.values())}
    return files, {split: raw[file] for split, file in files.items()}


def corpus_digest(path: str | Path) -> str:
    """The content identity of a user corpus (64 hex digits): the same text in any folder gives the same digest,
    and any changed byte another. Raises :class:`CorpusError` for a path that is not a corpus."""
    return _digest(_read_splits(Path(path))[1])


def load_user_corpus(path: str | Path, digest: str | None = None) -> Corpus:
    """A user corpus: a folder with ``train.txt``, ``valid.txt`` and ``test.txt``, or one text file that is every
    split (the vocabulary is its types; whichever split a probe asks for, it is drawn from that file). UTF-8, one
    sentence a line.

    ``digest``: the :func:`corpus_digest` the caller expects (e.g. from a scoring config); a file that changed
    since is a :class:`CorpusError`, not a silently different score. Raises :class:`CorpusError` naming the file
    for a missing path or split file, a binary (NUL bytes, not UTF-8) or unreadable file, an empty file or one
    without tokens."""
    p = Path(path)
    files, data = _read_splits(p)
    found = _digest(data)
    if digest is not None and found != digest:
        raise CorpusError(f"{p}: the corpus changed: its text has digest {DIGEST_PREFIX}{found[:16]}..., the "
                          f"scoring config expects {DIGEST_PREFIX}{digest[:16]}... (restore the text, or score "
                          "under the new text's config)")
    decoded = {file: _decode(file, data[split]) for split, file in files.items()}
    for file, text in decoded.items():  # named here: a single file is every split, and no split in particular
        if not text.split():
            raise CorpusError(f"{file}: the file is empty" if not text else f"{file}: the file has no tokens, "
                              "only blank lines")
    texts = [(str(files[s]), io.StringIO(decoded[files[s]])) for s in SPLITS]
    corpus = build_corpus(texts, name=p.resolve().name or str(p))
    return Corpus(corpus.vocab, corpus.train, corpus.valid, corpus.test, name=corpus.name, lines=corpus.lines,
                  digest=found)


def load_corpus(directory: str | Path) -> Corpus:
    """A user corpus folder for training: ``directory`` must hold ``train.txt``, ``valid.txt`` and ``test.txt``
    (UTF-8, one sentence a line). Raises :class:`CorpusError` naming the file that is missing, unreadable, binary,
    empty or without tokens."""
    folder = Path(directory)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: not a directory (expected a folder with train.txt, valid.txt and test.txt)")
    return load_user_corpus(folder)


def load_training_corpus(corpus: str | Path) -> Corpus:
    """The corpus a model trains on, named as every command names a corpus: ``ptb`` (bundled), a folder with
    ``train.txt``, ``valid.txt`` and ``test.txt``, or one text file. One file is cut by lines, in order, into train
    (the first 80%), valid (the next 10%) and test (the last 10%; each at least one line), since a model tested on
    its own training text says nothing. ``wikitext-2`` is bundled without its training file, so it cannot train
    here. Raises :class:`CorpusError` naming the problem."""
    name = str(corpus)
    if name == "ptb":
        return load_ptb()
    if name == "wikitext-2":
        raise CorpusError("wikitext-2: its training split is not bundled (only valid and test are), so it cannot "
                          "train a model: give ptb, a folder with train.txt, valid.txt and test.txt, or a text file")
    path = Path(corpus).expanduser()
    if path.is_dir():
        return load_corpus(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file or folder (a training corpus is ptb, a text file, or a folder with "
                          "train.txt, valid.txt and test.txt)")
    data = _read_bytes(path)
    lines = _decode(path, data).splitlines()
    n_held = max(1, len(lines) // 10)
    n_train = len(lines) - 2 * n_held
    if n_train < 1:
        raise CorpusError(f"{path}: {len(lines)} line(s); one file is cut by lines into train, valid and test "
                          "(80/10/10), so it needs at least 3")
    cuts = {"train": (0, n_train), "valid": (n_train, n_train + n_held), "test": (n_train + n_held, len(lines))}
    texts = [(f"{path} (lines {a + 1}-{b}, the {split} part)", lines[a:b]) for split, (a, b) in cuts.items()]
    built = build_corpus(texts, name=path.resolve().name or str(path))
    return Corpus(built.vocab, built.train, built.valid, built.test, name=built.name, lines=built.lines,
                  digest=hashlib.sha256(data).hexdigest())


def load_scoring_corpus(corpus: str, path: str = "") -> Corpus:
    """The corpus a scoring config names: ``ptb``, ``wikitext-2`` or ``sha256:<digest>`` of a user corpus, which
    is loaded from ``path`` and checked against the digest."""
    if corpus == "ptb":
        return load_ptb()
    if corpus == "wikitext-2":
        return load_wikitext2()
    if corpus.startswith(DIGEST_PREFIX):
        if not path:
            raise CorpusError(f"the scoring config names the user corpus {corpus[:len(DIGEST_PREFIX) + 16]}... but "
                              "not where it is (corpus_path): pass the corpus again, e.g. --corpus PATH")
        return load_user_corpus(path, digest=corpus[len(DIGEST_PREFIX):])
    raise CorpusError(f"unknown corpus {corpus!r} (expected ptb, wikitext-2 or {DIGEST_PREFIX}<digest>)")


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


__all__: Sequence[str] = ["DIGEST_PREFIX", "EOS", "SPLITS", "WIKITEXT2_VOCAB", "Corpus", "CorpusError",
                          "Vocabulary", "batchify", "build_corpus", "corpus_digest", "get_batch", "load_corpus",
                          "load_ptb", "load_scoring_corpus", "load_user_corpus", "load_wikitext2", "probe_batch"]
