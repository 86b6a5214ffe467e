"""The performance predictor: features, fitting, the model file, the learning curve and the CLI around them."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from zeronas.bench.nbnlp import Architecture, Benchmark
from zeronas.cells.reference import LSTM, RNN_TANH as RNN
from zeronas.cells.recipe import PREV_RE, parse_recipe
from zeronas.cli import app
from zeronas.predict import Predictor, PredictorError, feature_matrix, feature_names, load_predictor
from zeronas.predict.curve import ALL, learning_curve, parse_labels
from zeronas.predict.data import LabelledData, predictor_rows
from zeronas.predict.features import STRUCTURE_FEATURES, count_paths, feature_row, structure_features
from zeronas.predict.model import _digest
from zeronas.predict.ranking import PredictorRanking
from zeronas.proxies.runner import Score
from zeronas.search.core import Candidate, ranked

runner = CliRunner()
CHEAP = "params,n_blend,n_prod,cell_depth,recurrent_fanin,flops"


# -- features ----------------------------------------------------------------------------------------------------

def test_paths_and_structure_of_hand_cells():
    rnn = parse_recipe(RNN)
    # h_new = tanh(linear(x, h_prev)): one path from x, one from the state
    assert count_paths(rnn, lambda n: n == "x") == 1
    assert count_paths(rnn, lambda n: bool(PREV_RE.match(n))) == 1
    cell = parse_recipe({"a": {"op": "linear", "input": ["x", "h_prev_0"]},
                         "b": {"op": "activation_tanh", "input": ["a"]},
                         "c": {"op": "elementwise_prod", "input": ["a", "b"]},
                         "h_new_0": {"op": "elementwise_sum", "input": ["c", "x"]}})
    # x reaches the output through a->c (2 ways: directly and via b) and directly: 3 paths; h_prev: 2
    assert count_paths(cell, lambda n: n == "x") == 3
    assert count_paths(cell, lambda n: bool(PREV_RE.match(n))) == 2
    f = dict(zip(STRUCTURE_FEATURES, structure_features(cell)))
    assert f["ops:linear"] == 1 and f["ops:elementwise_prod"] == 1 and f["ops:blend"] == 0
    assert f["nodes"] == 4 and f["depth"] == 4 and f["recurrent_fanin"] == 1 and f["hidden_tuple_size"] == 1
    assert f["log_paths_x"] == pytest.approx(math.log(4)) and f["log_paths_h"] == pytest.approx(math.log(3))
    lstm = dict(zip(STRUCTURE_FEATURES, structure_features(parse_recipe(LSTM))))
    assert lstm["hidden_tuple_size"] == 2 and lstm["ops:activation_sigm"] == 3


def test_failed_scores_are_features_and_missing_scores_are_not():
    cell = parse_recipe(RNN)
    scores = {"zen": Score("zen", None, "inf", "overflow"), "params": Score("params", 12.0, "ok")}
    row = feature_row(cell, scores, ["zen", "params"], structure=False)
    assert math.isnan(row[0]) and row[1:] == [1.0, 12.0, 0.0]
    assert feature_row(cell, scores, ["zen", "params", "snip"]) is None
    X, complete = feature_matrix([cell, cell], [scores, {}], ["zen", "params"])
    assert complete.tolist() == [True, False] and np.isnan(X[1]).all()
    assert X.shape[1] == len(feature_names(["zen", "params"])) == 4 + len(STRUCTURE_FEATURES)


# -- fitting on data where the answer is known --------------------------------------------------------------------

def synthetic(n: int = 400, seed: int = 0) -> tuple[np.ndarray, list[float | None]]:
    """Two proxy columns (value + failed flag each) and no structure: the loss falls with proxy a; a cell
    diverges when proxy b is above 1.2 (and b then often 'fails'); noise elsewhere."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.uniform(0, 1.5, size=n)
    X = np.column_stack([a, np.zeros(n), b, np.zeros(n)])
    fails = (b > 1.3) & (rng.uniform(size=n) < 0.5)
    X[fails, 2], X[fails, 3] = np.nan, 1.0
    losses = [None if bi > 1.2 else 5.0 - 0.3 * ai + 0.02 * rng.normal() for ai, bi in zip(a, b)]
    return X, losses


