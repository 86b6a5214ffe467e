"""The learning curve of the predictor: how well it ranks cells it was not fitted on, against the labels it had.

For each number of labelled cells ``n`` and each repeat ``r``: fit on a seeded sample of ``n`` cells (seed
``seed * 1000 + r``) and measure on **every other cell**. ``all`` is 5-fold cross-validation over the whole set:
each fold is fitted on the other four (so on 80 % of the labels) and measured on itself; the point's repeats are
its folds. Measured per held-out set, then averaged over repeats (and the spread of tau reported):

* the metrics of :mod:`zeronas.metrics` for the ranking score (tau over trained cells, tau within the best 10 %,
  top-1 pick, top-10 divergences, divergence AUC of the score);
* ``auc_p_diverge``: the divergence ROC-AUC of the predicted probability itself;
* ``kendall_tau_quality`` and ``tau_top10_quality``: the same taus of the predicted quality alone (the loss
  prediction, before the divergence factor ``1 - p_diverge`` of the ranking score);
* ``top1_percentile``: the share of the held-out trained cells that are better than the top-1 pick (1.0 when the
  pick diverged): 0.005 or less is "within the best 0.5 % of the pool".

Label-free baselines (a proxy or spec, no fitting) are measured on the same held-out sets, so every row of the
table compares like with like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from zeronas.metrics import ProxyData, collect, proxy_metrics
from zeronas.predict.data import LabelledData, seeded_split
from zeronas.predict.model import MIN_TRAINED, Predictor, TreeParams
from zeronas.core.score import Score

FOLDS = 5
ALL = "all"
FIGURES = ("kendall_tau", "tau_top10", "divergence_auc", "auc_p_diverge", "top1_percentile", "top10_diverged",
           "kendall_tau_quality", "tau_top10_quality")


def parse_labels(text: str) -> list[int | str]:
    """``10,30,100,all`` -> ``[10, 30, 100, "all"]`` (a clear ValueError for anything else)."""
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part == ALL:
            out.append(ALL)
            continue
        try:
            n = int(part)
        except ValueError:
            raise ValueError(f"--labels: {part!r} is not a number of cells or 'all'") from None
        if n < 1:
            raise ValueError(f"--labels: {n} is not a positive number of cells")
        out.append(n)
    if not out:
        raise ValueError("--labels: no number of cells given")
    return out


@dataclass
class CurvePoint:
    labels: int | str
    n_train: float
    repeats: list[dict[str, Any]] = field(default_factory=list)
    skipped: str = ""

    def mean(self, key: str) -> float | None:
        vals = [r[key] for r in self.repeats if r.get(key) is not None and math.isfinite(r[key])]
        return float(np.mean(vals)) if vals else None

    def to_dict(self) -> dict[str, Any]:
        taus = [r["kendall_tau"] for r in self.repeats if r.get("kendall_tau") is not None]
        return {"labels": self.labels, "n_train": self.n_train, "n_repeats": len(self.repeats),
                "skipped": self.skipped or None,
                **{k: self.mean(k) for k in FIGURES},
                "top1_ppl_median": _median_ppl([r["top1_ppl"] for r in self.repeats]),
                "top1_diverged": sum(bool(r["top1_diverged"]) for r in self.repeats),
                "kendall_tau_sd": float(np.std(taus)) if len(taus) > 1 else None,
                "repeats": self.repeats}


def held_out_figures(score: np.ndarray, p_diverge: np.ndarray | None, losses: Sequence[float | None],
                     quality: np.ndarray | None = None) -> dict[str, Any]:
    """The figures of one held-out set: ``score`` higher is better; ``losses`` None = diverged; ``quality``: the
    predicted quality alone (the loss prediction), whose tau is reported as ``kendall_tau_quality``."""
    out = _figures(_data("predictor", score, losses), p_diverge)
    if quality is not None:
        q = proxy_metrics(_data("quality", quality, losses), n_boot=0)
        out.update(kendall_tau_quality=q.kendall_tau, tau_top10_quality=q.tau_top10)
    return out


def _data(name: str, values: np.ndarray, losses: Sequence[float | None]) -> ProxyData:
    finite = [float(v) if math.isfinite(v) else None for v in values]  # a non-finite prediction is a failure
    return ProxyData.from_values(name, finite, list(losses), higher_is_better=True)


def _figures(data: ProxyData, p_diverge: np.ndarray | None) -> dict[str, Any]:
    m = proxy_metrics(data, n_boot=0)
    losses = data.losses
    finite = np.sort([x for x in losses if x is not None])
    pick = m.top1_ppl
    if pick is None or not math.isfinite(pick) or len(finite) == 0:
        pct = 1.0
    else:
        pct = float(np.searchsorted(finite, math.log(pick), side="left") / len(finite))
    auc_p = None
    if p_diverge is not None:
        auc_p = proxy_metrics(ProxyData.from_values("p", [float(1 - p) for p in p_diverge], list(losses),
                                                    higher_is_better=True), n_boot=0).divergence_auc
    return {"kendall_tau": m.kendall_tau, "tau_top10": m.tau_top10, "divergence_auc": m.divergence_auc,
            "auc_p_diverge": auc_p, "top1_ppl": pick if pick is not None and math.isfinite(pick) else None,
            "top1_diverged": pick is not None and math.isinf(pick), "top1_percentile": pct,
            "top10_diverged": m.top10_diverged, "n_test": len(losses), "kendall_tau_quality": None,
            "tau_top10_quality": None}


def _splits(n: int, labels: int | str, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if labels == ALL:
        order = np.random.default_rng(seed).permutation(n)
        fold = np.empty(n, dtype=int)
        fold[order] = np.arange(n) % FOLDS
        return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(FOLDS)]
    return [seeded_split(n, int(labels), seed * 1000 + r) for r in range(repeats)]


def learning_curve(data: LabelledData, proxies: Sequence[str], *, labels: Sequence[int | str], repeats: int = 5,
                   seed: int = 0, objective: str = "regression", structure: bool = True,
                   params: TreeParams | None = None, prior: str | None = None, prior_higher_is_better: bool = True,
                   progress: Callable[[int, int], None] | None = None) -> list[CurvePoint]:
    """One :class:`CurvePoint` per entry of ``labels`` (see the module docstring)."""
    n = len(data.archs)
    plan = [(lab, _splits(n, lab, repeats, seed)) for lab in labels]
    total = sum(len(s) for _, s in plan)
    done = 0
    points = []
    for lab, splits in plan:
        if lab != ALL and int(lab) >= n:
            points.append(CurvePoint(lab, float(lab), skipped=f"needs more than {lab} cells to hold some out"))
            done += len(splits)
            continue
        point = CurvePoint(lab, float(np.mean([len(tr) for tr, _ in splits])))
        for r, (train, test) in enumerate(splits):
            train_losses = [data.losses[i] for i in train]
            if sum(x is not None for x in train_losses) < MIN_TRAINED:
                point.skipped = f"some samples have fewer than {MIN_TRAINED} trained cells"
            else:
                model = Predictor.fit(data.X[train], train_losses, proxies=proxies, structure=structure,
                                      objective=objective, seed=seed * 1000 + r, params=params, prior=prior,
                                      prior_higher_is_better=prior_higher_is_better)
                pred = model.predict(data.X[test])
                point.repeats.append({"repeat": r, "n_train": len(train),
                                      **held_out_figures(pred.score, pred.p_diverge,
                                                         [data.losses[i] for i in test], pred.quality)})
            done += 1
            if progress:
                progress(done, total)
        points.append(point)
    return points


def baseline_figures(spec: str, data: LabelledData, scores: Mapping[str, Mapping[str, Score]], *,
                     labels: Sequence[int | str], repeats: int = 5, seed: int = 0) -> list[dict[str, Any]]:
    """A label-free spec measured on the same held-out sets as :func:`learning_curve` (one entry per label)."""
    n = len(data.archs)
    out = []
    for lab in labels:
        if lab != ALL and int(lab) >= n:
            out.append({"labels": lab, **{k: None for k in FIGURES}, "top1_ppl_median": None, "top1_diverged": 0})
            continue
        rows = []
        for _, test in _splits(n, lab, repeats, seed):
            targets = {data.archs[i].canonical_id: data.losses[i] for i in test}
            held = {a: scores[a] for a in targets if a in scores}
            rows.append(_figures(collect(spec, held, targets), None))
        out.append({"labels": lab, **{k: _mean([r[k] for r in rows]) for k in FIGURES}, "top1_ppl_median": _median_ppl([r["top1_ppl"] for r in rows]),
                    "top1_diverged": sum(bool(r["top1_diverged"]) for r in rows)})
    return out


def curve_methods(data: LabelledData, proxies: Sequence[str], scores: Mapping[str, Mapping[str, Score]], *,
                  labels: Sequence[int | str], objectives: Sequence[str], baselines: Sequence[str] = (),
                  repeats: int = 5, seed: int = 0, structure: bool = True, prior: str | None = None,
                  prior_higher_is_better: bool = True, progress: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The rows of the curve table: ``predictor (OBJECTIVE)`` for each objective (:func:`learning_curve`, with a
    progress bar on stderr when ``progress``), then each label-free spec of ``baselines`` on the same held-out
    cells (:func:`baseline_figures`, its points labelled with the predictor's training sizes)."""
    from zeronas.progress import ProgressBar

    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {repeats}")
    methods: dict[str, list[dict[str, Any]]] = {}
    for obj in objectives:
        with ProgressBar(f"fitting {obj}", enabled=progress, transient=True) as bar:
            points = learning_curve(data, proxies, labels=labels, repeats=repeats, seed=seed, objective=obj,
                                    structure=structure, prior=prior, prior_higher_is_better=prior_higher_is_better,
                                    progress=lambda d, t, bar=bar: bar.update(completed=d, total=t))
        methods[f"predictor ({obj})"] = [p.to_dict() for p in points]
    for spec in baselines:
        pts = baseline_figures(spec, data, scores, labels=labels, repeats=repeats, seed=seed)
        for p, lab in zip(pts, labels):
            p["n_train"] = methods[next(iter(methods))][list(labels).index(lab)]["n_train"]
        methods[spec] = pts
    return methods


def _mean(values: Sequence[Any]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _median_ppl(picks: Sequence[float | None]) -> float | None:
    """Median top-1 perplexity, a diverged pick (None) counting as infinitely bad; None if that median is one."""
    if not picks:
        return None
    med = float(np.median([math.inf if p is None else p for p in picks]))
    return med if math.isfinite(med) else None
