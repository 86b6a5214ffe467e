"""The scoring configuration: everything that determines a score besides the cell. Stored beside every score."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

POSITIVE_INTS = ("batch_size", "seq_len", "emb_size", "hidden_size", "n_layers", "ntk_batch", "zen_repeats")
INITS = ("nasbench-nlp",)
CORPORA = ("ptb",)
PROBE_SPLITS = ("train", "valid", "test")


class ConfigError(ValueError):
    """A scoring config that cannot be used; the message names the field. Raised before anything is scored, so
    a bad config never becomes a stored score."""


@dataclass(frozen=True)
class ScoringConfig:
    """Defaults: the NAS-Bench-NLP model sizes (emb 400, 3 layers 600/600/400, tied), no dropout, and a probe
    batch of real PTB training tokens. ``init`` names the initialisation (see :mod:`zeronas.models.lm`)."""

    batch_size: int = 10
    seq_len: int = 35
    emb_size: int = 400
    hidden_size: int = 600
    n_layers: int = 3
    seed: int = 0  # weights, probe batch and every random draw of a proxy
    init: str = "nasbench-nlp"  # cells U(-1/sqrt(H), 1/sqrt(H)); embedding U(-0.1, 0.1); decoder bias 0
    corpus: str = "ptb"
    probe_split: str = "train"
    ntk_batch: int = 8  # sequences in the empirical NTK (per-sample gradients)
    zen_alpha: float = 0.01
    zen_repeats: int = 2
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        """Stable across runs and machines; the device is left out (a score should not depend on it)."""
        data = {k: v for k, v in self.to_dict().items() if k != "device"}
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def with_(self, **changes: Any) -> "ScoringConfig":
        return replace(self, **changes)

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
        for name, allowed in (("init", INITS), ("corpus", CORPORA), ("probe_split", PROBE_SPLITS)):
            v = getattr(self, name)
            if v not in allowed:
                raise ConfigError(f"scoring config field {name!r} must be one of {', '.join(allowed)}, got {v!r}")
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
