"""The structural-count proxies (n_blend, n_leaky_relu, n_prod, cell_depth, recurrent_fanin): exact values on the
reference cells and on a hand-written recipe, worked out by hand; registered lower-is-better and weight-free."""

from __future__ import annotations

import pytest

from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.proxies import TINY, get_proxy, score_cell
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.runner import run_proxy

NAMES = ["n_blend", "n_leaky_relu", "n_prod", "cell_depth", "recurrent_fanin"]

# Two carried states; the deeper output is h_new_1 (which reads h_new_0), and h_prev_* are repeated in some nodes.
HAND = {
    "a": {"op": "linear", "input": ["x", "h_prev_0", "h_prev_0"]},
    "b": {"op": "activation_leaky_relu", "input": ["a"]},
    "h_new_0": {"op": "blend", "input": ["b", "h_prev_1", "x"]},
    "c": {"op": "elementwise_prod", "input": ["h_new_0", "h_prev_1", "h_prev_1"]},
    "d": {"op": "activation_leaky_relu", "input": ["c"]},
    "e": {"op": "activation_tanh", "input": ["d"]},
    "h_new_1": {"op": "blend", "input": ["b", "h_prev_0", "e"]},
}

EXPECTED = {
    # rnn: pre = linear(x, h_prev_0) (depth 1), h_new_0 = tanh(pre) (depth 2).
    #   no blend / leaky relu / prod; depth 2; one h_prev slot (in pre).
    "rnn": {"n_blend": 0, "n_leaky_relu": 0, "n_prod": 0, "cell_depth": 2, "recurrent_fanin": 1},
    # lstm: i, f, g, o = linear(x, h_prev_0) depth 1; i_gate, f_gate, g_act, o_gate depth 2;
    #   keep = prod(f_gate, h_prev_1) 3; write = prod(i_gate, g_act) 3; h_new_1 = sum(keep, write) 4;
    #   c_act = tanh(h_new_1) 5; h_new_0 = prod(o_gate, c_act) 6  ->  depth max(6, 4) = 6.
    #   prods: keep, write, h_new_0 = 3. h_prev slots: h_prev_0 in i, f, g, o (4) + h_prev_1 in keep (1) = 5.
    "lstm": {"n_blend": 0, "n_leaky_relu": 0, "n_prod": 3, "cell_depth": 6, "recurrent_fanin": 5},
    # gru: r, z = linear(x, h_prev_0) 1; r_gate, z_gate 2; n_x = linear(x) 1; n_h = linear(h_prev_0) 1;
    #   n_h_reset = prod(r_gate, n_h) 3; n_pre = sum(n_x, n_h_reset) 4; n = tanh 5;
    #   h_new_0 = blend(z_gate, h_prev_0, n) 6  ->  depth 6. One blend (h_new_0), one prod (n_h_reset).
    #   h_prev slots: r, z, n_h, h_new_0 = 4.
    "gru": {"n_blend": 1, "n_leaky_relu": 0, "n_prod": 1, "cell_depth": 6, "recurrent_fanin": 4},
    # hand: a 1; b 2; h_new_0 = blend(b, h_prev_1, x) 3; c = prod(h_new_0, ...) 4; d 5; e 6;
    #   h_new_1 = blend(b, h_prev_0, e) 7  ->  depth max(3, 7) = 7 (the output h_new_0 alone would give 3).
    #   blends: h_new_0, h_new_1 = 2; leaky relus: b, d = 2; prods: c = 1.
    #   h_prev slots: a 2 (h_prev_0 twice) + h_new_0 1 + c 2 (h_prev_1 twice) + h_new_1 1 = 6.
    "hand": {"n_blend": 2, "n_leaky_relu": 2, "n_prod": 1, "cell_depth": 7, "recurrent_fanin": 6},
}


def _cell(name: str):
    return parse_recipe(HAND, source="hand") if name == "hand" else reference_cell(name)


@pytest.mark.parametrize("cell_name", sorted(EXPECTED))
def test_structural_counts_are_exact(cell_name):
    results = score_cell(_cell(cell_name), NAMES, TINY)
    for name in NAMES:
        assert results[name].status == "ok", (name, results[name].message)
    assert {name: results[name].value for name in NAMES} == EXPECTED[cell_name]
    assert all(isinstance(results[name].value, float) for name in NAMES)


def test_registered_lower_is_better_and_data_free():
    for name in NAMES:
        spec = get_proxy(name)
        assert spec.higher_is_better is False and spec.needs_data is False and spec.description, name


class NoModelContext(ScoringContext):
    """A context in which building any part of the model or touching the corpus is an error."""

    def _whole(self):
        raise AssertionError("a structural proxy built the model")

    def _seeded(self):
        raise AssertionError("a structural proxy built a part of the model")

    @property
    def corpus(self):
        raise AssertionError("a structural proxy read the corpus")


def test_structural_proxies_read_only_the_cell():
    ctx = NoModelContext(reference_cell("lstm"), TINY)
    for name in NAMES:
        score = run_proxy(name, ctx)
        assert score.ok, (name, score.message)
        assert score.value == EXPECTED["lstm"][name]