@pytest.mark.parametrize("objective", ["regression", "lambdarank"])
def test_fit_learns_order_and_divergence(objective):
    X, losses = synthetic()
    model = Predictor.fit(X[:300], losses[:300], proxies=["a", "b"], structure=False, objective=objective)
    pred = model.predict(X[300:])
    test = losses[300:]
    trained = [i for i, x in enumerate(test) if x is not None]
    tau = stats.kendalltau(pred.quality[trained], [-test[i] for i in trained])[0]
    assert tau > 0.7
    diverged = np.array([x is None for x in test])
    assert pred.p_diverge[diverged].mean() > 0.8 > 0.2 > pred.p_diverge[~diverged].mean()
    assert np.all(pred.score <= pred.quality) and np.all((pred.score >= 0) & (pred.score <= 1))
    # the predicted loss follows the quality and stays in the range of the trained losses
    assert stats.kendalltau(pred.test_loss[trained], [test[i] for i in trained])[0] > 0.7
    finite = [x for x in losses[:300] if x is not None]
    assert min(finite) <= pred.test_loss.min() and pred.test_loss.max() <= max(finite)


def test_fit_is_reproducible_and_refuses_bad_input():
    X, losses = synthetic()
    one = Predictor.fit(X, losses, proxies=["a", "b"], structure=False, seed=3).predict(X).score
    two = Predictor.fit(X, losses, proxies=["a", "b"], structure=False, seed=3).predict(X).score
    assert np.array_equal(one, two)
    with pytest.raises(PredictorError, match=r"only \d labelled cells trained \(of 4\)"):
        Predictor.fit(X[:4], losses[:4], proxies=["a", "b"], structure=False)
    with pytest.raises(PredictorError, match="unknown objective"):
        Predictor.fit(X, losses, proxies=["a", "b"], structure=False, objective="xgboost")
    with pytest.raises(PredictorError, match="columns"):
        Predictor.fit(X[:, :3], losses, proxies=["a", "b"], structure=False)


def test_no_diverged_cells_gives_a_constant_zero_probability():
    X, losses = synthetic()
    keep = [i for i, x in enumerate(losses) if x is not None]
    model = Predictor.fit(X[keep], [losses[i] for i in keep], proxies=["a", "b"], structure=False)
    assert model.classifier is None
    assert np.all(model.predict(X).p_diverge == 0.0)


# -- the model file ------------------------------------------------------------------------------------------------

def saved(tmp_path, proxies=("params", "n_blend")):
    X, losses = synthetic()
    model = Predictor.fit(X, losses, proxies=list(proxies), structure=False, config_hash="abc",
                          scoring_config={"seed": 0})
    path = model.save(tmp_path / "m.json")
    return model, path, X


def test_model_file_round_trip_and_contents(tmp_path):
    model, path, X = saved(tmp_path)
    data = json.loads(path.read_text())
    assert data["format"] == "zeronas-predictor" and data["features"] == feature_names(["params", "n_blend"], False)
    assert data["config_hash"] == "abc" and data["zeronas_version"] and len(data["sha256"]) == 64
    assert data["regressor"].startswith("tree") and data["classifier"].startswith("tree")  # LightGBM text
    loaded = load_predictor(path, config_hash="abc")
    assert np.array_equal(loaded.predict(X).score, model.predict(X).score)


