"""Replay of shortlist policies on learning curves: hand-made tables with known answers, every bad input, and the
bundled WikiText-2 table."""

from __future__ import annotations

import gzip
import io
import json
import math

import pytest

from zeronas.cells.reference import REFERENCE_RECIPES
from zeronas.core.score import Score
from zeronas.refine.curves import NEEDED, CurveError, CurveTable
from zeronas.refine.halving import Schedule
from zeronas.refine.policies import (DiverseTopK, FullTraining, Halving, Oracle, PolicyError, RandomK, Ranker,
                                     TopFractionK, TopK, TrainingFreeTop1)
from zeronas.refine.replay import ReplayError, best_thresholds, draw_pools, format_table, replay

COLUMNS = ("arch_sha1", "recepie_id", "status", "epoch", "train_loss", "val_loss", "test_loss", "wall_seconds",
           "num_params", "recipe")
ACTS = ("activation_tanh", "activation_sigm", "activation_leaky_relu")


def recipe(n: int, *, rename: str = "") -> dict:
    """A distinct valid cell for each n: a chain of activations after a linear node, spelled by n in base 3."""
    nodes = {f"{rename}f": {"op": "linear", "input": ["x", "h_prev_0"]}}
    prev, digits = f"{rename}f", []
    m = n + 1
    while m:
        digits.append(m % 3)
        m //= 3
    for i, d in enumerate(digits):
        name = "h_new_0" if i == len(digits) - 1 else f"{rename}a{i}"
        nodes[name] = {"op": ACTS[d], "input": [prev]}
        prev = name
    return nodes


def csv_text(logs: list[dict], columns=COLUMNS) -> str:
    """logs: {"id", "recipe", "val": [...], "test": [...], "sec": [...], "status"}: one row per epoch."""
    out = io.StringIO()
    out.write(",".join(columns) + "\n")
    for log in logs:
        for e, (v, t, s) in enumerate(zip(log["val"], log["test"], log["sec"]), start=1):
            row = {"arch_sha1": "x", "recepie_id": log["id"], "status": log.get("status", "OK"), "epoch": e,
                   "train_loss": v, "val_loss": v, "test_loss": t, "wall_seconds": s, "num_params": 1,
                   "recipe": json.dumps(log["recipe"], sort_keys=True)}
            out.write(",".join(_quote(row[c]) for c in columns) + "\n")
    return out.getvalue()


def _quote(v) -> str:
    s = str(v)
    return '"' + s.replace('"', '""') + '"' if ("," in s or '"' in s) else s


def log(i: int, val, test=None, sec=None, *, rec=None, status="OK") -> dict:
    val = [math.log(v) for v in val]
    test = val if test is None else [math.log(v) for v in test]
    return {"id": i, "recipe": recipe(i) if rec is None else rec, "val": val, "test": test,
            "sec": sec or [10.0] * len(val), "status": status}


def table(logs: list[dict], tmp_path, name="curves.csv.gz") -> CurveTable:
    path = tmp_path / name
    data = csv_text(logs).encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return CurveTable.load(path)


# --------------------------------------------------------------------------------------------------------------
# Reading a table
# --------------------------------------------------------------------------------------------------------------

def test_read_dedupe_and_values(tmp_path):
    same = recipe(5, rename="q_")  # the cell of log 5, spelled with other node names
    t = table([log(5, [300, 200, 150]), log(2, [400, 300, 250], sec=[1, 2, 3]), log(9, [310, 210, 160], rec=same)],
              tmp_path)
    assert len(t) == 2 and t.final_epoch == 3
    c2, c5 = t.cells
    assert c2.log.log_id == 2 and c5.log.log_id == 5 and c5.log_ids == (5, 9)  # lowest id represents the cell
    assert c2.ppl_at(2) == pytest.approx(300) and c5.final_ppl == pytest.approx(150)
    assert c2.seconds_to(2) == 3 and c2.seconds_to(3) == 6
    assert t.get(c5.canonical_id) is c5
    assert c2.label == "#2" and not c2.reference


