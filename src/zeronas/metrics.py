"""How well a proxy ranks cells: architecture-level metrics against the benchmark's true test loss.

Inputs, per architecture: the proxy's value (``None`` when its score is not ok) and the target, the mean final test
loss over the runs that did not diverge (``None`` when every run diverged). Every metric is **oriented** by the
proxy's registered direction (``higher_is_better``), never by the sign of the result: the oriented score is
``s = value`` for higher-is-better proxies and ``s = -value`` otherwise, and the true quality is ``-loss``. So a
positive correlation always means "the proxy ranks better cells higher" and a proxy that ranks cells backwards
gets a negative one.

Cell sets (a failed score is excluded from everything and counted in ``n_failed``; ``n_failed_diverged`` counts
the failed cells that diverged in training, since a score that overflows at initialisation often foretells it):

* ``S`` - the *scored* cells: the score is ok (diverged cells included). The proxy's picks come from ``S``.
* ``C`` - the *correlation* cells: ``S`` without the diverged cells (``n = |C|``).

Metrics:

* ``kendall_tau`` (tau-b) and ``spearman`` between ``s`` and ``-loss`` over ``C`` (:mod:`scipy.stats`).
* ``tau_top10``: Kendall tau-b over the best ``ceil(top_fraction * |C|)`` cells of ``C`` by true loss
  (``top_fraction`` defaults to 10 %; the key keeps its name). Can the proxy order the cells that matter?
* ``precision_at_k``: with ``k = max(1, ceil(top_fraction * |S|))``, the fraction of the proxy's top-k cells of
  ``S`` that are among the k cells of ``S`` with the lowest true loss (diverged cells are never in the true
  top-k, so picking one costs precision; None when every scored cell diverged).
* ``top1_ppl``: the true test perplexity ``exp(loss)`` of the proxy's best cell in ``S``; ``inf`` when that cell
  diverged (a search that trusts the proxy would have picked a failure). ``top1_arch`` names it.
* ``top10_mean_ppl``: the mean true perplexity of the proxy's ``top_n`` (10) best cells in ``S`` (fewer if ``S`` is
  smaller); ``inf`` if any of them diverged, and ``top10_diverged`` counts those.
* ``divergence_auc``: ROC-AUC of ``s`` for telling the cells that trained (positives) from the diverged ones in
  ``S``: the probability that a random non-diverged cell has a better score than a random diverged one, ties
  counting one half. 1.0 = a better score always means "did not diverge"; 0.5 = no information.
* ``*_ci``: percentile bootstrap intervals (``confidence``, default 95 %, ``n_boot`` resamples, seeded) over the
  cell set each metric is defined on (``C`` for tau and rho, the top set for ``tau_top10``, ``S`` for the AUC).
* ``seconds_per_arch``: the mean of ``Score.seconds`` over every cell that has a score, ok or failed.

Ties in the proxy's ranking (e.g. cells with equal parameter counts) are broken for the picks and for precision@k by
a seeded random permutation, so the order of the input (which may be sorted by loss) cannot leak into a pick.

Combinations are training-free rank aggregation, as TE-NAS combines its indicators: ``zen+ntk_cond+hidden_cov``
ranks the cells that have an ok score for *every* member by each member in its own direction (average ranks,
larger = better), and sums the ranks; the sum is higher-is-better. A cell missing any member's score is failed for
the combination; its ``seconds_per_arch`` is the sum of the members'.

Gates: ``hidden_cov!state_escape`` ranks every cell that passes the gate ``state_escape`` above every cell that does
not, and orders each group by ``hidden_cov`` (value = the ranking score's rank + the number of ranked cells for a
cell that passes; higher is better). A cell passes when its gate score is ok and on the good side of the gate's
registered threshold (``gate=`` in the registry; without one, an ok score passes). A gate that failed (NaN, inf...)
does not pass but the cell stays ranked; a cell with no gate score at all is ``missing``.

Undefined values (fewer than two cells, a constant proxy, no diverged cells for the AUC) are ``None``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from zeronas.core.score import Score
from zeronas.core.spec import COMBINE, GATE, SpecError, parse_spec
from zeronas.core.verdict import gate_passes  # the one rule of gates, here for the metrics' callers

MISSING = "missing"  # status of a cell that has no score at all for a proxy
_KEY_ORDER = ("kendall_tau", "spearman", "tau_top10", "top1_ppl", "top10_mean_ppl", "divergence_auc", "n",
              "n_failed", "seconds_per_arch")


class MetricsError(ValueError):
    """Bad proxy or combination name, unknown direction, or scores that do not match the ground truth."""


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProxyData:
    """One proxy's (or combination's) per-architecture values, aligned with the targets. ``values[i]`` is None
    unless ``statuses[i] == "ok"``; ``losses[i]`` is None when architecture i diverged; ``seconds[i]`` is None when
    the cell has no score at all."""

    proxy: str
    higher_is_better: bool
    arch_ids: tuple[str, ...]
    values: tuple[float | None, ...]
    losses: tuple[float | None, ...]
    statuses: tuple[str, ...]
    seconds: tuple[float | None, ...]
    members: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.arch_ids)
        if not (len(self.values) == len(self.losses) == len(self.statuses) == len(self.seconds) == n):
            raise MetricsError(f"{self.proxy}: arch_ids, values, losses, statuses and seconds differ in length")
        for v, st in zip(self.values, self.statuses):
            if (v is None) != (st != "ok"):
                raise MetricsError(f"{self.proxy}: a value must be given exactly when its status is 'ok'")
            if v is not None and not math.isfinite(v):
                raise MetricsError(f"{self.proxy}: an ok value must be finite, got {v}")

    @classmethod
    def from_values(cls, proxy: str, values: Sequence[float | None], losses: Sequence[float | None], *,
                    higher_is_better: bool, seconds: Sequence[float | None] | None = None,
                    arch_ids: Sequence[str] | None = None) -> "ProxyData":
        """Build from plain lists; a None value is a failed score (status ``"error"``)."""
        n = len(values)
        return cls(proxy, higher_is_better,
                   tuple(arch_ids) if arch_ids is not None else tuple(str(i) for i in range(n)),
                   tuple(None if v is None else float(v) for v in values),
                   tuple(None if x is None else float(x) for x in losses),
                   tuple("ok" if v is not None else "error" for v in values),
                   tuple(seconds) if seconds is not None else (None,) * n)

    @property
    def ok_mask(self) -> np.ndarray:
        return np.array([st == "ok" for st in self.statuses], dtype=bool)


@dataclass(frozen=True)
class ProxyMetrics:
    """The metrics of one proxy or combination; see the module docstring for the definitions."""

    proxy: str
    higher_is_better: bool
    kendall_tau: float | None
    spearman: float | None
    tau_top10: float | None
    top1_ppl: float | None
    top10_mean_ppl: float | None
    divergence_auc: float | None
    n: int
    n_failed: int
    seconds_per_arch: float | None
    kendall_tau_ci: tuple[float, float] | None = None
    spearman_ci: tuple[float, float] | None = None
    tau_top10_ci: tuple[float, float] | None = None
    divergence_auc_ci: tuple[float, float] | None = None
    precision_at_k: float | None = None
    k: int = 0
    top_fraction: float = 0.1
    top1_arch: str | None = None
    top10_diverged: int = 0
    top1_diverged: bool = False  # the top-1 pick diverged (an infinite top1_ppl can also be a finite, huge loss)
    n_top: int = 0  # cells behind tau_top10
    n_scored: int = 0  # |S|
    n_diverged: int = 0  # diverged cells in S
    n_total: int = 0
    n_failed_diverged: int = 0  # failed scores whose cell diverged in training
    members: tuple[str, ...] = field(default=())
    gates: tuple[str, ...] = field(default=())

    def to_dict(self, json_safe: bool = False) -> dict[str, Any]:
        """The metrics as a flat dict (intervals as ``[lo, hi]``). ``json_safe`` writes an infinite perplexity as
        the string ``"inf"`` so the result passes ``json.dumps(..., allow_nan=False)``."""
        d: dict[str, Any] = {"proxy": self.proxy, "higher_is_better": self.higher_is_better}
        for key in _KEY_ORDER:
            d[key] = getattr(self, key)
        for key in ("kendall_tau_ci", "spearman_ci", "tau_top10_ci", "divergence_auc_ci"):
            ci = getattr(self, key)
            d[key] = None if ci is None else [ci[0], ci[1]]
        d.update(precision_at_k=self.precision_at_k, k=self.k, top_fraction=self.top_fraction,
                 top1_arch=self.top1_arch, top10_diverged=self.top10_diverged,
                 top1_diverged=self.top1_diverged, n_top=self.n_top,
                 n_scored=self.n_scored, n_diverged=self.n_diverged, n_total=self.n_total,
                 n_failed_diverged=self.n_failed_diverged, members=list(self.members),
                 gates=list(self.gates))
        if json_safe:
            for key in ("top1_ppl", "top10_mean_ppl"):
                if d[key] is not None and math.isinf(d[key]):
                    d[key] = "inf"
        return d


def results_to_dict(results: Mapping[str, ProxyMetrics], json_safe: bool = False) -> dict[str, dict[str, Any]]:
    """``{name: metrics.to_dict()}`` in the given order."""
    return {name: m.to_dict(json_safe=json_safe) for name, m in results.items()}


# ----------------------------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------------------------

def _direction(name: str, directions: Mapping[str, bool] | None) -> bool:
    if directions is not None:
        if name not in directions:
            raise MetricsError(f"no direction (higher_is_better) given for proxy {name!r}")
        return bool(directions[name])
    from zeronas.proxies.registry import get_proxy

    try:
        return get_proxy(name).higher_is_better
    except KeyError as exc:
        raise MetricsError(str(exc.args[0])) from None


# ----------------------------------------------------------------------------------------------------------------
# Collecting scores
# ----------------------------------------------------------------------------------------------------------------

def targets_from_architectures(archs: Iterable[Any]) -> dict[str, float | None]:
    """``{canonical_id: mean_test_loss}`` (None = diverged) for benchmark :class:`Architecture` objects."""
    return {a.canonical_id: a.mean_test_loss for a in archs}


def collect(name: str, scores: Mapping[str, Mapping[str, Score]], targets: Mapping[str, float | None],
            directions: Mapping[str, bool] | None = None,
            gate_thresholds: Mapping[str, float | None] | None = None) -> ProxyData:
    """Align one proxy's (or combination's, or gated spec's) scores with the targets, in the targets' order.

    ``scores`` maps an architecture id to ``{proxy: Score}``; ``targets`` maps the same ids to the mean test loss
    (None = diverged). An architecture with no score for the proxy is failed with status ``"missing"``. Scores for
    architectures that have no target are an error (the ground truth must cover everything that was scored).
    ``gate_thresholds`` gives a gate's threshold (default: the registry's ``gate``; see :func:`zeronas.core.spec.parse_spec`)."""
    extra = [a for a in scores if a not in targets]
    if extra:
        raise MetricsError(f"{len(extra)} scored architecture(s) have no ground truth, e.g. {extra[0]}")
    known = None if directions is None else list(directions)
    try:
        members, gates = parse_spec(name, known)
    except SpecError as exc:
        raise MetricsError(str(exc)) from None
    ids = tuple(targets)
    losses = tuple(None if targets[a] is None else float(targets[a]) for a in ids)  # type: ignore[arg-type]
    ranked = _collect_ranking(members, ids, losses, scores, directions)
    if not gates:
        return ranked
    return _apply_gates(ranked, gates, scores, directions, gate_thresholds)


def _collect_ranking(members: tuple[str, ...], ids: tuple[str, ...], losses: tuple[float | None, ...],
                     scores: Mapping[str, Mapping[str, Score]], directions: Mapping[str, bool] | None) -> ProxyData:
    if len(members) == 1:
        hib = _direction(members[0], directions)
        values, statuses, seconds = _member_columns(members[0], ids, scores)
        return ProxyData(members[0], hib, ids, tuple(values), losses, tuple(statuses), tuple(seconds))
    hibs = [_direction(m, directions) for m in members]
    columns = [_member_columns(m, ids, scores) for m in members]
    statuses = []
    for i in range(len(ids)):
        bad = next((col[1][i] for col in columns if col[1][i] != "ok"), "ok")
        statuses.append(bad)
    ok = np.array([st == "ok" for st in statuses], dtype=bool)
    combined = combine_ranks([np.array([np.nan if v is None else v for v in col[0]], dtype=float)[ok]
                              for col in columns], hibs)
    values: list[float | None] = [None] * len(ids)
    for pos, i in enumerate(np.flatnonzero(ok)):
        values[i] = float(combined[pos])
    seconds = _sum_seconds([col[2] for col in columns])
    return ProxyData(COMBINE.join(members), True, ids, tuple(values), losses, tuple(statuses), tuple(seconds),
                     members=members)


def _sum_seconds(columns: Sequence[Sequence[float | None]]) -> list[float | None]:
    out: list[float | None] = []
    for parts in zip(*columns):
        out.append(None if any(p is None for p in parts) else math.fsum(parts))  # type: ignore[arg-type]
    return out


def gate_threshold(name: str, thresholds: Mapping[str, float | None] | None = None) -> float | None:
    """The threshold of gate ``name``: from ``thresholds`` if it names it, else the registry's (None if the proxy
    is not registered or has none)."""
    if thresholds is not None and name in thresholds:
        return thresholds[name]
    from zeronas.proxies.registry import get_proxy

    try:
        return get_proxy(name).gate
    except KeyError:
        return None


def gate_order(oriented: np.ndarray, passes: np.ndarray) -> np.ndarray:
    """Every cell that passes its gates above every cell that does not, each group in the order of ``oriented``
    (finite, larger = better): the average rank of ``oriented``, plus the number of cells for a passing cell.
    Higher is better; the rule of gated specs in metrics and in search alike."""
    return stats.rankdata(oriented, method="average") + np.asarray(passes, dtype=bool) * float(len(oriented))


def _apply_gates(ranked: ProxyData, gates: tuple[str, ...], scores: Mapping[str, Mapping[str, Score]],
                 directions: Mapping[str, bool] | None,
                 thresholds: Mapping[str, float | None] | None) -> ProxyData:
    """Cells that pass every gate rank above every cell that does not; within each group the ranking decides.
    Value = the rank of the ranking score among the ok cells (average ranks, larger = better) + the number of ok
    cells if the cell passes. A cell without any score for a gate is ``missing``."""
    ids = ranked.arch_ids
    statuses = list(ranked.statuses)
    passes = np.ones(len(ids), dtype=bool)
    gate_seconds = []
    for g in gates:
        hib = _direction(g, directions)
        threshold = gate_threshold(g, thresholds)
        col_seconds: list[float | None] = []
        for i, a in enumerate(ids):
            sc = scores.get(a, {}).get(g)
            col_seconds.append(None if sc is None else float(sc.seconds))
            if sc is None and statuses[i] == "ok":
                statuses[i] = MISSING
            passes[i] &= gate_passes(sc, hib, threshold)
        gate_seconds.append(col_seconds)
    ok = np.array([st == "ok" for st in statuses], dtype=bool)
    oriented = np.array([np.nan if v is None else (v if ranked.higher_is_better else -v) for v in ranked.values],
                        dtype=float)
    values: list[float | None] = [None] * len(ids)
    if ok.any():
        gated = gate_order(oriented[ok], passes[ok])
        for pos, i in enumerate(np.flatnonzero(ok)):
            values[i] = float(gated[pos])
    seconds = _sum_seconds([ranked.seconds, *gate_seconds])
    name = ranked.proxy + "".join(GATE + g for g in gates)
    return ProxyData(name, True, ids, tuple(values), ranked.losses, tuple(statuses), tuple(seconds),
                     members=ranked.members or (ranked.proxy,), gates=gates)


def collect_all(names: Sequence[str], scores: Mapping[str, Mapping[str, Score]],
                targets: Mapping[str, float | None],
                directions: Mapping[str, bool] | None = None) -> dict[str, ProxyData]:
    """:func:`collect` for each name (proxies and combinations), keyed by the normalised name."""
    out: dict[str, ProxyData] = {}
    for name in names:
        data = collect(name, scores, targets, directions)
        out[data.proxy] = data
    return out


def _member_columns(name: str, ids: Sequence[str], scores: Mapping[str, Mapping[str, Score]]
                    ) -> tuple[list[float | None], list[str], list[float | None]]:
    values: list[float | None] = []
    statuses: list[str] = []
    seconds: list[float | None] = []
    for a in ids:
        sc = scores.get(a, {}).get(name)
        if sc is None:
            values.append(None)
            statuses.append(MISSING)
            seconds.append(None)
            continue
        status = sc.status
        if status == "ok" and (sc.value is None or not math.isfinite(sc.value)):
            status = "inf" if sc.value is not None and math.isinf(sc.value) else "nan"  # guard; the runner never does this
        values.append(float(sc.value) if status == "ok" else None)  # type: ignore[arg-type]
        statuses.append(status)
        seconds.append(float(sc.seconds))
    return values, statuses, seconds


def combine_ranks(columns: Sequence[np.ndarray], higher_is_better: Sequence[bool]) -> np.ndarray:
    """Sum of per-proxy ranks (average ranks; each column ranked in its own direction so that a larger rank is a
    better cell). All columns hold the same cells, every value finite. Higher is better."""
    if len(columns) != len(higher_is_better) or not columns:
        raise MetricsError("one direction per column is needed")
    total = np.zeros(len(columns[0]), dtype=float)
    for col, hib in zip(columns, higher_is_better):
        col = np.asarray(col, dtype=float)
        if col.shape != total.shape:
            raise MetricsError("every column must hold the same cells")
        total += stats.rankdata(col if hib else -col, method="average")
    return total


# ----------------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------------

def metrics_for(names: Sequence[str], scores: Mapping[str, Mapping[str, Score]],
                targets: Mapping[str, float | None], directions: Mapping[str, bool] | None = None,
                **options: Any) -> dict[str, ProxyMetrics]:
    """Metrics for each proxy or combination in ``names`` (see :func:`collect` and :func:`proxy_metrics`)."""
    return {name: proxy_metrics(data, **options)
            for name, data in collect_all(names, scores, targets, directions).items()}


def proxy_metrics(data: ProxyData, *, top_fraction: float = 0.1, top_n: int = 10, n_boot: int = 1000,
                  confidence: float = 0.95, seed: int = 0) -> ProxyMetrics:
    """All metrics of one proxy; ``n_boot=0`` skips the bootstrap intervals. The correlations are over C (the
    scored cells that trained), the picks and the divergence AUC over S (every scored cell)."""
    if not 0.0 < top_fraction <= 1.0:
        raise MetricsError(f"top_fraction must be in (0, 1], got {top_fraction}")
    if not 0.0 < confidence < 1.0:
        raise MetricsError(f"confidence must be in (0, 1), got {confidence}")
    if top_n < 1 or n_boot < 0:
        raise MetricsError("top_n must be >= 1 and n_boot >= 0")
    ok = data.ok_mask
    secs = [s for s in data.seconds if s is not None]
    s_idx = np.flatnonzero(ok)
    s = np.array([data.values[i] for i in s_idx], dtype=float)
    if not data.higher_is_better:
        s = -s
    loss = np.array([np.inf if data.losses[i] is None else data.losses[i] for i in s_idx], dtype=float)
    finite = np.isfinite(loss)
    streams = np.random.SeedSequence(seed).spawn(4)
    sc, qc = s[finite], -loss[finite]
    return ProxyMetrics(
        proxy=data.proxy, higher_is_better=data.higher_is_better, n=int(finite.sum()), n_failed=int((~ok).sum()),
        seconds_per_arch=math.fsum(secs) / len(secs) if secs else None, top_fraction=top_fraction,
        n_scored=len(s_idx), n_diverged=int((~finite).sum()), n_total=len(data.arch_ids),
        n_failed_diverged=sum(1 for i in np.flatnonzero(~ok) if data.losses[i] is None), members=data.members,
        gates=data.gates, **_correlations(sc, qc, n_boot, confidence, streams[0]),
        **_top_correlation(sc, qc, top_fraction, n_boot, confidence, streams[1]),
        **_picks(s, loss, [data.arch_ids[i] for i in s_idx], top_n, top_fraction, streams[2]),
        **_divergence_auc(s, finite, n_boot, confidence, streams[3]))


def _correlations(sc: np.ndarray, qc: np.ndarray, n_boot: int, confidence: float,
                  stream: np.random.SeedSequence) -> dict[str, Any]:
    """Kendall's tau and Spearman's rho of the scores ``sc`` against the qualities ``qc``, with intervals."""
    tau, rho = _kendall(sc, qc), _spearman(sc, qc)
    tau_ci = rho_ci = None
    if n_boot and len(sc) >= 2:
        w = _counts(np.random.default_rng(stream).integers(0, len(sc), size=(n_boot, len(sc))), len(sc))
        tau_ci = _interval(_boot_kendall(sc, qc, w), confidence, tau)
        rho_ci = _interval(_boot_spearman(sc, qc, w), confidence, rho)
    return {"kendall_tau": tau, "spearman": rho, "kendall_tau_ci": tau_ci, "spearman_ci": rho_ci}


def _top_correlation(sc: np.ndarray, qc: np.ndarray, top_fraction: float, n_boot: int, confidence: float,
                     stream: np.random.SeedSequence) -> dict[str, Any]:
    """Kendall's tau within the best ``top_fraction`` of the cells by true quality."""
    n_top = _top_count(top_fraction, len(sc)) if len(sc) else 0
    top = np.argsort(-qc, kind="stable")[:n_top]
    st, qt = sc[top], qc[top]
    tau_top = _kendall(st, qt)
    tau_top_ci = None
    if n_boot and n_top >= 2:
        w = _counts(np.random.default_rng(stream).integers(0, n_top, size=(n_boot, n_top)), n_top)
        tau_top_ci = _interval(_boot_kendall(st, qt, w), confidence, tau_top)
    return {"tau_top10": tau_top, "tau_top10_ci": tau_top_ci, "n_top": n_top}


