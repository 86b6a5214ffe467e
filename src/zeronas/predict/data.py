"""Labelled cells and their features, from a ground truth and a results store (scoring what the store lacks)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from zeronas.bench.nbnlp import Architecture, Benchmark
from zeronas.metrics import MISSING, ProxyData
from zeronas.predict.features import feature_matrix
from zeronas.predict.model import MIN_TRAINED, Prediction, Predictor, PredictorError
from zeronas.proxies.registry import get_proxy, list_proxies
from zeronas.core.score import Score

# Proxies the default feature set leaves out (name them with --proxies to use them): their cost buys the predictor
# nothing measurable. The LM-loss NTK pair costs more than every other proxy together and is weaker than the logit
# NTK it varies. grasp, the logit NTK pair and the two Zen variants cost about 10x the floor per cell together (of
# 17x for the set with them), and leaving them out moves no held-out figure of the learning curve beyond noise
# (paired over its 10 seeded samples: loss-prediction tau +0.004 at 100 labels, -0.003 on all; the same AUC of
# P(diverge)); docs/predict.md, "Which features".
EXPENSIVE = frozenset({"ntk_cond_loss", "ntk_trace_loss", "grasp", "ntk_cond", "ntk_trace", "zen_real", "zen_state"})
ROW = "predictor"
QUALITY_ROW = "predictor_quality"
TRAINABLE_ROW = "predictor_trainable"


def default_feature_proxies() -> list[str]:
    """Every registered proxy except the :data:`EXPENSIVE` ones."""
    return [s.name for s in list_proxies() if not s.name.startswith("_") and s.name not in EXPENSIVE]


def default_prior(proxies: Sequence[str]) -> str | None:
    """The ranking proxy of the recommended method (``hidden_cov``) when it is among the features, else None."""
    from zeronas.core.spec import parse_spec
    from zeronas.recommended import RECOMMENDED_METHOD

    ranking, _ = parse_spec(RECOMMENDED_METHOD)
    return ranking[0] if len(ranking) == 1 and ranking[0] in proxies else None


def resolve_prior(text: str | None, proxies: Sequence[str]) -> tuple[str | None, bool]:
    """``(prior, higher_is_better)`` from ``--prior`` (None: the default; ``none``: no prior)."""
    name = default_prior(proxies) if text is None else (None if text.strip().lower() == "none" else text.strip())
    if name is None:
        return None, True
    if name not in proxies:
        raise PredictorError(f"--prior {name!r} must be one of the feature proxies ({', '.join(proxies)})")
    return name, get_proxy(name).higher_is_better


def check_proxies(proxies: Sequence[str]) -> list[str]:
    """The names, validated against the registry (KeyError names the unknown one), without repeats."""
    out: list[str] = []
    for p in proxies:
        get_proxy(p)
        if p not in out:
            out.append(p)
    if not out:
        raise PredictorError("a predictor needs at least one proxy as a feature")
    return out


def labelled_sample(bench: Benchmark, labels: int | None, seed: int) -> list[Architecture]:
    """All architectures (``labels`` None) or a seeded sample of ``labels`` of them."""
    if labels is None:
        return list(bench)
    if labels < 1:
        raise PredictorError(f"--labels must be at least 1, got {labels}")
    if labels > len(bench):
        raise PredictorError(f"--labels {labels}: the ground truth has only {len(bench)} architectures")
    return bench.sample(labels, seed)


@dataclass
class LabelledData:
    archs: list[Architecture]
    X: np.ndarray
    losses: list[float | None]


def labelled_data(archs: Sequence[Architecture], scores: Mapping[str, Mapping[str, Score]],
                  proxies: Sequence[str], structure: bool = True) -> LabelledData:
    """Feature rows of labelled cells; every cell must have a stored score for every proxy."""
    X, complete = feature_matrix([a.cell for a in archs], [scores.get(a.canonical_id, {}) for a in archs],
                                 proxies, structure)
    if not complete.all():
        lacking = [a.canonical_id for a, ok in zip(archs, complete) if not ok]
        first = scores.get(lacking[0], {})
        which = [p for p in proxies if p not in first]
        raise PredictorError(f"{len(lacking)} of {len(archs)} labelled cells have no stored score for some feature "
                             f"proxy (e.g. {lacking[0]} lacks {', '.join(which)}); score them first (drop "
                             "--no-score) or choose other --proxies")
    losses = [a.mean_test_loss for a in archs]
    n_trained = sum(x is not None for x in losses)
    if n_trained < MIN_TRAINED:
        raise PredictorError(f"only {n_trained} of the {len(archs)} labelled cells trained; a predictor needs at "
                             f"least {MIN_TRAINED} cells with a finite test loss")
    return LabelledData(list(archs), X, losses)


def predictor_rows(model: Predictor, archs: Sequence[Architecture],
                   scores: Mapping[str, Mapping[str, Score]]) -> dict[str, ProxyData]:
    """Rows for the report: ``predictor`` (the ranking score, ``quality * (1 - p_diverge)``),
    ``predictor_quality`` (the predicted quality alone: the loss prediction) and ``predictor_trainable``
    (``1 - p_diverge``). A cell whose features are incomplete is ``missing`` in each; seconds are the sum of the
    feature proxies'."""
    pred, complete = predict_cells(model, [a.cell for a in archs], [scores.get(a.canonical_id, {}) for a in archs])
    ids = tuple(a.canonical_id for a in archs)
    losses = tuple(a.mean_test_loss for a in archs)
    seconds = tuple(sum(scores[a.canonical_id][p].seconds for p in model.proxies) if c else None
                    for a, c in zip(archs, complete))
    rows = {}
    for name in (ROW, QUALITY_ROW, TRAINABLE_ROW):
        values: list[float | None] = [None] * len(archs)
        statuses = [MISSING] * len(archs)
        if complete.any():
            column = {ROW: pred.score, QUALITY_ROW: pred.quality, TRAINABLE_ROW: 1.0 - pred.p_diverge}[name]
            for pos, i in enumerate(np.flatnonzero(complete)):
                v = float(column[pos])
                values[i], statuses[i] = (v, "ok") if np.isfinite(v) else (None, "nan")
        rows[name] = ProxyData(name, True, ids, tuple(values), losses, tuple(statuses), seconds,
                               members=tuple(model.proxies))
    return rows


def predict_cells(model: Predictor, cells: Sequence[Any], scores: Sequence[Mapping[str, Score]]
                  ) -> tuple[Prediction, np.ndarray]:
    """Predictions for the complete rows and the mask of which cells were complete."""
    X, complete = feature_matrix(cells, scores, model.proxies, model.structure)
    return model.predict(X[complete]), complete


def seeded_split(n: int, n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded sample of ``n_train`` of ``n`` items, and of the rest."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return np.array(sorted(order[:n_train]), dtype=int), np.array(sorted(order[n_train:]), dtype=int)