def test_failed_log_reports_logged_epochs_then_diverges(tmp_path):
    t = table([log(1, [300, 200, 150]), log(2, [250, 180], status="loss is nan!"),
               log(3, [260, math.nan, math.nan])], tmp_path, "c.csv")
    ok, failed, nan = t.cells
    assert failed.ppl_at(1) == pytest.approx(250) and failed.ppl_at(3) == math.inf
    assert failed.final_ppl == math.inf and not failed.trained and failed.seconds_to(3) == 20
    assert nan.ppl_at(2) == math.inf and nan.final_ppl == math.inf
    assert ok.trained


def test_references_are_flagged(tmp_path):
    t = table([log(1000001, [100, 90], rec=recipe(40)), log(7, [120, 95], rec=REFERENCE_RECIPES["gru"]),
               log(8, [130, 99])], tmp_path)
    assert [c.reference for c in t] == ["gru", "", "nbnlp-lstm"]  # in order of recepie_id
    assert [c.log.log_id for c in t.without_references()] == [8]


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.replace("val_loss", "valid"), "no column val_loss"),
    (lambda s: s.replace("wall_seconds", "w").replace("recipe", "r"), "no column wall_seconds, recipe"),
    (lambda s: s.replace(",OK,2,", ",OK,x,", 1), "row 3: epoch is not an integer"),
    (lambda s: s.replace(",OK,2,", ",OK,1,", 1), "row 3: log 1 has epoch 1 twice"),
    (lambda s: s.replace(",OK,2,", ",OK,4,", 1), "log 1 has no epoch 2"),
    (lambda s: s.replace(",OK,1,", ",OK,0,", 1), "row 2: epoch must be 1 or more"),
    (lambda s: s.replace(",10.0,", ",-1,", 1), "row 2: wall_seconds must be a finite number >= 0"),
    (lambda s: s.replace(",10.0,", ",soon,", 1), "row 2: wall_seconds is not a number"),
    (lambda s: s.replace(",OK,1,", ",FAIL,1,", 1), "row 3: log 1 changes its status or recipe"),
    (lambda s: s.replace("h_new_0", "h_new_9"), "log 1: bad recipe"),
    (lambda s: s.split("\n")[0] + "\n", "no rows"),
    (lambda s: s.replace(",1,", ",1,extra,", 1), "row 2: wrong number of fields"),
])
def test_bad_tables(tmp_path, mutate, message):
    text = mutate(csv_text([log(1, [300, 200]), log(2, [310, 220])]))
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CurveError, match=message) as err:
        CurveTable.load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_ok_log_shorter_than_the_table(tmp_path):
    with pytest.raises(CurveError, match="log 2 has status OK but ends at epoch 2 of 3"):
        table([log(1, [300, 200, 100]), log(2, [310, 220])], tmp_path)


def test_unreadable_files(tmp_path):
    with pytest.raises(CurveError, match="cannot read the curve table"):
        CurveTable.load(tmp_path / "none.csv.gz")
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b" + b"junk")
    with pytest.raises(CurveError, match="not a readable gzip file"):
        CurveTable.load(tmp_path / "broken.gz")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CurveError, match="not UTF-8"):
        CurveTable.load(tmp_path / "bin.csv")


@pytest.mark.parametrize("schedule, message", [
    (Schedule((0.25, 0.75, 2.25)), "rung 0.25 epochs cannot be read from per-epoch logs"),
    (Schedule((1, 3, 9)), "rung 9 epochs is beyond the logged 3"),
    (Schedule((1000, 3000), unit="tokens"), "rungs in tokens cannot be replayed"),
])
def test_schedules_a_table_cannot_replay(tmp_path, schedule, message):
    t = table([log(1, [300, 200, 100])], tmp_path)
    with pytest.raises(CurveError, match=message):
        t.check_schedule(schedule)
    assert t.check_schedule(Schedule((1, 3))) == (1, 3)