def resign(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    body = {k: v for k, v in data.items() if k != "sha256"}
    data["sha256"] = _digest(body)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("change, message", [
    (lambda p: p.write_text(p.read_text().replace('"goodness_std": ', '"goodness_std": 1')), "modified"),
    (lambda p: p.write_text("{not json"), "not JSON"),
    (lambda p: p.write_text(json.dumps({"format": "other"})), "not a zeronas predictor"),
    (lambda p: resign(p, zeronas_version="0.0.1"), "fitted with zeronas 0.0.1"),
    (lambda p: resign(p, format_version=99), "format version 99"),
    (lambda p: resign(p, proxies=["params", "no_such_proxy"],
                      features=feature_names(["params", "no_such_proxy"], False)), "no_such_proxy"),
    (lambda p: resign(p, features=["x"]), "feature list"),
    (lambda p: resign(p, goodness_std="wide"), "malformed"),
])
def test_bad_model_files_are_refused(tmp_path, change, message):
    _, path, _ = saved(tmp_path)
    change(path)
    with pytest.raises(PredictorError, match=message) as info:
        load_predictor(path)
    assert str(path) in str(info.value)


def test_model_of_another_config_is_refused(tmp_path):
    _, path, _ = saved(tmp_path)
    with pytest.raises(PredictorError, match="config abc"):
        load_predictor(path, config_hash="def")
    with pytest.raises(PredictorError, match="no such model file"):
        load_predictor(tmp_path / "absent.json")


# -- ranking: evaluate rows and search fitness ------------------------------------------------------------------

def bench_cells(n: int) -> list[Architecture]:
    return Benchmark.nbnlp().sample(n, 7)


def structural_scores(archs) -> dict[str, dict[str, Score]]:
    from zeronas.proxies._structure import count_op, depth

    return {a.canonical_id: {"n_blend": Score("n_blend", float(count_op(a.cell, "blend")), "ok", seconds=0.5),
                             "cell_depth": Score("cell_depth", float(depth(a.cell)), "ok", seconds=0.25)}
            for a in archs}


def test_predictor_rows_and_search_fitness_agree_and_missing_cells_rank_last():
    archs = bench_cells(120)
    scores = structural_scores(archs)
    proxies = ["n_blend", "cell_depth"]
    X, _ = feature_matrix([a.cell for a in archs], [scores[a.canonical_id] for a in archs], proxies)
    model = Predictor.fit(X, [a.mean_test_loss for a in archs], proxies=proxies)
    del scores[archs[0].canonical_id]["cell_depth"]  # one cell lacks a feature proxy
    rows = predictor_rows(model, archs, scores)
    row = rows["predictor"]
    assert row.statuses[0] == "missing" and row.values[0] is None and row.seconds[0] is None
    assert all(s == "ok" for s in row.statuses[1:]) and row.seconds[1] == pytest.approx(0.75)
    one = model.predict(X[1:2])
    assert rows["predictor_trainable"].values[1] == pytest.approx(1 - one.p_diverge[0])
    assert rows["predictor_quality"].values[1] == pytest.approx(one.quality[0])
    assert rows["predictor"].values[1] == pytest.approx(one.quality[0] * (1 - one.p_diverge[0]))
    candidates = [Candidate(a.cell, scores[a.canonical_id], i) for i, a in enumerate(archs)]
    order = ranked(candidates, PredictorRanking(model))
    assert order[-1].canonical_id == archs[0].canonical_id and order[-1].fitness == -math.inf
    by_id = {c.canonical_id: c.fitness for c in candidates}
    for a, v in zip(archs[1:], row.values[1:]):
        assert by_id[a.canonical_id] == pytest.approx(v)


# -- learning curve ---------------------------------------------------------------------------------------------

def test_learning_curve_measures_held_out_cells_only():
    X, losses = synthetic(300)
    archs = bench_cells(300)
    data = LabelledData(archs, X, losses)
    points = learning_curve(data, ["a", "b"], labels=[40, ALL], repeats=2, structure=False)
    forty, everything = points
    assert [r["n_test"] for r in forty.repeats] == [260, 260] and forty.n_train == 40
    assert len(everything.repeats) == 5 and sum(r["n_test"] for r in everything.repeats) == 300
    assert everything.to_dict()["kendall_tau"] > forty.to_dict()["kendall_tau"] > 0.5
    assert everything.to_dict()["auc_p_diverge"] > 0.9
    assert everything.to_dict()["kendall_tau_quality"] > 0.5
    assert learning_curve(data, ["a", "b"], labels=[300], structure=False)[0].skipped


def test_parse_labels():
    assert parse_labels("10, 30,all") == [10, 30, "all"]
    for bad in ("ten", "0", "", "-5"):
        with pytest.raises(ValueError, match="--labels"):
            parse_labels(bad)


# -- the CLI, from an empty store -----------------------------------------------------------------------------

def truth_csv(tmp_path, archs, name="truth.csv"):
    path = tmp_path / name
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["recipe", "test_loss"])
        for a in archs:
            for loss in a.test_losses:
                w.writerow([a.cell.to_json(), "" if loss is None else loss])
    return path


