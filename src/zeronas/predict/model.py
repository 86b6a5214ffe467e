"""A performance predictor fitted on labelled cells: LightGBM trees on zero-cost scores and cell structure.

Two models, fitted on the same feature rows (:mod:`zeronas.predict.features`):

* a **divergence classifier** (binary log-loss) on every labelled cell: ``p_diverge``;
* a **quality model** on the cells that trained, with one of two objectives:

  - ``regression`` (default): L2 regression on the *normal scores* of the test loss's rank (the rank mapped to
    a standard normal quantile), not on the loss itself: Kendall tau only sees the order, and a few cells with
    huge losses would otherwise pull the fit away from it;
  - ``lambdarank``: LambdaMART on graded relevance (31 grades, finer among the best cells: ``floor(31 (1-u)^2)``
    for the loss-rank fraction ``u``, 0 = best) over random query groups of 20 cells, which weights the top.

  Either can start from a **prior**: a label-free proxy's ranking (by default ``hidden_cov``, the recommended
  method's ranking proxy), given to the trees as their initial score, so that they fit what it misses. With a few
  dozen labels this matters (development split, 30 labels: tau 0.36 without a prior, about 0.44 with it); with
  hundreds it makes no difference.

The predicted *goodness* is standardised by its mean and spread over the training cells and mapped to a
**quality** in (0, 1) by the normal CDF (about the fraction of trained cells predicted worse). The ranking score is
``quality * (1 - p_diverge)``: the expected quality when a diverged cell counts as the worst. The predicted test
loss reads that quality off the training cells' loss quantiles.

The model file is JSON: both boosters as LightGBM's own text format (no pickle), the feature list, the scoring
config and its hash, the package version and a SHA-256 of everything else. :func:`load_predictor` checks all of
them and raises :class:`PredictorError` naming the file and what is wrong. The SHA-256 has no key: it shows that
the file is whole (not cut short, not changed by accident), not who wrote it, since anyone who edits the file can
compute it again. So every field is checked for its type and range, and each booster is parsed and checked in
Python (:mod:`zeronas.predict.booster`) before LightGBM's native parser sees a canonical text rebuilt from it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import stats

from zeronas import __version__
from zeronas.predict.features import feature_names

FORMAT = "zeronas-predictor"
FORMAT_VERSION = 1
OBJECTIVES = ("regression", "lambdarank")
MIN_TRAINED = 5  # fewer cells that trained cannot order anything
QUALITY_GRADES = 31
RANK_GROUP = 20
RANK_REPEATS = 5
LOSS_QUANTILES = 101
MAX_MODEL_BYTES = 256 << 20  # a model file is read whole: a bound, so that /dev/zero or a huge file is refused


class PredictorError(ValueError):
    """A predictor that cannot be fitted, loaded or applied; the message names the file or the field."""


@dataclass(frozen=True)
class TreeParams:
    """LightGBM settings shared by both models. One thread by default: a fit takes about a second on 2,000
    cells, and OpenMP threads that spin on a busy machine are slower (measured: 0.6 s with one, 200 s with two
    on two cores already running workers); results do not depend on the thread count (``deterministic``)."""

    rounds: int = 300
    classifier_rounds: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_data_in_leaf: int = 10
    bagging_fraction: float = 0.8
    feature_fraction: float = 0.8
    threads: int = 1
    cv_folds: int = 5  # the number of trees is chosen by k-fold CV on the labelled cells; 0 or 1: always `rounds`
    cv_step: int = 10

    def leaf_size(self, n_rows: int) -> int:
        """``min_data_in_leaf`` for ``n_rows`` training rows: the setting, but at most a tenth of the rows (at
        least 2), so that a model fitted on a few dozen labels can split at all."""
        return max(2, min(self.min_data_in_leaf, n_rows // 10))

    def lightgbm(self, objective: str, seed: int, n_rows: int) -> dict[str, Any]:
        return {"objective": objective, "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "min_data_in_leaf": self.leaf_size(n_rows), "bagging_fraction": self.bagging_fraction,
                "bagging_freq": 1, "feature_fraction": self.feature_fraction, "seed": seed, "verbose": -1,
                "deterministic": True, "force_col_wise": True, "num_threads": self.threads}


@dataclass(frozen=True)
class Prediction:
    """Per cell: ``score`` (higher is better: ``quality * (1 - p_diverge)``), ``quality`` in (0, 1),
    ``p_diverge`` and the predicted mean ``test_loss`` if it trains (nats/token)."""

    score: np.ndarray
    quality: np.ndarray
    p_diverge: np.ndarray
    test_loss: np.ndarray


@dataclass
class Predictor:
    proxies: list[str]
    structure: bool
    objective: str
    seed: int
    scoring_config: dict[str, Any]
    config_hash: str
    regressor: str | None  # None: the prior alone (cross-validation chose no tree)
    classifier: str | None
    p_diverge_constant: float
    goodness_mean: float
    goodness_std: float
    loss_quantiles: list[float]
    params: dict[str, Any]
    prior: str | None = None
    prior_higher_is_better: bool = True
    prior_values: list[float] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    version: str = __version__
    created: str = ""

    @property
    def features(self) -> list[str]:
        return feature_names(self.proxies, self.structure)

    # -- fitting -----------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, X: np.ndarray, losses: Sequence[float | None], *, proxies: Sequence[str], structure: bool = True,
            objective: str = "regression", seed: int = 0, scoring_config: dict[str, Any] | None = None,
            config_hash: str = "", params: TreeParams | None = None, prior: str | None = None,
            prior_higher_is_better: bool = True, training: dict[str, Any] | None = None) -> "Predictor":
        """Fit on feature rows ``X`` and each cell's mean test loss (None = every run diverged).

        ``prior``: one of ``proxies`` whose label-free ranking the trees start from (their initial score is the
        normal score of the cell's rank by that proxy among the trained cells, a failed score ranking last); the
        trees then fit what the prior misses. With few labels this keeps the predictor near the best label-free
        proxy instead of near a guess."""
        X, diverged, trained, y = _check_fit(X, losses, proxies, structure, objective, prior)
        params = params or TreeParams()
        names = feature_names(proxies, structure)
        prior_values: list[float] = []
        if prior is not None:
            column = X[trained, 2 * list(proxies).index(prior)]
            oriented = column if prior_higher_is_better else -column
            prior_values = sorted(float(v) for v in oriented if np.isfinite(v))
        start = _prior_z(X[trained], list(proxies), prior, prior_higher_is_better, prior_values)
        # goodness target: normal scores of the loss rank, best (lowest loss) highest
        u = (stats.rankdata(y) - 0.5) / len(y)
        rounds, cv_taus = params.rounds, None
        if params.cv_folds > 1 and len(trained) >= 2 * params.cv_folds:
            rounds, cv_taus = _rounds_by_cv(X[trained], u, start, objective, params, seed, prior is not None)
        booster = None
        goodness = start.copy()
        if rounds > 0:
            booster = _fit_quality(X[trained], u, start, objective, params, seed, rounds, names)
            goodness += booster.predict(X[trained])
        spread = float(np.std(goodness))
        classifier = _fit_divergence(X, diverged, names, params, seed)
        p_constant = float(diverged.mean())
        return cls(proxies=list(proxies), structure=structure, objective=objective, seed=seed,
                   scoring_config=dict(scoring_config or {}), config_hash=config_hash,
                   regressor=None if booster is None else booster.model_to_string(), classifier=classifier, p_diverge_constant=p_constant,
                   goodness_mean=float(np.mean(goodness)), goodness_std=spread if spread > 0 else 1.0,
                   loss_quantiles=[float(q) for q in np.quantile(y, np.linspace(0, 1, LOSS_QUANTILES))],
                   params={"trees": params.__dict__.copy(), "quality_grades": QUALITY_GRADES,
                           "rank_group": RANK_GROUP, "rank_repeats": RANK_REPEATS, "rounds": rounds,
                           "cv_kendall_tau": cv_taus},
                   prior=prior, prior_higher_is_better=prior_higher_is_better, prior_values=prior_values,
                   training={"n_cells": len(X), "n_diverged": int(diverged.sum()), **(training or {})},
                   created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))

    # -- prediction --------------------------------------------------------------------------------------------
    @cached_property
    def _boosters(self) -> tuple[Any, Any]:
        """(quality booster or None, classifier or None), parsed from their text once per model: a search predicts
        every round."""
        import lightgbm as lgb

        return (None if self.regressor is None else lgb.Booster(model_str=self.regressor),
                None if self.classifier is None else lgb.Booster(model_str=self.classifier))

    def predict(self, X: np.ndarray) -> Prediction:
        """Predictions for complete feature rows (see :func:`zeronas.predict.features.feature_matrix`)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise PredictorError(f"feature matrix has {X.shape[-1] if X.ndim else 0} columns; this predictor "
                                 f"needs {len(self.features)}")
        if len(X) == 0:
            empty = np.zeros(0)
            return Prediction(empty, empty, empty, empty)
        regressor, classifier = self._boosters
        goodness = _prior_z(X, self.proxies, self.prior, self.prior_higher_is_better, self.prior_values)
        if regressor is not None:
            goodness = goodness + regressor.predict(X)
        quality = stats.norm.cdf((goodness - self.goodness_mean) / self.goodness_std)
        if classifier is not None:
            p = classifier.predict(X)
        else:
            p = np.full(len(X), self.p_diverge_constant)
        grid = np.linspace(0, 1, len(self.loss_quantiles))
        loss = np.interp(1.0 - quality, grid, self.loss_quantiles)
        return Prediction(quality * (1.0 - p), quality, p, loss)

    # -- files -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        body = {"format": FORMAT, "format_version": FORMAT_VERSION, "zeronas_version": self.version,
                "created": self.created, "features": self.features, "proxies": self.proxies,
                "structure": self.structure, "objective": self.objective, "seed": self.seed,
                "scoring_config": self.scoring_config, "config_hash": self.config_hash, "params": self.params,
                "prior": self.prior, "prior_higher_is_better": self.prior_higher_is_better,
                "prior_values": self.prior_values, "training": self.training, "goodness_mean": self.goodness_mean, "goodness_std": self.goodness_std,
                "loss_quantiles": self.loss_quantiles, "p_diverge_constant": self.p_diverge_constant,
                "regressor": self.regressor, "classifier": self.classifier}
        return {**body, "sha256": _digest(body)}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        try:
            p.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        except OSError as exc:
            raise PredictorError(f"{p}: cannot write the model: {exc.strerror or exc}") from None
        return p