# --------------------------------------------------------------------------------------------------------------
# Policies and the replay on a hand-made table
# --------------------------------------------------------------------------------------------------------------

# ten cells: ids 1..10. Final (epoch 3) ppl = 100 + 10*id; cell 1 is the best but slow to start (worst at epoch 1);
# cell 10 diverged. Training-free score hidden_cov: higher is better, cell i scores 20 - i except cell 1 (0.0);
# state_escape fails (> 0) for cells 9 and 10.
def _hand_table(tmp_path) -> CurveTable:
    logs = []
    for i in range(1, 10):
        final = 100 + 10 * i
        first = 900 if i == 1 else 300 + i
        logs.append(log(i, [first, final + 50, final], sec=[float(i)] * 3))
    logs.append(log(10, [280, 250], sec=[5.0, 5.0], status="loss is nan!"))
    return table(logs, tmp_path)


def _hand_ranker(t: CurveTable) -> Ranker:
    scores = {}
    for c in t:
        i = c.log.log_id
        scores[c.canonical_id] = {"hidden_cov": Score("hidden_cov", 0.0 if i == 1 else 20.0 - i, "ok"),
                                  "state_escape": Score("state_escape", 1.0 if i >= 9 else -1.0, "ok")}
    return Ranker(scores, {"hidden_cov": True, "state_escape": False})


def _ids(cells) -> list[int]:
    return [c.log.log_id for c in cells]


def test_shortlists(tmp_path):
    import numpy as np

    t = _hand_table(tmp_path)
    rk, rng, pool = _hand_ranker(t), np.random.default_rng(0), list(t)
    assert _ids(TopK(3, "hidden_cov")(pool, rk, rng)) == [2, 3, 4]
    assert _ids(rk.order("hidden_cov!state_escape", pool)) == [2, 3, 4, 5, 6, 7, 8, 1, 9, 10]
    assert _ids(rk.passes("state_escape", pool)) == list(range(1, 9))
    drawn = RandomK(4, "state_escape")(pool, rk, rng)
    assert len(drawn) == 4 and set(_ids(drawn)) <= set(range(1, 9))
    assert set(_ids(TopFractionK(2, 0.3, "hidden_cov")(pool, rk, rng))) <= {2, 3, 4}
    assert _ids(RandomK(20)(pool, rk, rng)) == list(range(1, 11))  # fewer cells than k: all of them


def test_diverse_shortlist_alternates_hidden_tuple_sizes(tmp_path):
    import numpy as np

    two = dict(recipe(50), h_new_1={"op": "activation_tanh", "input": ["h_prev_1"]})
    two["f"] = {"op": "linear", "input": ["x", "h_prev_0", "h_prev_1"]}
    t = table([log(1, [300, 200]), log(2, [300, 210]), log(3, [300, 220], rec=two)], tmp_path)
    scores = {c.canonical_id: {"hidden_cov": Score("hidden_cov", float(10 - c.log.log_id), "ok")} for c in t}
    rk = Ranker(scores, {"hidden_cov": True})
    assert [c.hidden_tuple_size for c in t] == [1, 1, 2]
    assert _ids(DiverseTopK(2, "hidden_cov")(list(t), rk, np.random.default_rng(0))) == [1, 3]


