"""The scoring configuration: everything that determines a score besides the cell. Stored beside every score."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScoringConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown scoring config field(s): {', '.join(unknown)}")
        return cls(**data)


# A small configuration for tests and quick looks: same structure, tiny sizes.
TINY = ScoringConfig(batch_size=4, seq_len=8, emb_size=16, hidden_size=24, ntk_batch=4, zen_repeats=2)