def test_cli_fit_evaluate_search_and_curve(tmp_path):
    archs = bench_cells(60)
    truth = truth_csv(tmp_path, archs)
    store = f"sqlite:///{tmp_path / 's.db'}"
    model = tmp_path / "model.json"
    res = runner.invoke(app, ["predict", "fit", "--ground-truth", str(truth), "--proxies", CHEAP, "--store", store,
                              "--workers", "1", "--timeout", "120", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    assert "on 60 labelled cells" in res.output and model.exists()
    ev = runner.invoke(app, ["evaluate", "--ground-truth", str(truth), "--proxies", "params", "--store", store,
                             "--no-score", "--predictor", str(model), "--json", "-q"])
    assert ev.exit_code == 0, ev.output
    rows = json.loads(ev.stdout.strip().splitlines()[-1])["proxies"]
    assert rows["predictor"]["n"] == sum(not a.diverged for a in archs) and rows["predictor"]["n_failed"] == 0
    assert rows["predictor"]["kendall_tau"] > 0.5  # in-sample, on what it was fitted on
    assert "in-sample" in ev.stderr
    se = runner.invoke(app, ["search", "--predictor", str(model), "--algorithm", "random", "--budget", "12",
                             "--store", store, "--workers", "1", "--json", "-q"])
    assert se.exit_code == 0, se.output
    picks = json.loads(se.stdout)["top"]
    assert [p["rank"] for p in picks] == [1, 2, 3, 4, 5]
    assert all(set(p["scores"]) == set(CHEAP.split(",")) for p in picks)
    assert picks[0]["fitness"] >= picks[-1]["fitness"]
    both = runner.invoke(app, ["search", "--predictor", str(model), "--proxy", "params", "--store", store, "-q"])
    assert both.exit_code == 2 and "not both" in both.output
    cu = runner.invoke(app, ["predict", "curve", "--ground-truth", str(truth), "--proxies", CHEAP, "--store", store,
                             "--no-score", "--labels", "30,all", "--repeats", "2", "--objectives", "regression",
                             "--baselines", "params", "-o", str(tmp_path / "curve"), "-q"])
    assert cu.exit_code == 0, cu.output
    curve = json.loads((tmp_path / "curve" / "curve.json").read_text())
    assert list(curve["methods"]) == ["predictor (regression)", "params"]
    assert [p["labels"] for p in curve["methods"]["predictor (regression)"]] == [30, "all"]
    assert (tmp_path / "curve" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "predictor (regression)" in cu.stdout


def test_cli_errors_are_one_line(tmp_path):
    archs = bench_cells(12)
    truth = truth_csv(tmp_path, [a for a in archs if a.diverged] + [a for a in archs if not a.diverged][:4])
    store = f"sqlite:///{tmp_path / 's.db'}"
    few = runner.invoke(app, ["predict", "fit", "--ground-truth", str(truth), "--proxies", "params", "--store",
                              store, "--workers", "1", "-q", "-o", str(tmp_path / "m.json")])
    assert few.exit_code == 2 and "needs at least 5" in few.output
    lacking = runner.invoke(app, ["predict", "fit", "--proxies", "n_prod", "--labels", "30", "--store", store,
                                  "--no-score", "-q", "-o", str(tmp_path / "m.json")])
    assert lacking.exit_code == 2 and "no stored score" in lacking.output
    missing = runner.invoke(app, ["evaluate", "--ground-truth", str(truth), "--proxies", "params", "--store", store,
                                  "--no-score", "--predictor", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "no such model file" in missing.output
    (tmp_path / "bad.json").write_text('{"format": "zeronas-predictor", "format_version": 1, "sha256": "0"}')
    tampered = runner.invoke(app, ["search", "--predictor", str(tmp_path / "bad.json"), "--store", store, "-q"])
    assert tampered.exit_code == 2 and "modified" in tampered.output
    unknown = runner.invoke(app, ["predict", "fit", "--proxies", "nope", "--store", store, "-q"])
    assert unknown.exit_code == 2 and "unknown proxy 'nope'" in unknown.output
    for args, text in ((["--labels", "ten"], "not a number"), (["--objectives", "svm"], "unknown 'svm'"),
                       (["--repeats", "0"], "at least 1")):
        res = runner.invoke(app, ["predict", "curve", "--store", store, "--no-score", "-q", *args])
        assert res.exit_code == 2 and text in res.output, res.output


def test_a_prior_carries_a_predictor_fitted_on_a_few_labels():
    X, losses = synthetic(600, seed=5)
    few = [i for i, x in enumerate(losses) if x is not None][:8] + [i for i, x in enumerate(losses) if x is None][:2]
    rest = [i for i in range(600) if i not in few and losses[i] is not None]
    truth = [-losses[i] for i in rest]

    def tau(**kw):
        model = Predictor.fit(X[few], [losses[i] for i in few], proxies=["a", "b"], structure=False, **kw)
        return model, stats.kendalltau(model.predict(X[rest]).quality, truth)[0]

    plain, tau_plain = tau()
    with_prior, tau_prior = tau(prior="a", prior_higher_is_better=True)
    assert tau_prior > 0.85 and tau_prior > tau_plain + 0.2
    assert with_prior.prior == "a" and len(with_prior.prior_values) == 8
    _, backwards = tau(prior="a", prior_higher_is_better=False)
    assert backwards < tau_plain < tau_prior  # the prior's direction is used, not guessed
    x = X[rest[:3]].copy()
    x[0, 0] = np.nan  # a failed prior score ranks below every trained cell
    assert with_prior.predict(x).quality[0] < with_prior.predict(X[few]).quality.min()
    with pytest.raises(PredictorError, match="not one of the feature proxies"):
        Predictor.fit(X, losses, proxies=["a", "b"], structure=False, prior="zen")


def test_prior_survives_the_model_file(tmp_path):
    X, losses = synthetic()
    model = Predictor.fit(X, losses, proxies=["params", "n_blend"], structure=False, prior="params",
                          prior_higher_is_better=False)
    loaded = load_predictor(model.save(tmp_path / "m.json"))
    assert loaded.prior == "params" and loaded.prior_higher_is_better is False
    assert np.array_equal(loaded.predict(X).score, model.predict(X).score)


def test_the_default_features_are_every_registered_proxy_but_the_costly_ones_that_add_nothing():
    from zeronas.predict.data import EXPENSIVE, default_feature_proxies
    from zeronas.proxies.registry import list_proxies

    names = default_feature_proxies()
    registered = {s.name for s in list_proxies() if not s.name.startswith("_")}
    assert set(names) == registered - EXPENSIVE and len(names) == len(set(names))
    assert {"grasp", "ntk_cond", "ntk_trace", "zen_real", "zen_state", "ntk_cond_loss"} <= EXPENSIVE <= registered
    # the recommended method's members, the trainability check and its parts stay features
    assert {"hidden_cov", "state_escape", "hidden_rank", "state_rms", "state_memory", "zen"} <= set(names)