def test_policies_on_the_whole_table(tmp_path):
    import numpy as np

    t = _hand_table(tmp_path)
    rk, pool = _hand_ranker(t), list(t)
    rng = np.random.default_rng(0)
    # halving over all 10, rungs 1, 3, eta 3: epoch 1 keeps the 3 best (10: 280, 2: 302, 3: 303); cell 10 diverges
    # at epoch 3, so cell 2 (120) wins over 3 (130). Cost: 10*1 + 3*2 = 16 epochs, seconds 1+..+9 at epoch 1,
    # then cells 2, 3 (3 epochs of 2 and 3 s) and cell 10 (its 2 logged epochs of 5 s).
    out = Halving(RandomK(10), Schedule((1, 3)), label="h").run(pool, [], rk, rng)
    assert out.pick.log.log_id == 2 and out.epochs == 16
    assert out.seconds == sum(range(1, 10)) - 2 - 3 + 6 + 9 + 5 + 5
    full = FullTraining(TopK(10, "hidden_cov")).run(pool, [], rk, rng)
    assert full.pick.log.log_id == 1 and full.epochs == 30  # the slow starter is best once trained to the end
    assert TrainingFreeTop1("hidden_cov").run(pool, [], rk, rng).pick.log.log_id == 2
    oracle = Oracle().run(pool, [], rk, rng)
    assert oracle.pick.log.log_id == 1 and oracle.epochs == 30
    with pytest.raises(PolicyError, match="whole epochs only"):
        Halving(RandomK(3), Schedule((0.5, 1.0))).run(pool, [], rk, rng)


def test_replay_known_answers(tmp_path):
    t = _hand_table(tmp_path)
    rk = _hand_ranker(t)
    pols = [Halving(TopK(3, "hidden_cov!state_escape"), Schedule((1, 3)), label="top3"), Oracle(),
            TrainingFreeTop1("hidden_cov")]
    rep = replay(t, pols, rk, default="top3", repeats=3, pool_fraction=1.0)
    d = rep.to_dict()
    assert d["default"] == "top3" and set(d["policies"]) == {"top3", "oracle", "top1[hidden_cov]"}
    # 9 trained cells: best 1% and best 5% are the best one cell (110 ppl); the oracle always finds it
    assert d["meta"]["best1_ppl"] == pytest.approx(110) and d["meta"]["n_trained"] == 9
    assert d["policies"]["oracle"]["p_best1"] == 1.0 and d["policies"]["oracle"]["median_pick_ppl"] == \
        pytest.approx(110)
    top3 = d["policies"]["top3"]  # cells 2, 3, 4: 2 wins (120 ppl); 3 + 1*2 = 5 epochs; seconds 2*3 + 3 + 4
    assert top3["median_pick_ppl"] == pytest.approx(120) and top3["p_best1"] == 0.0
    assert top3["mean_epochs"] == 5 and top3["mean_seconds"] == 13 and top3["p_diverged"] == 0.0
    assert d["policies"]["top1[hidden_cov]"]["mean_epochs"] == 0
    text = format_table(rep)
    assert "* top3" in text and "120.0" in text
    assert json.loads(json.dumps(d)) == d


def test_references_run_beside(tmp_path):
    logs = [log(1000001, [200, 90], rec=recipe(60)), log(1000002, [250, 95], rec=recipe(61))]
    logs += [log(i, [300 + i, 100 + i]) for i in range(1, 7)]
    t = table(logs, tmp_path)
    scores = {c.canonical_id: {"hidden_cov": Score("hidden_cov", float(c.log.log_id), "ok")} for c in t}
    rk = Ranker(scores, {"hidden_cov": True})
    pols = [Halving(TopK(2, "hidden_cov"), Schedule((1, 2), eta=2), label="h"), TrainingFreeTop1("hidden_cov")]
    out = replay(t, pols, rk, default="h", repeats=4, pool_fraction=1.0, references=True).to_dict()
    assert out["meta"]["best_reference_ppl"] == pytest.approx(90)
    # top 2 (cells 6, 5) + both references: the LSTM reference (200 at epoch 1) wins
    assert out["policies"]["h"]["median_pick_ppl"] == pytest.approx(90)
    assert out["policies"]["h"]["p_worse_than_reference"] == 0.0 and out["policies"]["h"]["mean_epochs"] == 6
    assert out["policies"]["top1[hidden_cov]"]["p_worse_than_reference"] == 1.0  # cell 6: 106 > 90
    left_out = replay(t, pols, rk, default="h", repeats=4, pool_fraction=1.0).to_dict()
    assert left_out["meta"]["n_candidates"] == 6 and "p_worse_than_reference" not in left_out["policies"]["h"]


