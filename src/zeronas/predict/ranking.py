"""A fitted predictor as a search's ranking: each candidate's fitness is its predicted score."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zeronas.predict.data import predict_cells
from zeronas.predict.model import Predictor, load_predictor


class PredictorRanking:
    """Ranks search candidates by ``Predictor.predict(...).score``; a candidate whose features are incomplete
    (a feature proxy without a stored score) gets ``-inf`` and ranks last, as a failed score does. A failed proxy
    score is a feature (its flag), not a failure of the ranking."""

    def __init__(self, model: Predictor, source: str = "predictor") -> None:
        self.model = model
        self.source = source

    @classmethod
    def load(cls, path: str | Path, config_hash: str) -> "PredictorRanking":
        return cls(load_predictor(path, config_hash=config_hash), str(path))

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self.model.proxies)

    def fitness(self, candidates: Sequence[Any]) -> np.ndarray:
        out = np.full(len(candidates), -math.inf)
        if not candidates:
            return out
        pred, complete = predict_cells(self.model, [c.cell for c in candidates], [c.scores for c in candidates])
        out[complete] = np.where(np.isfinite(pred.score), pred.score, -math.inf)
        return out

    def explain(self, candidates: Sequence[Any]) -> list[dict[str, Any] | None]:
        """Per candidate, what the predictor says: ``test_ppl`` (predicted, if it trains; None when too large for
        a float), ``p_diverge`` and the ranking ``score``; None for a candidate whose features are incomplete."""
        out: list[dict[str, Any] | None] = [None] * len(candidates)
        if not candidates:
            return out
        pred, complete = predict_cells(self.model, [c.cell for c in candidates], [c.scores for c in candidates])
        for row, i in enumerate(np.flatnonzero(complete)):
            loss = float(pred.test_loss[row])
            ppl = math.exp(loss) if loss < 700 else math.inf
            out[i] = {"test_ppl": ppl if math.isfinite(ppl) else None, "test_loss": loss,
                      "p_diverge": float(pred.p_diverge[row]), "score": float(pred.score[row])}
        return out

    def __str__(self) -> str:
        return f"predictor {self.source}"
