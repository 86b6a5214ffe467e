"""The fields of a model file, each checked for its type and range before any of it is used: a model file is
input (its SHA-256 says the file is whole, not who wrote it), so a wrong field is a one-line error naming it,
never a traceback, a NaN prediction or a crash of LightGBM's native code (see :mod:`zeronas.predict.booster`)."""

from __future__ import annotations

import math
from typing import Any

from zeronas.predict.booster import BoosterTextError, canonical_booster


class FieldError(ValueError):
    """A field that is missing or malformed; the message names it."""


def _get(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise FieldError(f"{key}: missing")
    return data[key]


def _number(data: dict[str, Any], key: str, low: float = -math.inf, high: float = math.inf,
            positive: bool = False) -> float:
    v = _get(data, key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high \
            or (positive and v <= 0):
        raise FieldError(f"{key}: {v!r} is not a finite number{' > 0' if positive else ''} in [{low}, {high}]")
    return float(v)


def _numbers(data: dict[str, Any], key: str, min_len: int = 0) -> list[float]:
    v = _get(data, key)
    if not isinstance(v, list) or len(v) < min_len or any(
            isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) for x in v):
        raise FieldError(f"{key}: not a list of at least {min_len} finite numbers")
    if any(b < a for a, b in zip(v, v[1:])):
        raise FieldError(f"{key}: not in increasing order")
    return [float(x) for x in v]


def _typed(data: dict[str, Any], key: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
    v = _get(data, key)
    if (v is None and optional) or (isinstance(v, kind) and not (kind is int and isinstance(v, bool))):
        return v
    name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    raise FieldError(f"{key}: a {type(v).__name__}, expected {name}{' or null' if optional else ''}")


def checked_fields(data: dict[str, Any], objectives: tuple[str, ...], n_quantiles: int) -> dict[str, Any]:
    """The keyword arguments of :class:`~zeronas.predict.model.Predictor` from a model file's JSON, each checked
    (the boosters rebuilt as canonical text); :class:`FieldError` naming the first bad field."""
    proxies = _typed(data, "proxies", list)
    if not proxies or not all(isinstance(n, str) and n for n in proxies) or len(set(proxies)) != len(proxies):
        raise FieldError("proxies: not a list of distinct proxy names")
    objective = _typed(data, "objective", str)
    if objective not in objectives:
        raise FieldError(f"objective: {objective[:40]!r} (known: {', '.join(objectives)})")
    seed = _typed(data, "seed", int)
    if not 0 <= seed < 2**32:
        raise FieldError(f"seed: {seed} is not in 0..2**32-1")
    prior = _typed(data, "prior", str, optional=True)
    if prior is not None and prior not in proxies:
        raise FieldError(f"prior: {prior[:40]!r} is not one of its proxies")
    regressor = _typed(data, "regressor", str, optional=True)
    if regressor is None and prior is None:
        raise FieldError("regressor: null without a prior, so the model predicts nothing")
    quantiles = _numbers(data, "loss_quantiles", 2)
    if len(quantiles) != n_quantiles:
        raise FieldError(f"loss_quantiles: {len(quantiles)} values, expected {n_quantiles}")
    training = _typed(data, "training", dict)
    ids = training.get("canonical_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise FieldError("training.canonical_ids: not a list of ids")
    return dict(proxies=list(proxies), structure=_typed(data, "structure", bool), objective=objective, seed=seed,
                scoring_config=_typed(data, "scoring_config", dict), config_hash=_typed(data, "config_hash", str),
                regressor=regressor, classifier=_typed(data, "classifier", str, optional=True),
                p_diverge_constant=_number(data, "p_diverge_constant", 0.0, 1.0),
                goodness_mean=_number(data, "goodness_mean"), goodness_std=_number(data, "goodness_std",
                                                                                    positive=True),
                loss_quantiles=quantiles, params=_typed(data, "params", dict), prior=prior,
                prior_higher_is_better=_typed(data, "prior_higher_is_better", bool),
                prior_values=_numbers(data, "prior_values"), training=training,
                version=_typed(data, "zeronas_version", str), created=str(data.get("created", "")))


def checked_boosters(fields: dict[str, Any], feature_names: list[str]) -> dict[str, Any]:
    """``fields`` with both boosters replaced by their checked canonical text (:func:`canonical_booster`)."""
    out = dict(fields)
    for key, objective in (("regressor", fields["objective"]), ("classifier", "binary")):
        if fields[key] is not None:
            try:
                out[key] = canonical_booster(fields[key], feature_names, objective)
            except BoosterTextError as exc:
                raise FieldError(f"{key}: not a booster zeronas fitted: {exc}") from None
    return out


__all__ = ["FieldError", "checked_boosters", "checked_fields"]