def test_pools_are_seeded():
    cells = list(range(100))
    a = draw_pools(cells, 5, 0.8, seed=1)  # type: ignore[arg-type]
    assert a == draw_pools(cells, 5, 0.8, seed=1) and a != draw_pools(cells, 5, 0.8, seed=2)  # type: ignore
    assert all(len(p) == 80 and p == sorted(p) and len(set(p)) == 80 for p in a)
    assert draw_pools(cells, 7, 0.8, seed=1)[:5] == a  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs, message", [
    ({"repeats": 0}, "--repeats must be an integer >= 1"),
    ({"pool_fraction": 0.0}, r"--pool-fraction must be in \(0, 1\]"),
    ({"pool_fraction": 1.5}, r"--pool-fraction must be in \(0, 1\]"),
    ({"default": "nope"}, "the default policy 'nope' is not among the policies"),
])
def test_bad_replay_arguments(tmp_path, kwargs, message):
    t = _hand_table(tmp_path)
    args = {"default": "oracle", "repeats": 2, "pool_fraction": 0.5} | kwargs
    with pytest.raises(ReplayError, match=message):
        replay(t, [Oracle()], _hand_ranker(t), **args)


def test_bad_policies(tmp_path):
    t = _hand_table(tmp_path)
    rk = _hand_ranker(t)
    with pytest.raises(CurveError, match="rung 9 epochs is beyond the logged 3"):
        replay(t, [Halving(TopK(3), Schedule((1, 9)), label="x")], rk, default="x")
    with pytest.raises(PolicyError, match="spec 'zen': "):
        replay(t, [TrainingFreeTop1("zen")], rk, default="top1[zen]")
    with pytest.raises(ReplayError, match="two policies share a name: oracle"):
        replay(t, [Oracle(), Oracle()], rk, default="oracle")
    for bad in (0, -1, 2.0, True):
        with pytest.raises(PolicyError, match="k must be an integer >= 1"):
            TopK(bad)
    with pytest.raises(PolicyError, match="fraction must be in"):
        TopFractionK(3, 0.0)


def test_best_thresholds_need_a_trained_cell(tmp_path):
    t = table([log(1, [300, 200], status="failed")], tmp_path)
    with pytest.raises(ReplayError, match="no trained cell"):
        best_thresholds(list(t))


# --------------------------------------------------------------------------------------------------------------
# The bundled table
# --------------------------------------------------------------------------------------------------------------

def test_bundled_table():
    t = CurveTable.bundled()
    assert set(NEEDED) <= set(COLUMNS)
    assert len(t) == 180 and t.final_epoch == 50 and sum(len(c.log_ids) for c in t) == 234
    assert sorted(r.reference for r in t.references) == ["nbnlp-gru", "nbnlp-lstm", "nbnlp-rnn"]
    lstm = next(r for r in t.references if r.reference == "nbnlp-lstm")
    assert lstm.final_ppl == pytest.approx(91.908, abs=1e-3)
    cands = list(t.without_references())
    assert sum(c.trained for c in cands) == 174
    finals = sorted(c.final_ppl for c in cands if c.trained)
    assert best_thresholds(cands) == (finals[1], finals[8])  # ceil(1.74) = 2 cells, ceil(8.7) = 9 cells


def test_bundled_replay_random_and_oracle():
    t = CurveTable.bundled()
    cands = list(t.without_references())
    best = min(cands, key=lambda c: c.final_ppl)
    rk = Ranker({}, {})
    pols = [Halving(RandomK(27), Schedule((1, 3, 9)), label="r27"), Oracle()]
    rep = replay(t, pols, rk, default="r27", repeats=40, seed=3)
    r27, oracle = rep.policies["r27"], rep.policies["oracle"]
    assert all(e == 63 for e in r27.epochs) and rep.meta["pool_size"] == 142
    # the oracle finds the best cell exactly in the pools that hold it
    holds = [best in pool for pool in draw_pools(cands, 40, 0.8, 3)]
    assert [p == best.final_ppl for p in oracle.picks] == holds
    assert all(p >= best.final_ppl for p in r27.picks)


