"""Successive halving: the schedule's checks and arithmetic, and the driver on hand-made curves with known answers."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from zeronas.refine import Schedule, ScheduleError, parse_rungs, successive_halving


def test_cost_of_the_issue_schedule():
    s = Schedule((1, 3, 9), eta=3)
    assert s.sizes(27) == (27, 9, 3)
    assert s.cost(27) == 27 * 1 + 9 * 2 + 3 * 6 == 63
    assert s.cost(1) == 9  # one candidate trains to the last rung
    assert Schedule((1, 2, 6), eta=3).cost(40) == 40 * 1 + 13 * 1 + 4 * 4  # 40 // 3 = 13, 13 // 3 = 4


def test_survivors():
    s = Schedule((1.0, 2.0), eta=3)
    assert [s.survivors(n) for n in (1, 2, 3, 5, 8, 9, 27)] == [1, 1, 1, 1, 2, 3, 9]
    with pytest.raises(ScheduleError, match="at least one candidate"):
        s.survivors(0)


def test_geometric_and_fractional_rungs():
    assert Schedule.geometric(1, 3, 3).rungs == (1.0, 3.0, 9.0)
    assert Schedule.geometric(0.25, 3, 3).rungs == (0.25, 0.75, 2.25)
    assert Schedule(parse_rungs("0.25,0.75,2.25")).cost(9) == pytest.approx(9 * 0.25 + 3 * 0.5 + 1 * 1.5)
    assert Schedule((1, 3, 9)).describe() == "rungs 1,3,9 epochs, eta 3"


@pytest.mark.parametrize("kwargs, message", [
    ({"rungs": (1, 3, 2)}, "rungs must increase: 2 after 3"),
    ({"rungs": (0.25, 0.75, 0.75)}, "rungs must increase: 0.75 after 0.75"),
    ({"rungs": ()}, "rungs must hold at least one budget"),
    ({"rungs": (0, 1)}, "rungs must be positive"),
    ({"rungs": (-1.0,)}, "rungs must be positive"),
    ({"rungs": (1, float("nan"))}, "rungs must be positive finite"),
    ({"rungs": (1, float("inf"))}, "rungs must be positive finite"),
    ({"rungs": (1, "3")}, "rungs must be positive finite"),
    ({"rungs": "1,3"}, "rungs must be a sequence of numbers"),
    ({"rungs": (1, 3), "eta": 1}, "eta must be an integer >= 2"),
    ({"rungs": (1, 3), "eta": 2.5}, "eta must be an integer >= 2"),
    ({"rungs": (1, 3), "unit": "steps"}, "unit must be one of epochs, tokens"),
    ({"rungs": (1000, 1500.5), "unit": "tokens"}, "rungs in tokens must be whole numbers"),
])
def test_bad_schedules(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule(**kwargs)
    assert issubclass(ScheduleError, ValueError)


@pytest.mark.parametrize("text, message", [
    ("", "comma-separated numbers"),
    ("1,,3", "comma-separated numbers"),
    ("1,three", "rungs must be numbers: 'three'"),
])
def test_bad_rung_text(text, message):
    with pytest.raises(ScheduleError, match=message):
        parse_rungs(text)


def test_parse_rungs():
    assert parse_rungs("0.25, 0.75,2.25") == (0.25, 0.75, 2.25)
    assert parse_rungs("4000") == (4000.0,)


def _curves(table):
    """A measure over {name: {budget: ppl}}, recording the calls."""
    calls = []

    def measure(name, budget):
        calls.append((name, budget))
        return table[name][budget]

    return measure, calls


def test_late_bloomer_wins():
    # c is worst-but-one at rung 1 but best at 3 and 9; d is best early and fades; e and f are dropped at rung 1
    table = {
        "a": {1: 300.0, 3: 200.0, 9: 150.0},
        "b": {1: 250.0, 3: 190.0, 9: 140.0},
        "c": {1: 260.0, 3: 150.0, 9: 100.0},
        "d": {1: 200.0, 3: 170.0, 9: 160.0},
        "e": {1: 400.0},
        "f": {1: 500.0},
    }
    measure, calls = _curves(table)
    res = successive_halving(list(table), Schedule((1, 3, 9), eta=2), measure)
    # rung 1: 6 measured, 3 go on (d, b, c); rung 3: c, d, b measured, 1 goes on (c)
    assert calls == [(n, 1.0) for n in "abcdef"] + [("b", 3.0), ("c", 3.0), ("d", 3.0), ("c", 9.0)]
    assert res.winner == "c" and res.winner_index == 2
    assert [t.rung for t in res.traces] == [0, 1, 2, 1, 0, 0]
    assert res.traces[2].ppl == (260.0, 150.0, 100.0)
    assert res.spent == 1 + 3 + 9 + 3 + 1 + 1 == Schedule((1, 3, 9), eta=2).cost(6)
    assert [t.candidate for t in res.ranking()] == ["c", "d", "b", "a", "e", "f"]


def test_spent_equals_cost_and_winner_is_true_best_when_order_is_stable():
    # 27 candidates whose order never changes: the best (lowest index ppl) always wins, spending cost(27) = 63
    measure = lambda i, budget: 100.0 + i + 50.0 / budget  # noqa: E731
    res = successive_halving(list(range(27)), Schedule((1, 3, 9)), measure)
    assert res.winner == 0
    assert res.spent == 63
    assert sorted(t.rung for t in res.traces) == [0] * 18 + [1] * 6 + [2] * 3


def test_ties_go_to_the_earlier_candidate_and_repeat_exactly():
    measure = lambda i, budget: 100.0  # noqa: E731
    s = Schedule((1, 2), eta=3)
    res = successive_halving(["x", "y", "z", "w"], s, measure)
    assert res.winner == "x"
    assert [t.rung for t in res.traces] == [1, 0, 0, 0]
    assert successive_halving(["x", "y", "z", "w"], s, measure) == res


def test_diverged_rank_last_and_never_go_on():
    table = {
        "a": {1: math.nan},
        "b": {1: 300.0, 3: 250.0},
        "c": {1: math.inf},
        "d": {1: 280.0, 3: math.nan},
    }
    measure, calls = _curves(table)
    res = successive_halving(list(table), Schedule((1, 3), eta=2), measure)
    assert calls[4:] == [("b", 3.0), ("d", 3.0)]
    assert res.winner == "b"
    assert res.traces[3].diverged and not res.traces[1].diverged
    assert [t.candidate for t in res.ranking()] == ["b", "d", "a", "c"]


def test_diverged_do_not_fill_survivor_slots():
    # 4 candidates, eta 2: 2 slots, but only one finite -> only that one goes on
    table = {"a": {1: math.nan}, "b": {1: 120.0, 2: 110.0}, "c": {1: math.nan}, "d": {1: math.inf}}
    measure, calls = _curves(table)
    res = successive_halving(list(table), Schedule((1, 2), eta=2), measure)
    assert len(calls) == 5 and res.winner == "b" and res.spent == 1 + 2 + 1 + 1


def test_all_diverged_means_no_winner():
    measure = lambda c, budget: math.nan if budget > 1 else 100.0 + c  # noqa: E731
    res = successive_halving([0, 1, 2], Schedule((1, 3)), measure)
    assert res.winner is None and res.winner_index is None and res.winner_trace is None
    assert res.last_rung == 1
    assert res.traces[0].ppl[0] == 100.0 and math.isnan(res.traces[0].ppl[1])


def test_single_candidate_and_no_candidates():
    res = successive_halving(["only"], Schedule((1, 3)), lambda c, b: 10.0 / b)
    assert res.winner == "only" and res.traces[0].ppl == (10.0, 10.0 / 3) and res.spent == 3
    with pytest.raises(ScheduleError, match="at least one candidate"):
        successive_halving([], Schedule((1, 3)), lambda c, b: 1.0)


def test_resume_by_replay_with_a_cache():
    """A measure that raises after N calls (a kill), then a rerun served from the cache, gives the same result."""
    truth = {i: {b: 100.0 + ((i * 7) % 11) * b for b in (1.0, 3.0, 9.0)} for i in range(12)}
    s = Schedule((1, 3, 9))
    full = successive_halving(list(range(12)), s, lambda c, b: truth[c][b])
    cache: dict[tuple[int, float], float] = {}

    class Killed(Exception):
        pass

    def flaky(c, b, limit=[7]):
        if limit[0] == 0:
            raise Killed
        limit[0] -= 1
        cache[(c, b)] = truth[c][b]
        return cache[(c, b)]

    with pytest.raises(Killed):
        successive_halving(list(range(12)), s, flaky)
    fresh = []

    def resumed(c, b):
        if (c, b) not in cache:
            fresh.append((c, b))
            cache[(c, b)] = truth[c][b]
        return cache[(c, b)]

    assert successive_halving(list(range(12)), s, resumed) == full
    assert len(fresh) == 12 + 4 + 1 - 7


def test_import_is_torch_free():
    code = ("import sys, zeronas.refine.halving, zeronas.refine.replay, zeronas.refine.scores; "
            "zeronas.refine.curves.CurveTable.bundled(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
