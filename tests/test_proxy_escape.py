"""``state_escape``: a squashed cell returns from a large state, a cell with unbounded products escapes; the score
stays finite however fast the state blows up."""

from __future__ import annotations

import math

import pytest

from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.proxies import TINY, score_cell
from zeronas.proxies._escape import ESCAPE_LOG, HORIZON, N_SEQUENCES, RADII, escape_rates
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import get_proxy

# h = linear(x, h) * linear(h): a product of two unbounded linear maps of the state, degree 2 in h
QUADRATIC = {"h_new_0": {"op": "elementwise_prod", "input": ["node_0", "node_1"]},
             "node_0": {"op": "linear", "input": ["x", "h_prev_0"]},
             "node_1": {"op": "linear", "input": ["h_prev_0"]}}


@pytest.fixture(scope="module")
def corpus():
    from zeronas.data.corpus import load_ptb

    return load_ptb()


def test_squashed_cells_return_and_a_quadratic_cell_escapes(corpus) -> None:
    for name in ("rnn", "lstm", "gru"):
        score = score_cell(reference_cell(name), ["state_escape"], TINY, corpus)["state_escape"]
        assert score.ok and score.value < 0, (name, score)
    score = score_cell(parse_recipe(QUADRATIC), ["state_escape"], TINY, corpus)["state_escape"]
    assert score.ok and score.value > 0 and math.isfinite(score.value)


def test_an_escaping_trajectory_stops_with_a_finite_rate(corpus) -> None:
    ctx = ScoringContext(parse_recipe(QUADRATIC), TINY, corpus)
    rates = escape_rates(ctx)
    assert rates.shape == (len(RADII), N_SEQUENCES)
    big = rates[-1]  # from RMS 4096 the degree-2 map blows up within a few steps
    assert bool((big > ESCAPE_LOG / HORIZON).all())  # escaped long before the horizon
    assert bool(rates.isfinite().all())
    assert escape_rates(ctx) is rates  # cached


def test_state_escape_is_a_registered_gate() -> None:
    spec = get_proxy("state_escape")
    assert not spec.higher_is_better and spec.gate == 0.0 and spec.needs_data