def _read_model_json(p: Path) -> dict[str, Any]:
    """The JSON object of a model file: a regular file of bounded size, of this format, version and zeronas, whole
    (its SHA-256 matches)."""
    from zeronas.files import FileArgError, read_text

    try:
        text = read_text(p, what="model file", limit=MAX_MODEL_BYTES)
    except FileArgError as exc:
        missing = str(exc).endswith(": no such file")
        raise PredictorError(f"{p}: no such model file" if missing else str(exc)) from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PredictorError(f"{p}: not a zeronas predictor (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PredictorError(f"{p}: not a zeronas predictor file (no \"format\": \"{FORMAT}\")")
    if data.get("format_version") != FORMAT_VERSION:
        raise PredictorError(f"{p}: predictor format version {data.get('format_version')!r}; this zeronas reads "
                             f"version {FORMAT_VERSION}")
    body = {k: v for k, v in data.items() if k != "sha256"}
    if data.get("sha256") != _digest(body):
        raise PredictorError(f"{p}: the model file was modified or is corrupt (its SHA-256 does not match its "
                             "content); fit it again with `zeronas predict fit`")
    if data.get("zeronas_version") != __version__:
        raise PredictorError(f"{p}: fitted with zeronas {data.get('zeronas_version')}, this is {__version__}; the "
                             "proxies it reads may have changed: fit it again with `zeronas predict fit`")
    return data


def load_predictor(path: str | Path, *, config_hash: str | None = None) -> Predictor:
    """Read and check a model file; with ``config_hash``, also require that it was fitted on that config. The
    hash proves the file whole, not who wrote it: every field is checked before anything uses it, and the
    boosters LightGBM gets are canonical texts rebuilt from checked lines (:mod:`zeronas.predict.booster`)."""
    from zeronas.predict.fields import FieldError, checked_boosters, checked_fields
    from zeronas.proxies.registry import get_proxy

    p = Path(path)
    data = _read_model_json(p)
    try:
        fields = checked_fields(data, OBJECTIVES, LOSS_QUANTILES)
    except FieldError as exc:
        raise PredictorError(f"{p}: a field of the predictor is missing or malformed: {exc}") from None
    model = Predictor(**fields)
    if data.get("features") != model.features:
        raise PredictorError(f"{p}: its feature list does not match its proxies and structure flag")
    for name in model.proxies:
        try:
            get_proxy(name)
        except KeyError:
            raise PredictorError(f"{p}: needs proxy {name!r}, which is not registered here") from None
    if config_hash is not None and model.config_hash != config_hash:
        fitted = model.scoring_config
        corpus = fitted.get("corpus_name") or fitted.get("corpus") if isinstance(fitted, dict) else None
        raise PredictorError(f"{p}: fitted on scores of scoring config {model.config_hash}, but this run scores "
                             f"with config {config_hash}; pass the same --scoring-config, --seed and --corpus "
                             f"({corpus}), or fit again")
    try:
        return Predictor(**checked_boosters(fields, _safe_names(model.features)))
    except FieldError as exc:
        raise PredictorError(f"{p}: a field of the predictor is missing or malformed: {exc}") from None


def _fit_quality(X: np.ndarray, u: np.ndarray, start: np.ndarray, objective: str, params: TreeParams, seed: int,
                 rounds: int, names: Sequence[str]) -> Any:
    """The quality booster on trained rows ``X`` with loss-rank fractions ``u`` (0 = best) and initial scores."""
    import lightgbm as lgb

    if objective == "regression":
        data = lgb.Dataset(X, -stats.norm.ppf(u), feature_name=_safe_names(names), init_score=start,
                           free_raw_data=False)
        return lgb.train(params.lightgbm("regression", seed, len(X)), data, rounds)
    grades = np.floor(QUALITY_GRADES * (1.0 - u) ** 2).astype(int).clip(0, QUALITY_GRADES - 1)
    rng = np.random.default_rng(seed)
    rows, labels, starts, groups = [], [], [], []
    for _ in range(RANK_REPEATS):
        perm = rng.permutation(len(X))
        rows.append(X[perm])
        labels.append(grades[perm])
        starts.append(start[perm])
        groups += [min(RANK_GROUP, len(perm) - i) for i in range(0, len(perm), RANK_GROUP)]
    data = lgb.Dataset(np.vstack(rows), np.concatenate(labels), group=groups, init_score=np.concatenate(starts),
                       feature_name=_safe_names(names), free_raw_data=False)
    ranker = {**params.lightgbm("lambdarank", seed, len(X)), "label_gain": [float(g) for g in range(QUALITY_GRADES)]}
    return lgb.train(ranker, data, rounds)


def _rounds_by_cv(X: np.ndarray, u: np.ndarray, start: np.ndarray, objective: str, params: TreeParams, seed: int,
                  has_prior: bool) -> tuple[int, list[float]]:
    """The number of trees (a multiple of ``cv_step`` up to ``rounds``; 0 = the prior alone, only with a prior)
    with the best mean Kendall tau on held-out folds of the labelled trained cells, and those taus. Labels only:
    nothing outside the fitted sample is looked at."""
    folds = np.random.default_rng(seed).permutation(len(X)) % params.cv_folds
    steps = list(range(0 if has_prior else params.cv_step, params.rounds + 1, params.cv_step))
    taus = np.zeros((params.cv_folds, len(steps)))
    names = [f"f{j}" for j in range(X.shape[1])]
    for k in range(params.cv_folds):
        fit, held = folds != k, folds == k
        # the fold's own rank fractions, so that each fold's target is a proper normal-score transform
        u_fit = (stats.rankdata(u[fit]) - 0.5) / fit.sum()
        booster = _fit_quality(X[fit], u_fit, start[fit], objective, params, seed, params.rounds, names)
        for j, n in enumerate(steps):
            pred = start[held] + (booster.predict(X[held], num_iteration=n) if n > 0 else 0.0)
            tau = stats.kendalltau(pred, -u[held])[0]
            taus[k, j] = tau if np.isfinite(tau) else 0.0
    mean = taus.mean(axis=0)
    best = int(np.argmax(mean))
    return steps[best], [float(t) for t in mean]


def _check_fit(X: np.ndarray, losses: Sequence[float | None], proxies: Sequence[str], structure: bool,
               objective: str, prior: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X, diverged mask, indices of the trained cells, their losses)`` after checking what :meth:`Predictor.fit`
    was given."""
    if objective not in OBJECTIVES:
        raise PredictorError(f"unknown objective {objective!r} (known: {', '.join(OBJECTIVES)})")
    X = np.asarray(X, dtype=float)
    n_features = len(feature_names(proxies, structure))
    if X.ndim != 2 or X.shape[1] != n_features:
        raise PredictorError(f"feature matrix has shape {X.shape}; expected {n_features} columns")
    if len(losses) != len(X):
        raise PredictorError(f"{len(X)} feature rows but {len(losses)} labels")
    diverged = np.array([x is None for x in losses], dtype=bool)
    trained = np.flatnonzero(~diverged)
    if len(trained) < MIN_TRAINED:
        raise PredictorError(f"only {len(trained)} labelled cells trained (of {len(X)}); a predictor needs at "
                             f"least {MIN_TRAINED}")
    y = np.array([losses[i] for i in trained], dtype=float)
    if not np.all(np.isfinite(y)):
        raise PredictorError("a test loss of a trained cell is not finite")
    if prior is not None and prior not in proxies:
        raise PredictorError(f"the prior {prior!r} is not one of the feature proxies")
    return X, diverged, trained, y


def _fit_divergence(X: np.ndarray, diverged: np.ndarray, names: Sequence[str], params: TreeParams,
                    seed: int) -> str | None:
    """The classifier of divergence (a LightGBM model string); None when every cell trained or none did."""
    if not 0 < diverged.sum() < len(diverged):
        return None
    import lightgbm as lgb

    cdata = lgb.Dataset(X, diverged.astype(float), feature_name=_safe_names(names), free_raw_data=False)
    return lgb.train(params.lightgbm("binary", seed, len(X)), cdata, params.classifier_rounds).model_to_string()


def _prior_z(X: np.ndarray, proxies: Sequence[str], prior: str | None, higher_is_better: bool,
             values: Sequence[float]) -> np.ndarray:
    """The prior's starting score of each row: its normal score among ``values`` (the training cells' oriented
    prior scores, sorted), interpolated between them and extended beyond them by at most 1 (a saturating
    exponential), so that the prior keeps its own order even when only a few cells are labelled; a failed prior
    score gets 1.5 below the lowest, below every other cell. Each row's value depends on that row alone. Zeros
    without a prior."""
    if prior is None or not values:
        return np.zeros(len(X))
    column = X[:, 2 * list(proxies).index(prior)]
    oriented = column if higher_is_better else -column
    ref = np.asarray(values, dtype=float)
    z_ref = stats.norm.ppf((np.arange(len(ref)) + 1.0) / (len(ref) + 1.0))
    span = ref[-1] - ref[0]
    slope = (z_ref[-1] - z_ref[0]) / span if span > 0 and len(ref) > 1 else 1.0
    z = np.interp(oriented, ref, z_ref)
    with np.errstate(invalid="ignore", over="ignore"):
        below = z_ref[0] - (1.0 - np.exp(-(ref[0] - oriented) * slope))  # within 1 of the lowest, never past it
        above = z_ref[-1] + (1.0 - np.exp(-(oriented - ref[-1]) * slope))
    z = np.where(oriented < ref[0], below, np.where(oriented > ref[-1], above, z))
    return np.where(np.isfinite(oriented), z, z_ref[0] - 1.5)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _safe_names(names: Sequence[str]) -> list[str]:
    """LightGBM rejects some characters in feature names; the file keeps the real names beside the boosters."""
    return [f"f{i}_" + "".join(ch if ch.isalnum() else "_" for ch in n) for i, n in enumerate(names)]