def _picks(s: np.ndarray, loss: np.ndarray, arch_ids: Sequence[str], top_n: int, top_fraction: float,
           stream: np.random.SeedSequence) -> dict[str, Any]:
    """What ranking by the scores ``s`` picks (ties broken by a seeded permutation): the top-1 cell, the mean
    perplexity of the top ``top_n`` and the precision at ``k`` (the top ``top_fraction``) of the true best."""
    n_scored = len(s)
    finite = np.isfinite(loss)
    tiebreak = np.random.default_rng(stream).permutation(n_scored)
    order = np.lexsort((tiebreak, -s))  # best first
    out: dict[str, Any] = {"top1_ppl": None, "top10_mean_ppl": None, "precision_at_k": None, "k": 0,
                           "top1_arch": None, "top10_diverged": 0, "top1_diverged": False}
    if not n_scored:
        return out
    first = order[0]
    picks = order[:min(top_n, n_scored)]
    top10_div = int((~finite[picks]).sum())
    k = _top_count(top_fraction, n_scored)
    true_order = np.lexsort((tiebreak, loss))
    true_top = {int(i) for i in true_order[:k] if finite[i]}
    out.update(top1_ppl=_ppl(loss[first]), top1_diverged=not bool(finite[first]), top1_arch=arch_ids[first],
               top10_diverged=top10_div, k=k,
               top10_mean_ppl=math.inf if top10_div else float(np.mean([_ppl(x) for x in loss[picks]])),
               precision_at_k=len(true_top.intersection(int(i) for i in order[:k])) / k if finite.any() else None)
    return out


