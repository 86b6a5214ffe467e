"""The ENAS and DARTS recurrent spaces: published cells, the highway formula, sampling, mutation, new ops."""

from __future__ import annotations

import collections
import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

from zeronas.bench.nbnlp import load_recipe_list
from zeronas.cells import darts, enas
from zeronas.cells import nbnlp_space as nbnlp
from zeronas.cells.named import get_named_cell, list_named_cells
from zeronas.cells.ops import OPS
from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.cells.spaces import SearchSpace, get_space, list_spaces
from zeronas.models.cell import CellLayer
from zeronas.models.lm import build_model

TINY = dict(emb_size=6, hidden_size=8, n_layers=2)
ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda t: t}


def children_of(parents, n):
    kids = collections.defaultdict(list)
    for i, j in enumerate(parents, start=1):
        kids[j].append(i)
    return [kids[i] for i in range(n)]


# ----------------------------------------------------------------------------------------------
# Published cells
# ----------------------------------------------------------------------------------------------

def test_enas_ptb_is_the_authors_fixed_arc():
    # ptb_final.sh: "0 0 0 1 1 2 1 2 0 2 0 5 1 1 0 6 1 8 1 8 1 8 1" = f_0, then (input, f) per node;
    # f: 0 tanh, 1 relu. Decoded by hand:
    arc = enas.decode_highway(enas.named_cell("ENAS_PTB"))
    assert arc.activations == ("tanh", "tanh", "relu", "relu", "tanh", "tanh", "relu", "tanh", "relu", "relu",
                               "relu", "relu")
    assert arc.parents == (0, 1, 2, 2, 2, 5, 1, 6, 8, 8, 8)
    assert arc.outputs == (3, 4, 7, 9, 10, 11)  # the loose ends
    assert arc == enas.NAMED_CELLS["ENAS_PTB"] and arc.num_nodes == enas.NUM_NODES == 12


