"""The scoring configuration: everything that determines a score besides the cell. Stored beside every score."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

POSITIVE_INTS = ("batch_size", "seq_len", "emb_size", "hidden_size", "n_layers", "ntk_batch", "zen_repeats")
INITS = ("nasbench-nlp",)
CORPORA = ("ptb", "wikitext-2")  # bundled; a user corpus is "sha256:<64 hex>" (see ScoringConfig.with_corpus)
PROBE_SPLITS = ("train", "valid", "test")
NO_TRAIN_SPLIT = ("wikitext-2",)  # bundled without its training file: probes default to valid
_USER_CORPUS = re.compile(r"sha256:[0-9a-f]{64}")


class ConfigError(ValueError):
    """A scoring config that cannot be used; the message names the field. Raised before anything is scored, so
    a bad config never becomes a stored score."""


@dataclass(frozen=True)
class ScoringConfig:
    """Defaults: the NAS-Bench-NLP model sizes (emb 400, 3 layers 600/600/400, tied), no dropout, and a probe
    batch of real PTB training tokens. ``init`` names the initialisation (see :mod:`zeronas.models.lm`).

    ``corpus`` is ``ptb``, ``wikitext-2`` or, for a user's own text, ``sha256:<digest>`` of its bytes (see
    :meth:`with_corpus`): a score is tied to the text, not to where it lies. ``corpus_name`` (a display name) and
    ``corpus_path`` (where this machine finds the text; never stored, only handed to workers) are left out of
    :meth:`config_hash`, so the same text in two folders scores under one config. ``probe_split`` left empty
    becomes the corpus's default: ``valid`` for wikitext-2 (its training file is not bundled), else ``train``."""

    batch_size: int = 10
    seq_len: int = 35
    emb_size: int = 400
    hidden_size: int = 600
    n_layers: int = 3
    seed: int = 0  # weights, probe batch and every random draw of a proxy
    init: str = "nasbench-nlp"  # cells U(-1/sqrt(H), 1/sqrt(H)); embedding U(-0.1, 0.1); decoder bias 0
    corpus: str = "ptb"
    probe_split: str = ""  # "": the corpus's default (see the class docstring); always set after __init__
    ntk_batch: int = 8  # sequences in the empirical NTK (per-sample gradients)
    zen_alpha: float = 0.01
    zen_repeats: int = 2
    device: str = "cpu"
    corpus_name: str = ""  # a user corpus's display name (its folder or file name); not hashed
    corpus_path: str = ""  # where this machine finds a user corpus; not hashed, not stored

    def __post_init__(self) -> None:
        if self.probe_split == "":
            default = "valid" if self.corpus in NO_TRAIN_SPLIT else "train"
            object.__setattr__(self, "probe_split", default)

    def to_dict(self, *, with_path: bool = False) -> dict[str, Any]:
        """The fields, as stored and reported: ``corpus_name`` only when set, ``corpus_path`` only with
        ``with_path`` (for worker processes, which must load the text), so no machine path is ever stored."""
        data = asdict(self)
        if not self.corpus_name:
            del data["corpus_name"]
        if not (with_path and self.corpus_path):
            del data["corpus_path"]
        return data

    def config_hash(self) -> str:
        """Stable across runs and machines; the device, the corpus's name and its path are left out (a score
        should not depend on them). Fields added later are hashed only when set, so older hashes stay valid."""
        data = {k: v for k, v in self.to_dict().items() if k not in ("device", "corpus_name")}
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def with_(self, **changes: Any) -> "ScoringConfig":
        return replace(self, **changes)

    def with_corpus(self, corpus: str | Path, probe_split: str | None = None) -> "ScoringConfig":
        """This config on another corpus: ``ptb``, ``wikitext-2``, or the path of a user's folder (``train.txt``,
        ``valid.txt``, ``test.txt``) or text file. A user corpus is read here, so a missing, binary or empty file
        is a :class:`~zeronas.data.corpus.CorpusError` now, and named by its digest. ``probe_split`` None: the
        corpus's default."""
        from zeronas.data.corpus import CorpusError, load_user_corpus

        if not str(corpus).strip():
            raise CorpusError("no corpus named (give ptb, wikitext-2, or a file or folder)")
        split = probe_split or ""
        if str(corpus) in CORPORA:
            return replace(self, corpus=str(corpus), corpus_name="", corpus_path="", probe_split=split)
        loaded = load_user_corpus(Path(corpus).expanduser())  # errors name the path as the user gave it
        return replace(self, corpus=f"sha256:{loaded.digest}", corpus_name=loaded.name,
                       corpus_path=str(Path(corpus).expanduser().resolve()), probe_split=split)

    def validate(self) -> "ScoringConfig":
        """Check every field's type and range (not the device's availability: see
        :func:`zeronas.proxies.device.check_device`); return self, or raise :class:`ConfigError` naming the
        field."""
        for name in POSITIVE_INTS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"scoring config field {name!r} must be a positive integer, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"scoring config field 'seed' must be an integer from 0 to 2**32-1, got {self.seed!r}")
        alpha = self.zen_alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
            raise ConfigError(f"scoring config field 'zen_alpha' must be a positive number, got {alpha!r}")
        for name, allowed in (("init", INITS), ("probe_split", PROBE_SPLITS)):
            v = getattr(self, name)
            if v not in allowed:
                raise ConfigError(f"scoring config field {name!r} must be one of {', '.join(allowed)}, got {v!r}")
        user = isinstance(self.corpus, str) and _USER_CORPUS.fullmatch(self.corpus) is not None
        if self.corpus not in CORPORA and not user:
            raise ConfigError(f"scoring config field 'corpus' must be ptb, wikitext-2 or sha256:<64 hex digits> "
                              f"of a user corpus (--corpus PATH), got {self.corpus!r}")
        if self.corpus in NO_TRAIN_SPLIT and self.probe_split == "train":
            raise ConfigError(f"scoring config field 'probe_split' cannot be train with corpus {self.corpus}: its "
                              "training file is not bundled (use valid or test)")
        for name in ("corpus_name", "corpus_path"):
            v = getattr(self, name)
            if not isinstance(v, str):
                raise ConfigError(f"scoring config field {name!r} must be a string, got {v!r}")
            if v and not user:
                raise ConfigError(f"scoring config field {name!r} is only for a user corpus (sha256:...), not "
                                  f"{self.corpus!r}")
        if not isinstance(self.device, str) or not self.device.strip():
            raise ConfigError(f"scoring config field 'device' must name a device (cpu, cuda, cuda:1), got "
                              f"{self.device!r}")
        return self

    @classmethod
    def from_dict(cls, data: Any, validate: bool = True) -> "ScoringConfig":
        """A config from a JSON object; unknown fields and (with ``validate``) bad values are a
        :class:`ConfigError`. A store reads its configs back with ``validate=False``: what it holds is history."""
        if not isinstance(data, dict):
            raise ConfigError(f"a scoring config is a JSON object of fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown scoring config field(s): {', '.join(map(str, unknown))}")
        config = cls(**data)
        return config.validate() if validate else config


# A small configuration for tests and quick looks: same structure, tiny sizes.
TINY = ScoringConfig(batch_size=4, seq_len=8, emb_size=16, hidden_size=24, ntk_batch=4, zen_repeats=2)