def _divergence_auc(s: np.ndarray, trained: np.ndarray, n_boot: int, confidence: float,
                    stream: np.random.SeedSequence) -> dict[str, Any]:
    """How well the scores separate the cells that trained (positives) from those that diverged."""
    auc = _auc(s, trained)
    auc_ci = None
    if n_boot and auc is not None:
        n = len(s)
        idx = np.random.default_rng(stream).integers(0, n, size=(n_boot, n))
        auc_ci = _interval(_boot_auc(s, trained, _counts(idx, n)), confidence, auc)
    return {"divergence_auc": auc, "divergence_auc_ci": auc_ci}


def _top_count(fraction: float, n: int) -> int:
    """``max(1, ceil(fraction * n))``, robust to float error (0.1 * 2500 is 250.00000000000003)."""
    return max(1, min(n, math.ceil(round(fraction * n, 9))))


def _ppl(loss: float) -> float:
    return math.inf if not math.isfinite(loss) or loss >= 709.0 else math.exp(loss)


def _kendall_nan(x: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(stats.kendalltau(x, y).statistic)


def _kendall(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2:
        return None
    v = _kendall_nan(x, y)
    return v if math.isfinite(v) else None


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        v = float(stats.spearmanr(x, y).statistic)
    return v if math.isfinite(v) else None


def _auc(s: np.ndarray, positive: np.ndarray) -> float | None:
    """Mann-Whitney ROC-AUC of ``s`` for positives over negatives (ties count one half)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = stats.rankdata(s, method="average")
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _interval(reps: np.ndarray, confidence: float, point: float | None) -> tuple[float, float] | None:
    reps = reps[np.isfinite(reps)]
    if point is None or len(reps) == 0:
        return None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


# -- vectorised bootstrap: a resample is a vector of counts w (how often each cell was drawn) --------------------

def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Resample indices (B, m) -> counts (B, n)."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)


def _weighted_ranks(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average rank (1-based) of each cell within each resample, where cell i appears ``w[b, i]`` times: the number
    of drawn items with a smaller value plus (copies with an equal value + 1) / 2. No sorting per resample."""
    order = np.argsort(v, kind="stable")
    vs = v[order]
    starts = np.flatnonzero(np.r_[True, vs[1:] != vs[:-1]])
    group_of_sorted = np.cumsum(np.r_[True, vs[1:] != vs[:-1]]) - 1
    wg = np.add.reduceat(w[:, order], starts, axis=1)  # (B, groups): drawn copies per tie group
    before = np.cumsum(wg, axis=1) - wg
    group_rank = before + (wg + 1.0) / 2.0
    ranks = np.empty_like(w)
    ranks[:, order] = group_rank[:, group_of_sorted]
    return ranks


def _boot_kendall(x: np.ndarray, y: np.ndarray, w: np.ndarray, block: int = 1024) -> np.ndarray:
    """Kendall tau-b of each resample, ``(nc - nd) / sqrt((n0 - n1) (n0 - n2))``, without a loop over resamples:
    ``nc - nd = w' A w / 2`` with ``A[i, j] = sign(x_i - x_j) sign(y_i - y_j)`` (copies of one cell tie and add
    nothing), built ``block`` columns at a time; the tie terms come from the drawn copies per tie group.
    Costs ``B n^2`` flops: 0.2 s for 1000 resamples of 2,500 cells."""
    rx = np.unique(x, return_inverse=True)[1].astype(np.int32)
    ry = np.unique(y, return_inverse=True)[1].astype(np.int32)
    w32 = w.astype(np.float32)  # counts and their partial sums are small integers: exact in float32
    s = np.zeros(w.shape[0])
    for start in range(0, len(x), block):
        cols = slice(start, start + block)
        a = (np.sign(rx[:, None] - rx[None, cols]) * np.sign(ry[:, None] - ry[None, cols])).astype(np.float32)
        s += ((w32 @ a).astype(np.float64) * w[:, cols]).sum(axis=1)
    s /= 2.0
    total = w.sum(axis=1)
    n0 = total * (total - 1.0) / 2.0
    n1 = (_tied_copies(rx, w) - total) / 2.0
    n2 = (_tied_copies(ry, w) - total) / 2.0
    with np.errstate(all="ignore"):
        return s / np.sqrt((n0 - n1) * (n0 - n2))


def _tied_copies(codes: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Sum over tie groups of (drawn copies in the group)^2, per resample."""
    order = np.argsort(codes, kind="stable")
    cs = codes[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    wg = np.add.reduceat(w[:, order], starts, axis=1)
    return (wg * wg).sum(axis=1)


def _boot_spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spearman rho of each resample: the weighted Pearson correlation of the resample's average ranks."""
    rx, ry = _weighted_ranks(x, w), _weighted_ranks(y, w)
    m = (w.sum(axis=1, keepdims=True) + 1.0) / 2.0  # mean rank of a resample of size N is (N + 1) / 2
    dx, dy = rx - m, ry - m
    with np.errstate(all="ignore"):
        return (w * dx * dy).sum(1) / np.sqrt((w * dx * dx).sum(1) * (w * dy * dy).sum(1))


def _boot_auc(s: np.ndarray, positive: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC-AUC of each resample (NaN when a resample lacks a class)."""
    r = _weighted_ranks(s, w)
    wp = w[:, positive]
    n_pos = wp.sum(1)
    n_neg = w[:, ~positive].sum(1)
    u = (wp * r[:, positive]).sum(1) - n_pos * (n_pos + 1.0) / 2.0
    with np.errstate(all="ignore"):
        return u / (n_pos * n_neg)


__all__: Sequence[str] = ["MetricsError", "ProxyData", "ProxyMetrics", "collect", "collect_all", "combine_ranks",
                          "metrics_for", "proxy_metrics", "gate_order", "gate_passes", "gate_threshold", "results_to_dict",
                          "targets_from_architectures"]