# --------------------------------------------------------------------------------------------------------------
# The library entry point a CLI calls
# --------------------------------------------------------------------------------------------------------------

def test_standard_policies():
    from zeronas.refine.policies import DEFAULT_K, default_schedule, standard_policies

    pols = standard_policies()
    assert [p.name for p in pols] == ["shortlist+halving", "training-free-top1", "random+halving",
                                      "shortlist-full-training", "oracle"]
    assert pols[0].shortlist.k == DEFAULT_K and pols[0].schedule == default_schedule()
    assert pols[2].shortlist == RandomK(DEFAULT_K) and pols[2].schedule == default_schedule()
    custom = standard_policies(5, Schedule((1, 2)), "hidden_cov")
    assert custom[0].shortlist == TopK(5, "hidden_cov") and custom[3].shortlist == TopK(5, "hidden_cov")


def test_replay_curves_scores_missing_cells_then_reuses_them(tmp_path):
    from zeronas.core.config import ScoringConfig
    from zeronas.refine.replay import replay_curves
    from zeronas.store import open_store

    logs = [log(i, [300 + i, 200 - i, 100 + 5 * i]) for i in range(1, 6)]
    path = tmp_path / "c.csv"
    path.write_text(csv_text(logs))
    store = f"sqlite:///{tmp_path / 's.db'}"
    config = ScoringConfig(emb_size=8, hidden_size=8, n_layers=1, batch_size=2, seq_len=5)
    kwargs = dict(k=3, schedule=Schedule((1, 2)), spec="params", repeats=5, pool_fraction=1.0)
    first = replay_curves(path, store, config, executor="serial", **kwargs)
    with open_store(store, read_only=True) as st:
        assert len(st.scores_table(config, ["params"])) == 5
    again = replay_curves(path, store, config, score=False, **kwargs)
    assert again.to_dict() == first.to_dict()
    assert first.default == "shortlist+halving"
    d = first.to_dict()
    # epoch 2 ranks cell 5 best (195 ppl), but a shortlist of 3 by params may not hold it: the oracle finds cell 1
    assert d["policies"]["oracle"]["median_pick_ppl"] == pytest.approx(105)
    assert d["meta"]["descriptions"]["shortlist+halving"] == "top3[params]+halving(rungs 1,2 epochs, eta 3)"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"schedule": Schedule((0.5, 1.0))}, CurveError, "rung 0.5 epochs cannot be read"),
    ({"spec": "nonesuch", "schedule": Schedule((1, 2))}, ReplayError, "unknown proxy 'nonesuch'"),
    ({"spec": "hidden_cov!", "schedule": Schedule((1, 2))}, ReplayError, "spec 'hidden_cov!': .*empty proxy name"),
    ({"repeats": 0, "schedule": Schedule((1, 2))}, ReplayError, "--repeats must be"),
    ({"pool_fraction": 2.0, "schedule": Schedule((1, 2))}, ReplayError, "--pool-fraction must be"),
])
def test_replay_curves_bad_input_scores_nothing(tmp_path, kwargs, error, message):
    from zeronas.core.config import ScoringConfig
    from zeronas.refine.replay import replay_curves

    path = tmp_path / "c.csv"
    path.write_text(csv_text([log(i, [300 + i, 200 - i]) for i in range(1, 4)]))
    db = tmp_path / "s.db"
    with pytest.raises(error, match=message):
        replay_curves(path, f"sqlite:///{db}", ScoringConfig(), **kwargs)
    assert not db.exists()