def test_enas_ptb_equals_the_darts_repos_transcription():
    """quark0/darts genotypes.py writes the ENAS cell in its own numbering (node 0 = the tanh first node);
    both sources describe the same graph: same canonical id."""
    transcribed = darts.darts_cell(
        [("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3), ("relu", 4), ("relu", 7),
         ("relu", 8), ("relu", 8), ("relu", 8)], concat=[2, 5, 6, 9, 10, 11])
    ptb = enas.named_cell("ENAS_PTB")
    assert transcribed.arch_sha1 != ptb.arch_sha1  # numbered differently ...
    assert transcribed.canonical_id == ptb.canonical_id  # ... the same cell
    # one activation or one edge off is another cell
    other = darts.darts_cell(
        [("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3), ("relu", 4), ("relu", 7),
         ("relu", 8), ("relu", 8), ("tanh", 8)], concat=[2, 5, 6, 9, 10, 11])
    assert other.canonical_id != ptb.canonical_id


def test_darts_v2_genotype_and_structure():
    cell = darts.named_cell("DARTS_V2")
    genotype = darts.DARTS_GENOTYPES["DARTS_V2"]
    assert genotype == (("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5),
                        ("tanh", 3), ("relu", 5))
    assert darts.genotype_of(cell) == genotype
    # independent count: 9 highway nodes = 9 blends, 18 linears, 9 sigmoid gates + the candidates' activations
    acts = collections.Counter(a for a, _ in genotype) + collections.Counter({"tanh": 1})  # node 0: tanh
    assert cell.op_counts() == {
        "activation_relu": acts["relu"], "activation_sigm": 9 + acts["sigmoid"], "activation_tanh": acts["tanh"],
        "blend": 9, "elementwise_mean": 1, "identity": acts["identity"], "linear": 18}
    assert cell.recipe["h_new_0"]["op"] == "elementwise_mean" and len(cell.recipe["h_new_0"]["input"]) == 8
    assert "s0" not in cell.recipe["h_new_0"]["input"]  # concat = range(1, 9): node 0 is not averaged
    assert darts.SPACE.contains(cell) and not enas.SPACE.contains(cell)
    v1 = darts.named_cell("DARTS_V1")
    assert v1.canonical_id != cell.canonical_id and darts.genotype_of(v1) == darts.DARTS_GENOTYPES["DARTS_V1"]


@pytest.mark.parametrize("name", ["ENAS_PTB", "DARTS_V1", "DARTS_V2"])
def test_published_cells_validate_and_train(name):
    cell = get_named_cell(name)
    again = parse_recipe(cell.to_json(), source=name)  # round trip through JSON: a valid recipe
    assert again.canonical_id == cell.canonical_id and cell.hidden_tuple_size == 1
    model = build_model(cell, vocab_size=30, seed=0, **TINY)
    tokens = torch.randint(0, 30, (7, 3), generator=torch.Generator().manual_seed(1))
    loss, _ = model.loss(tokens[:-1], tokens[1:])
    assert torch.isfinite(loss)
    loss.backward()
    params = model.recurrent_parameters()
    per_layer = sum(len(cell.node_inputs(n)) + 1 for n in cell.recipe if cell.op(n) == "linear")  # weights + bias
    assert len(params) == TINY["n_layers"] * per_layer
    for pname, p in params:  # every node feeds the output: every cell weight gets a gradient
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_named_cells_registry():
    assert list_named_cells() == ["rnn", "lstm", "gru", "ENAS_PTB", "DARTS_V1", "DARTS_V2"]
    assert get_named_cell("lstm").recipe == reference_cell("lstm").recipe
    assert get_named_cell("enas_ptb").canonical_id == enas.named_cell("ENAS_PTB").canonical_id
    assert get_named_cell("DARTS_V2").name == "DARTS_V2"
    with pytest.raises(KeyError, match=r"no named cell 'DARTS_V3' \(known: rnn, lstm, gru, ENAS_PTB, DARTS_V1, "
                                       r"DARTS_V2\)"):
        get_named_cell("DARTS_V3")
    with pytest.raises(KeyError, match="known: ENAS_PTB"):
        enas.named_cell("darts_v2")
    with pytest.raises(KeyError, match="known: DARTS_V1, DARTS_V2"):
        darts.named_cell("ENAS_PTB")


# ----------------------------------------------------------------------------------------------
# The highway formula, numerically
# ----------------------------------------------------------------------------------------------

def direct_highway(x, h0, arc, W0, b0, Ws, bs):
    """ENAS/DARTS written out: one matmul of width 2H per node, split into the gate c and the candidate h."""
    H = h0.shape[1]
    h, outs = h0, []
    for t in range(x.shape[0]):
        ch = torch.cat([x[t], h], 1) @ W0 + b0
        c, cand = torch.sigmoid(ch[:, :H]), ACT[arc.activations[0]](ch[:, H:])
        states = [c * cand + (1 - c) * h]
        for i, j in enumerate(arc.parents, start=1):
            s = states[j]
            ch = s @ Ws[i - 1] + bs[i - 1]
            c, cand = torch.sigmoid(ch[:, :H]), ACT[arc.activations[i]](ch[:, H:])
            states.append(s + c * (cand - s))  # DARTS's form of the same highway
        h = torch.stack([states[o] for o in arc.outputs]).mean(0)
        outs.append(h)
    return torch.stack(outs), h


def copy_highway_weights(layer, arc, W0, b0, Ws, bs):
    E, H = layer.input_size, layer.hidden_size
    lin = layer.linears
    with torch.no_grad():
        for half, part in ((slice(0, H), "c"), (slice(H, 2 * H), "h")):
            lin[f"s0_{part}_pre"].weight_0.copy_(W0[:E, half].t())  # the x part
            lin[f"s0_{part}_pre"].weight_1.copy_(W0[E:, half].t())  # the h_prev part
            lin[f"s0_{part}_pre"].bias.copy_(b0[half])
            for i in range(1, arc.num_nodes):
                lin[f"s{i}_{part}_pre"].weight_0.copy_(Ws[i - 1][:, half].t())
                lin[f"s{i}_{part}_pre"].bias.copy_(bs[i - 1][half])


ARCS = {
    "darts": darts.darts_arc([("relu", 0), ("identity", 1), ("sigmoid", 0), ("tanh", 2)]),
    "enas-one-loose-end": enas.enas_arc(["relu", "tanh"], [0]),
    "enas": enas.enas_arc(["sigmoid", "identity", "tanh", "relu", "relu"], [0, 0, 1, 1]),
}


@pytest.mark.parametrize("kind", list(ARCS))
@pytest.mark.parametrize("fast_backward", [True, False])
def test_highway_cell_equals_direct_computation(kind, fast_backward):
    arc = ARCS[kind]
    cell = enas.highway_cell(arc)
    E, H, T, B = 5, 4, 6, 3
    g = torch.Generator().manual_seed(7)
    W0 = torch.randn(E + H, 2 * H, generator=g, dtype=torch.float64) * 0.5
    b0 = torch.randn(2 * H, generator=g, dtype=torch.float64) * 0.5
    Ws = [torch.randn(H, 2 * H, generator=g, dtype=torch.float64) * 0.5 for _ in range(arc.num_nodes - 1)]
    bs = [torch.randn(2 * H, generator=g, dtype=torch.float64) * 0.5 for _ in range(arc.num_nodes - 1)]
    layer = CellLayer(cell, E, H).double()
    layer.fast_backward = fast_backward
    copy_highway_weights(layer, arc, W0, b0, Ws, bs)
    x = torch.randn(T, B, E, generator=g, dtype=torch.float64)
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
    out, (h_last,) = layer(x, (h0,))
    W0.requires_grad_(True)
    ref_out, ref_h = direct_highway(x, h0, arc, W0, b0, Ws, bs)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h_last, ref_h, rtol=1e-10, atol=1e-12)
    # the gradients agree too (here: of the first node's x and h_prev weights of the gate)
    probe = torch.randn(T, B, H, generator=g, dtype=torch.float64)
    (out * probe).sum().backward()
    (ref_out * probe).sum().backward()
    gate = layer.linears["s0_c_pre"]
    torch.testing.assert_close(gate.weight_0.grad, W0.grad[:E, :H].t(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(gate.weight_1.grad, W0.grad[E:, :H].t(), rtol=1e-9, atol=1e-12)


def test_gate_and_candidate_share_one_matmul():
    """Like ENAS/DARTS's single matmul of width 2H: the layer puts both linears of a node in one group."""
    layer = CellLayer(darts.named_cell("DARTS_V2"), 5, 4)
    groups = {key: members for key, members, _ in layer._groups}
    assert sorted(groups[("h_prev_0", "x")]) == ["s0_c_pre", "s0_h_pre"]
    # nodes 2, 3, 4 all read node 1: one matmul of width 6H per step
    assert len(groups[("s1",)]) == 6


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------

SPACES = {"enas": (enas, enas.SPACE), "darts": (darts, darts.SPACE)}


def test_spaces_are_registered():
    for name, (_, space) in SPACES.items():
        assert name in list_spaces() and get_space(name) is space and isinstance(space, SearchSpace)
        assert space.name == name


def test_spaces_load_on_first_lookup():
    code = ("import sys; from zeronas.cells.spaces import get_space; "
            "assert 'zeronas.cells.darts' not in sys.modules; "
            "print(get_space('enas').name, get_space('darts').name)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["enas", "darts"]


@pytest.mark.parametrize("name", list(SPACES))
def test_samples_are_valid_deterministic_and_in_the_space(name):
    module, space = SPACES[name]
    rng = np.random.default_rng(3)
    cells = [space.sample(rng) for _ in range(40)]
    rng2 = np.random.default_rng(3)
    assert [space.sample(rng2).recipe for _ in range(40)] == [c.recipe for c in cells]
    assert module.sample_cell(5).recipe == module.sample_cell(5).recipe
    assert len({c.canonical_id for c in cells}) == 40
    for cell in cells:
        assert parse_recipe(cell.recipe).canonical_id == cell.canonical_id
        assert cell.hidden_tuple_size == 1 and space.contains(cell)
        arc = enas.decode_highway(cell)
        assert enas.highway_cell(arc).recipe == cell.recipe  # decoding gives the genotype back
        if name == "enas":
            assert arc.num_nodes == 12 and arc.outputs == enas.loose_ends(arc.parents, 12)
            assert all(not kids for i, kids in enumerate(children_of(arc.parents, 12)) if i in arc.outputs)
        else:
            assert arc.num_nodes == 9 and arc.activations[0] == "tanh" and arc.outputs == tuple(range(1, 9))
        assert all(0 <= j < i for i, j in enumerate(arc.parents, start=1))
    other = SPACES["darts" if name == "enas" else "enas"][1]
    assert not any(other.contains(c) for c in cells[:10])


@pytest.mark.parametrize("name", list(SPACES))
def test_sampling_is_uniform_over_activations_and_inputs(name):
    module, space = SPACES[name]
    rng = np.random.default_rng(11)
    arcs = [enas.decode_highway(space.sample(rng)) for _ in range(600)]
    acts = collections.Counter(a for arc in arcs for a in arc.activations[1:])
    n = sum(acts.values())
    assert set(acts) == {"tanh", "relu", "sigmoid", "identity"}
    assert all(abs(c / n - 0.25) < 0.03 for c in acts.values()), acts
    last = np.array([arc.parents[-1] for arc in arcs])  # uniform over 0..N-2
    n_nodes = arcs[0].num_nodes
    assert abs(last.mean() - (n_nodes - 2) / 2) < 0.5 and set(last) == set(range(n_nodes - 1))
    first = collections.Counter(arc.activations[0] for arc in arcs)
    if name == "enas":  # node 0's activation is searched in ENAS, fixed to tanh in DARTS
        assert set(first) == set(enas.ENAS_ACTIVATIONS) and min(first.values()) > 100
    else:
        assert first == {"tanh": 600}


def test_sizes_and_bad_sizes():
    assert enas.decode_highway(enas.EnasSpace("enas-4", num_nodes=4).sample(np.random.default_rng(0))).num_nodes == 4
    assert enas.decode_highway(darts.DartsSpace("darts-3", steps=3).sample(np.random.default_rng(0))).num_nodes == 4
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            enas.sample_cell(0, bad)
        with pytest.raises(ValueError):
            darts.sample_cell(0, bad)


# ----------------------------------------------------------------------------------------------
# Mutation
# ----------------------------------------------------------------------------------------------

def genotype_diff(a, b) -> list[str]:
    diffs = [f"act{i}" for i, (x, y) in enumerate(zip(a.activations, b.activations)) if x != y]
    return diffs + [f"in{i + 1}" for i, (x, y) in enumerate(zip(a.parents, b.parents)) if x != y]


@pytest.mark.parametrize("name", list(SPACES))
def test_mutation_is_one_valid_different_step(name):
    module, space = SPACES[name]
    rng = np.random.default_rng(21)
    kinds = collections.Counter()
    start = [space.sample(rng) for _ in range(30)] + [get_named_cell("ENAS_PTB" if name == "enas" else "DARTS_V2")]
    for cell in start:
        for _ in range(4):
            new = space.mutate(cell, rng)
            assert isinstance(new, Cell) and parse_recipe(new.recipe).canonical_id == new.canonical_id
            assert space.contains(new) and new.canonical_id != cell.canonical_id
            diff = genotype_diff(enas.decode_highway(cell), enas.decode_highway(new))
            assert len(diff) == 1, diff  # exactly one activation or one input changed
            kinds[diff[0][:2]] += 1
            if name == "darts":
                assert diff != ["act0"]  # DARTS's first node is fixed
            cell = new
    assert kinds["ac"] > 20 and kinds["in"] > 20
    seed_cell = start[0]
    assert (space.mutate(seed_cell, np.random.default_rng(9)).recipe
            == space.mutate(seed_cell, np.random.default_rng(9)).recipe)


def test_mutation_reaches_the_first_activation_in_enas():
    cell = enas.named_cell("ENAS_PTB")
    firsts = {enas.decode_highway(enas.mutate_cell(cell, np.random.default_rng(s))).activations[0] for s in range(200)}
    assert firsts == set(enas.ENAS_ACTIVATIONS)


def test_mutation_skips_isomorphic_results():
    """0 -> {1, 2} (both relu), 1 -> 3: moving 3 under 2 gives the same cell; it must never be returned."""
    cell = enas.enas_cell(["tanh", "relu", "relu", "tanh"], [0, 0, 1])
    for s in range(100):
        new = enas.mutate_cell(cell, np.random.default_rng(s))
        assert new.canonical_id != cell.canonical_id


def test_cells_outside_the_spaces():
    lstm, nb = reference_cell("lstm"), nbnlp.sample_cell(0, 1)
    for space in (enas.SPACE, darts.SPACE):
        assert not space.contains(lstm) and not space.contains(nb)
        with pytest.raises(enas.NotAHighwayCell):
            space.mutate(lstm, np.random.default_rng(0))
    # an ENAS cell averaging a node that is not a loose end is not in the space
    arc = enas.HighwayArc(("tanh",) * 12, enas.NAMED_CELLS["ENAS_PTB"].parents, (0, 3, 4, 7, 9, 10, 11))
    assert not enas.SPACE.contains(enas.highway_cell(arc))
    # a DARTS genotype whose first node is not tanh
    arc = enas.HighwayArc(("relu",) + ("tanh",) * 8, tuple(range(8)), tuple(range(1, 9)))
    assert not darts.SPACE.contains(enas.highway_cell(arc))
    # two highway nodes sharing a gate: not built of highway nodes
    shared = enas.highway_recipe(enas.enas_arc(["tanh", "relu", "tanh"], [0, 0]))
    shared["s2"] = {"op": "blend", "input": ["s1_c", "s2_h", "s0"]}  # node 2 uses node 1's gate
    del shared["s2_c"], shared["s2_c_pre"]
    assert not enas.EnasSpace("enas-3", num_nodes=3).contains(parse_recipe(shared))
    assert enas.EnasSpace("enas-3", num_nodes=3).contains(enas.enas_cell(["tanh", "relu", "tanh"], [0, 0]))


def test_arc_validation():
    with pytest.raises(ValueError, match="earlier node"):
        enas.enas_arc(["tanh", "tanh"], [1])
    with pytest.raises(ValueError, match="feed no output"):
        enas.HighwayArc(("tanh", "tanh", "tanh"), (0, 0), (2,))
    with pytest.raises(ValueError, match="unknown activation"):
        enas.enas_arc(["leaky_relu"], [])
    with pytest.raises(ValueError, match="1 \\+ 2\\*\\(N-1\\)"):
        enas.parse_enas_arc("0 0")
    with pytest.raises(ValueError, match="function id 4"):
        enas.parse_enas_arc("0 0 4")
    assert enas.parse_enas_arc("3 0 2") == enas.enas_arc(["sigmoid", "identity"], [0])


# ----------------------------------------------------------------------------------------------
# The new ops
# ----------------------------------------------------------------------------------------------

def test_new_ops_numerics():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(3, 4, generator=g) for _ in range(3))
    torch.testing.assert_close(OPS["elementwise_mean"].apply([a, b, c]), (a + b + c) / 3)
    torch.testing.assert_close(OPS["elementwise_mean"].apply([a, b]), (a + b) / 2)
    torch.testing.assert_close(OPS["activation_relu"].apply([a]), a.clamp(min=0))
    assert torch.equal(OPS["identity"].apply([a]), a)
    assert OPS["elementwise_mean"].accepts(2) and not OPS["elementwise_mean"].accepts(1)
    assert OPS["identity"].accepts(1) and not OPS["identity"].accepts(2)


def test_new_ops_canonical_ids():
    base = {"p": {"op": "linear", "input": ["x", "h_prev_0"]}, "q": {"op": "linear", "input": ["h_prev_0"]},
            "a": {"op": "activation_relu", "input": ["p"]}, "b": {"op": "identity", "input": ["q"]},
            "c": {"op": "activation_tanh", "input": ["p"]}}
    ids = set()
    for order in itertools.permutations(["a", "b", "c"]):  # elementwise_mean is commutative
        ids.add(parse_recipe({**base, "h_new_0": {"op": "elementwise_mean", "input": list(order)}}).canonical_id)
    assert len(ids) == 1
    as_sum = parse_recipe({**base, "h_new_0": {"op": "elementwise_sum", "input": ["a", "b", "c"]}})
    assert as_sum.canonical_id not in ids
    # identity is an op of its own: identity(q) is not q, and relu is not leaky relu
    no_identity = {**{k: v for k, v in base.items() if k != "b"}, "h_new_0": {"op": "elementwise_mean",
                                                                              "input": ["a", "q", "c"]}}
    assert parse_recipe(no_identity).canonical_id not in ids
    leaky = {**base, "a": {"op": "activation_leaky_relu", "input": ["p"]},
             "h_new_0": {"op": "elementwise_mean", "input": ["a", "b", "c"]}}
    assert parse_recipe(leaky).canonical_id not in ids


def test_observer_sees_relu_but_not_identity():
    cell = enas.enas_cell(["relu", "identity", "tanh"], [0, 1])
    layer = CellLayer(cell, 3, 4)
    seen = []
    x = torch.randn(2, 2, 3, generator=torch.Generator().manual_seed(0))
    layer(x, observer=lambda node, op, pre, post: seen.append((node, op, torch.equal(post, torch.relu(pre))
                                                               if op == "activation_relu" else None)))
    ops = collections.Counter(op for _, op, _ in seen)
    assert ops == {"activation_sigm": 6, "activation_relu": 2, "activation_tanh": 2}  # 3 gates x 2 steps
    assert all(ok for _, op, ok in seen if op == "activation_relu")
    assert "identity" not in ops


def test_nbnlp_recipes_still_parse():
    rows = list(load_recipe_list())
    used_ops = set()
    for row in rows[::97]:
        cell = parse_recipe(row["recipe"], source=str(row["recepie_id"]))
        assert cell.arch_sha1 == row["arch_sha1"]
        used_ops.update(cell.op_counts())
    assert used_ops <= {"linear", "blend", "elementwise_prod", "elementwise_sum", "activation_tanh",
                        "activation_sigm", "activation_leaky_relu"}
    assert len(rows[::97]) > 100
