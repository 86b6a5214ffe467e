"""Ranking metrics on synthetic data where the answer is known."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from zeronas.metrics import (
    MetricsError,
    ProxyData,
    _auc,
    _boot_auc,
    _boot_kendall,
    _boot_spearman,
    _counts,
    collect,
    combine_ranks,
    metrics_for,
    proxy_metrics,
    targets_from_architectures,
)
from zeronas.core.spec import SpecError, parse_combination, parse_proxy_specs, parse_spec, spec_proxies
from zeronas.proxies.runner import Score

REQUIRED_KEYS = {"kendall_tau", "spearman", "tau_top10", "top1_ppl", "top10_mean_ppl", "divergence_auc", "n",
                 "n_failed", "seconds_per_arch", "kendall_tau_ci", "spearman_ci", "precision_at_k"}


def _losses(n: int, seed: int = 0, diverged_frac: float = 0.0) -> list[float | None]:
    rng = np.random.default_rng(seed)
    loss = rng.uniform(4.4, 5.6, size=n)
    div = rng.random(n) < diverged_frac
    return [None if d else float(x) for x, d in zip(loss, div)]


def _data(values, losses, hib=True, **kw) -> ProxyData:
    return ProxyData.from_values("p", values, losses, higher_is_better=hib, **kw)


def test_perfect_proxy() -> None:
    losses = _losses(500)
    m = proxy_metrics(_data([-x for x in losses], losses), n_boot=0)
    assert m.kendall_tau == pytest.approx(1.0)
    assert m.spearman == pytest.approx(1.0)
    assert m.tau_top10 == pytest.approx(1.0)
    assert m.precision_at_k == 1.0 and m.k == 50
    assert m.top1_ppl == pytest.approx(math.exp(min(losses)))
    best10 = sorted(losses)[:10]
    assert m.top10_mean_ppl == pytest.approx(np.mean(np.exp(best10)))
    assert m.top10_diverged == 0
    assert m.n == 500 and m.n_failed == 0 and m.n_top == 50
    assert m.divergence_auc is None  # no diverged cell: undefined, not 0.5


def test_direction_is_used_not_absolute_value() -> None:
    losses = _losses(300, seed=1)
    # a lower-is-better proxy equal to the loss is perfect in its own direction
    m = proxy_metrics(_data(list(losses), losses, hib=False), n_boot=0)
    assert m.kendall_tau == pytest.approx(1.0) and m.spearman == pytest.approx(1.0)
    assert m.precision_at_k == 1.0
    assert m.top1_ppl == pytest.approx(math.exp(min(losses)))
    # the same values declared higher-is-better rank cells backwards: tau = -1, never |tau|
    m = proxy_metrics(_data(list(losses), losses, hib=True), n_boot=0)
    assert m.kendall_tau == pytest.approx(-1.0) and m.spearman == pytest.approx(-1.0)
    assert m.precision_at_k == 0.0
    assert m.top1_ppl == pytest.approx(math.exp(max(losses)))


def test_random_proxy_near_zero() -> None:
    losses = _losses(3000, seed=2)
    values = list(np.random.default_rng(3).normal(size=3000))
    m = proxy_metrics(_data(values, losses), n_boot=200)
    # sd of tau under independence is about sqrt(2 (2n + 5) / (9 n (n - 1))) = 0.012 here
    assert abs(m.kendall_tau) < 0.05 and abs(m.spearman) < 0.075
    lo, hi = m.kendall_tau_ci
    assert lo <= m.kendall_tau <= hi and hi - lo < 0.08
    assert 0.0 <= m.precision_at_k < 0.2  # expected 0.1 by chance


def test_top1_pick_diverged_is_a_failure() -> None:
    losses = _losses(200, seed=4)
    losses[7] = None  # diverged
    losses[8] = None
    values = [-x if x is not None else -100.0 for x in losses]
    values[7] = 100.0  # the proxy's favourite diverged
    m = proxy_metrics(_data(values, losses), n_boot=0)
    assert m.top1_ppl == math.inf and m.top1_arch == "7"
    assert m.top10_mean_ppl == math.inf and m.top10_diverged == 1
    assert m.n == 198 and m.n_scored == 200 and m.n_diverged == 2
    assert m.kendall_tau == pytest.approx(1.0)  # correlations use trained cells only
    d = m.to_dict(json_safe=True)
    assert d["top1_ppl"] == "inf" and d["top10_mean_ppl"] == "inf"
    json.dumps(d, allow_nan=False)
    assert m.to_dict()["top1_ppl"] == math.inf


def test_divergence_auc() -> None:
    losses = _losses(400, seed=5, diverged_frac=0.3)
    rng = np.random.default_rng(6)
    sep = [float(rng.normal()) + (10.0 if x is not None else 0.0) for x in losses]
    assert proxy_metrics(_data(sep, losses), n_boot=0).divergence_auc == pytest.approx(1.0)
    assert proxy_metrics(_data(sep, losses, hib=False), n_boot=0).divergence_auc == pytest.approx(0.0)
    # against a brute-force pairwise count, ties counting one half
    s = np.round(rng.normal(size=400), 1)
    pos = np.array([x is not None for x in losses])
    brute = ((s[pos][:, None] > s[~pos][None, :]).sum()
             + 0.5 * (s[pos][:, None] == s[~pos][None, :]).sum()) / (pos.sum() * (~pos).sum())
    assert _auc(s, pos) == pytest.approx(brute)
    m = proxy_metrics(_data(list(s), losses), n_boot=300)
    assert m.divergence_auc == pytest.approx(brute)
    assert m.divergence_auc_ci[0] <= m.divergence_auc <= m.divergence_auc_ci[1]


def test_failed_scores_excluded_and_counted() -> None:
    losses = _losses(300, seed=7, diverged_frac=0.1)
    losses[10], losses[50] = None, 4.9  # among the failed cells: one diverged, one trained
    rng = np.random.default_rng(8)
    values: list[float | None] = [float(-x + rng.normal(0, 0.3)) if x is not None else float(rng.normal())
                                  for x in losses]
    failed = [3, 10, 50, 51, 299]
    for i in failed:
        values[i] = None
    m = proxy_metrics(_data(values, losses, seconds=[0.5] * 150 + [1.5] * 150), n_boot=0)
    assert m.n_failed == len(failed)
    assert m.n_failed_diverged == sum(losses[i] is None for i in failed) >= 1
    keep = [i for i in range(300) if values[i] is not None and losses[i] is not None]
    assert m.n == len(keep)
    x = np.array([values[i] for i in keep])
    y = -np.array([losses[i] for i in keep])
    assert m.kendall_tau == pytest.approx(stats.kendalltau(x, y).statistic)
    assert m.spearman == pytest.approx(stats.spearmanr(x, y).statistic)
    assert m.seconds_per_arch == pytest.approx(1.0)
    assert m.n_scored == 300 - len(failed)


def test_bootstrap_ci_contains_estimate_and_is_seeded() -> None:
    losses = _losses(800, seed=9, diverged_frac=0.15)
    rng = np.random.default_rng(10)
    values = [float(-x + rng.normal(0, 0.4)) if x is not None else float(rng.normal(-5, 1)) for x in losses]
    m = proxy_metrics(_data(values, losses), n_boot=400, seed=1)
    for point, ci in ((m.kendall_tau, m.kendall_tau_ci), (m.spearman, m.spearman_ci),
                      (m.tau_top10, m.tau_top10_ci), (m.divergence_auc, m.divergence_auc_ci)):
        assert ci is not None and ci[0] <= point <= ci[1] and ci[0] < ci[1]
    assert m.kendall_tau_ci[1] - m.kendall_tau_ci[0] < 0.1
    again = proxy_metrics(_data(values, losses), n_boot=400, seed=1)
    assert again.kendall_tau_ci == m.kendall_tau_ci and again.spearman_ci == m.spearman_ci
    other = proxy_metrics(_data(values, losses), n_boot=400, seed=2)
    assert other.kendall_tau_ci != m.kendall_tau_ci
    none = proxy_metrics(_data(values, losses), n_boot=0)
    assert none.kendall_tau_ci is None and none.kendall_tau == m.kendall_tau


@pytest.mark.parametrize("n", [6, 250])
def test_vectorised_bootstrap_matches_scipy_on_each_resample(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.round(rng.normal(size=n), 1)  # ties on purpose
    y = np.round(x + rng.normal(size=n), 1)
    idx = rng.integers(0, n, size=(30, n))
    w = _counts(idx, n)
    assert np.array_equal(w.sum(1), np.full(30, n))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on a constant tiny resample
        tau_ref = np.array([stats.kendalltau(x[r], y[r]).statistic for r in idx])
        rho_ref = np.array([stats.spearmanr(x[r], y[r]).statistic for r in idx])
    np.testing.assert_allclose(_boot_kendall(x, y, w, block=4), tau_ref, atol=1e-12)
    np.testing.assert_allclose(_boot_spearman(x, y, w), rho_ref, atol=1e-12)
    pos = rng.random(n) < 0.6
    auc = _boot_auc(x, pos, w)
    for b, r in enumerate(idx):
        p = pos[r]
        if p.all() or not p.any():
            assert math.isnan(auc[b])
        else:
            assert auc[b] == pytest.approx(_auc(x[r], p))


def test_precision_at_k_counts_overlap() -> None:
    n = 100
    losses = [4.0 + i / 100 for i in range(n)]  # cell 0 best
    values = [float(-x) for x in losses]
    # swap the proxy's view of five true top-10 cells with five bottom cells
    for a, b in zip(range(5), range(95, 100)):
        values[a], values[b] = values[b], values[a]
    m = proxy_metrics(_data(values, losses), n_boot=0, top_fraction=0.1)
    assert m.k == 10 and m.precision_at_k == pytest.approx(0.5)
    # a constant proxy: ties broken by a seeded permutation, so the input order (sorted by loss) does not leak
    m = proxy_metrics(_data([1.0] * n, losses), n_boot=0)
    assert m.kendall_tau is None and m.spearman is None
    assert m.top1_arch != "0" and m.precision_at_k < 0.5


def test_combination_rank_sum() -> None:
    a = np.array([3.0, 1.0, 2.0, 5.0])
    b = np.array([10.0, 40.0, 30.0, 20.0])  # lower is better
    # ranks in own direction: a -> [3,1,2,4]; b (negated) -> [4,1,2,3]
    np.testing.assert_array_equal(combine_ranks([a, b], [True, False]), [7.0, 2.0, 4.0, 7.0])


def _scores(columns: dict[str, list[float | None]], seconds: float = 0.1) -> dict[str, dict[str, Score]]:
    n = len(next(iter(columns.values())))
    out: dict[str, dict[str, Score]] = {}
    for i in range(n):
        out[f"c{i}"] = {}
        for name, col in columns.items():
            v = col[i]
            out[f"c{i}"][name] = Score(name, v, "ok", "", seconds) if v is not None \
                else Score(name, None, "nan", "NaN", seconds)
    return out


def test_combination_of_perfect_and_random() -> None:
    n = 2000
    losses = _losses(n, seed=11)
    targets = {f"c{i}": x for i, x in enumerate(losses)}
    rng = np.random.default_rng(12)
    perfect = [float(x) for x in losses]  # lower is better
    rand: list[float | None] = [float(v) for v in rng.normal(size=n)]
    rand[5] = None  # a failed member score fails the combination
    scores = _scores({"perfect": perfect, "rand": rand})
    directions = {"perfect": False, "rand": True}
    res = metrics_for(["perfect", "rand", "perfect+rand"], scores, targets, directions, n_boot=0)
    combo = res["perfect+rand"]
    assert res["perfect"].kendall_tau == pytest.approx(1.0)
    assert abs(res["rand"].kendall_tau) < 0.05
    # sum of two independent uniform ranks: rho with either is 1/sqrt(2); Kendall tau is 1/2
    assert combo.spearman == pytest.approx(1 / math.sqrt(2), abs=0.04)
    assert combo.kendall_tau == pytest.approx(0.5, abs=0.04)
    assert combo.n_failed == 1 and res["rand"].n_failed == 1 and res["perfect"].n_failed == 0
    assert combo.n == n - 1 and combo.members == ("perfect", "rand") and combo.higher_is_better
    assert combo.seconds_per_arch == pytest.approx(0.2)
    data = collect("perfect + rand", scores, targets, directions)
    assert data.proxy == "perfect+rand" and data.statuses[5] == "nan" and data.values[5] is None


def test_collect_missing_and_extra_cells() -> None:
    targets = {"a": 4.5, "b": 4.6, "c": None, "d": 4.7}
    scores = {"a": {"p": Score("p", 1.0, "ok", "", 0.2)}, "b": {"p": Score("p", None, "error", "x", 0.4)},
              "c": {"p": Score("p", 2.0, "ok", "", 0.3)}}
    data = collect("p", scores, targets, {"p": True})
    assert data.statuses == ("ok", "error", "ok", "missing")
    assert data.values == (1.0, None, 2.0, None)
    m = proxy_metrics(data, n_boot=0)
    assert m.n_failed == 2 and m.n == 1 and m.n_scored == 2
    assert m.n_failed_diverged == 0  # the failed cells b and d both trained
    assert m.to_dict()["n_failed_diverged"] == 0
    assert m.seconds_per_arch == pytest.approx(0.3)  # ok and failed scores, not the missing one
    assert m.top1_ppl == math.inf and m.top1_arch == "c"
    with pytest.raises(MetricsError, match="no ground truth"):
        collect("p", {**scores, "zz": {}}, targets, {"p": True})
    with pytest.raises(MetricsError, match="direction|unknown"):
        collect("q", scores, targets, {"p": True})


def test_names_are_parsed_and_validated() -> None:
    known = ["zen", "ntk_cond", "hidden_cov"]
    assert parse_combination("zen+ntk_cond+hidden_cov", known) == ("zen", "ntk_cond", "hidden_cov")
    assert parse_combination(" zen ", known) == ("zen",)
    assert parse_proxy_specs("zen, zen + hidden_cov", known) == ["zen", "zen+hidden_cov"]
    for bad in ("zen++ntk_cond", "+zen", "zen+zen", "zen+nope", ""):
        with pytest.raises(SpecError):
            parse_combination(bad, known)
    with pytest.raises(SpecError):
        parse_proxy_specs("zen,zen", known)
    with pytest.raises(SpecError):
        parse_proxy_specs(" , ", known)


def test_to_dict_shape() -> None:
    losses = _losses(100, seed=13, diverged_frac=0.2)
    values = [float(-x) if x is not None else -9.0 for x in losses]
    m = proxy_metrics(_data(values, losses, seconds=[0.1] * 100), n_boot=50)
    d = m.to_dict()
    assert REQUIRED_KEYS <= set(d)
    assert isinstance(d["kendall_tau_ci"], list) and len(d["kendall_tau_ci"]) == 2
    assert d["divergence_auc"] == pytest.approx(1.0)
    json.loads(json.dumps(m.to_dict(json_safe=True), allow_nan=False))


def test_targets_from_architectures() -> None:
    from zeronas.bench.nbnlp import Benchmark

    archs = Benchmark.nbnlp().architectures[:50]
    t = targets_from_architectures(archs)
    assert list(t) == [a.canonical_id for a in archs]
    assert all((t[a.canonical_id] is None) == a.diverged for a in archs)


def test_bad_options() -> None:
    d = _data([1.0, 2.0], [4.0, 5.0])
    with pytest.raises(MetricsError):
        proxy_metrics(d, top_fraction=0.0)
    with pytest.raises(MetricsError):
        proxy_metrics(d, confidence=1.0)
    with pytest.raises(MetricsError):
        ProxyData("p", True, ("a",), (float("nan"),), (4.0,), ("ok",), (None,))


def test_a_gate_ranks_passing_cells_first_and_keeps_failing_ones_ranked() -> None:
    # c0..c5: rank by r (higher better); gate g (lower better, threshold 0): c1, c3 fail by value, c4 by NaN
    targets = {"c0": 4.9, "c1": None, "c2": 4.7, "c3": None, "c4": 5.0, "c5": 4.6}
    r = [1.0, 9.0, 3.0, 8.0, 7.0, 2.0]
    g: list[float | None] = [-0.5, 0.3, -0.1, 0.0001, None, 0.0]  # exactly 0 passes
    scores = _scores({"r": r, "g": g})
    directions = {"r": True, "g": False}
    data = collect("r ! g", scores, targets, directions, gate_thresholds={"g": 0.0})
    assert data.proxy == "r!g" and data.members == ("r",) and data.gates == ("g",)
    assert data.statuses == ("ok",) * 6  # a failed gate does not fail the cell, it fails the gate
    # ranks of r among the 6 ok cells: [1, 6, 3, 5, 4, 2]; passing cells (c0, c2, c5) get +6
    assert data.values == (7.0, 6.0, 9.0, 5.0, 4.0, 8.0)
    m = proxy_metrics(data, n_boot=0)
    assert m.top1_arch == "c2" and m.top10_diverged == 2  # the diverged cells are ranked, but below c0, c2, c5
    assert m.divergence_auc == pytest.approx(6 / 8)  # c4 (trained, NaN gate, r rank 4) ranks below c1 and c3
    plain = proxy_metrics(collect("r", scores, targets, directions), n_boot=0)
    assert plain.top1_ppl == math.inf and m.top1_ppl == pytest.approx(math.exp(4.7))
    # without a threshold an ok gate score passes: only c4 (NaN) is gated
    data = collect("r!g", scores, targets, directions, gate_thresholds={"g": None})
    assert data.values == (7.0, 12.0, 9.0, 11.0, 4.0, 8.0)
    # a cell with no gate score at all cannot be judged: missing
    del scores["c0"]["g"]
    assert collect("r!g", scores, targets, directions, gate_thresholds={"g": 0.0}).statuses[0] == "missing"


def test_gated_specs_are_parsed_and_validated() -> None:
    known = ["zen", "hidden_cov", "state_escape", "synflow"]
    assert parse_proxy_specs("hidden_cov ! state_escape, zen+hidden_cov!state_escape!synflow", known) == [
        "hidden_cov!state_escape", "zen+hidden_cov!state_escape!synflow"]
    assert spec_proxies("hidden_cov+zen!state_escape!zen", known) == ("hidden_cov", "zen", "state_escape")
    for bad in ("hidden_cov!zen+synflow", "hidden_cov!", "hidden_cov!state_escape!state_escape", "hidden_cov!nope"):
        with pytest.raises(SpecError):
            parse_spec(bad, known)
