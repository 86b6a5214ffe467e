"""Building only what a proxy reads: the seeded parts equal the whole seeded model bit for bit, a frozen or
stepped cell layer computes what its forward pass computes, and the context's parts equal the model's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.models.adapters import rnn_lm
from zeronas.models.lm import ModelConfig, build_model
from zeronas.models.seeded import SeededParts, seeded_head
from zeronas.proxies import TINY, score_cell
from zeronas.proxies import _escape
from zeronas.proxies.context import ScoringContext

SMALL = ModelConfig(emb_size=12, hidden_size=16, n_layers=3).without_dropout()
# a cell with two carried states, a product and x in two groups
CELL = {"h_new_0": {"op": "activation_tanh", "input": ["node_2"]},
        "h_new_1": {"op": "elementwise_prod", "input": ["node_0", "node_1"]},
        "node_0": {"op": "linear", "input": ["x", "h_prev_0"]},
        "node_1": {"op": "linear", "input": ["h_prev_1"]},
        "node_2": {"op": "linear", "input": ["x", "h_prev_1", "h_prev_0"]}}


@pytest.fixture(scope="module")
def corpus():
    from zeronas.data.corpus import load_ptb

    return load_ptb()


def _same_parameters(a: nn.Module, b: nn.Module) -> None:
    pa, pb = list(a.named_parameters()), list(b.named_parameters())
    assert [n for n, _ in pa] == [n for n, _ in pb]
    for (name, x), (_, y) in zip(pa, pb):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("tied", [True, False])
def test_seeded_parts_are_the_seeded_model_bit_for_bit(tied):
    config = ModelConfig(emb_size=12, hidden_size=16, n_layers=3, tie_weights=tied).without_dropout()
    cell = parse_recipe(CELL)
    built = build_model(cell, 50, seed=7, config=config)
    parts = SeededParts(cell, 50, config, 7)
    _same_parameters(parts.model(), built)
    model = parts.model()
    assert model is parts.model()  # assembled once
    assert model.layers[0] is parts.layer(0)
    assert (model.decoder.weight is model.encoder.weight) == tied
    assert torch.equal(model.decoder.bias, torch.zeros(50))
    x = torch.randint(0, 50, (5, 3))
    assert torch.equal(model.eval()(x)[0], built.eval()(x)[0])


def test_a_layer_alone_has_the_whole_models_weights_and_touches_no_global_generator():
    cell = reference_cell("lstm")
    built = build_model(cell, 40, seed=3, config=SMALL)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    parts = SeededParts(cell, 40, SMALL, 3)
    _same_parameters(parts.layer(1), built.layers[1])  # draws layers 0 and 1, in order
    assert len(parts._layers) == 2  # nothing after layer 1
    assert torch.equal(torch.random.get_rng_state(), before)
    with pytest.raises(IndexError, match="layer 3 does not exist"):
        parts.layer(3)


def test_the_seeded_embedding_is_drawn_once_and_shared():
    cell_a, cell_b = reference_cell("lstm"), reference_cell("gru")
    a, b = SeededParts(cell_a, 40, SMALL, 3), SeededParts(cell_b, 40, SMALL, 3)
    assert a.embedding is b.embedding is seeded_head(40, SMALL.emb_size, None, 3)[0]
    assert a.model().encoder.weight.data_ptr() == a.embedding.data_ptr()  # shared storage, not a copy
    assert not torch.equal(SeededParts(cell_a, 40, SMALL, 4).embedding, a.embedding)
    _same_parameters(b.layer(0), build_model(cell_b, 40, seed=3, config=SMALL).layers[0])


@pytest.mark.parametrize("fast", [True, False])
def test_a_frozen_or_stepped_layer_computes_what_its_forward_computes(fast):
    cell = parse_recipe(CELL)
    layer = SeededParts(cell, 40, SMALL, 0).layer(0)
    layer.fast_backward = fast
    x = torch.randn(9, 4, SMALL.emb_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, h = layer(x)
        with layer.frozen():
            steps = []
            state = None
            for t in range(x.shape[0]):  # one call per step reuses the weights prepared on entry
                o, state = layer(x[t:t + 1], state)
                steps.append(o)
            again, h_again = layer(x)
        stepped, h_stepped = layer.run(x, on_step=lambda t, s: s)
    assert torch.equal(torch.cat(steps), out) and torch.equal(again, out)
    assert all(torch.equal(a, b) for a, b in zip(h_again, h)) and torch.equal(stepped, out)
    assert layer._frozen is None  # prepared weights are dropped on exit


def test_run_replaces_the_state_stops_and_repeats_inputs():
    layer = SeededParts(parse_recipe(CELL), 40, SMALL, 0).layer(0)
    layer.fast_backward = False
    x = torch.randn(6, 2, SMALL.emb_size, generator=torch.Generator().manual_seed(2))
    seen = []

    def zero_then_stop(t, state):
        seen.append(t)
        return None if t == 3 else tuple(torch.zeros_like(s) for s in state)

    with torch.no_grad():
        out, _ = layer.run(x, on_step=zero_then_stop)
        fresh = [layer(x[t:t + 1])[0] for t in range(4)]  # each step from the zero state
        repeated, h_rep = layer.run(x, input_repeats=3)
        plain, h_plain = layer(x.repeat(1, 3, 1))
    assert seen == [0, 1, 2, 3] and out.shape[0] == 4
    # run() projects the inputs of all steps (and of repeated sequences once) in one product: a row of a product
    # does not depend on the others, up to how the BLAS blocks a product of that many rows (float32 rounding)
    torch.testing.assert_close(out, torch.cat(fresh), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(repeated, plain, rtol=1e-6, atol=1e-6)
    for a, b in zip(h_rep, h_plain):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_context_parts_equal_the_whole_models(corpus):
    ctx = ScoringContext(reference_cell("gru"), TINY, corpus)
    outputs = ctx.layer_outputs(1)
    assert len(ctx._seeded()._layers) == 2 and ctx._template is None  # layer 3 and the decoder not built
    model = ctx.model()
    with torch.no_grad():
        emb = model.embed(ctx.inputs)
        every, _ = model.run_layers(emb, return_all=True)
    assert torch.equal(ctx.embedded_inputs, emb)
    assert torch.equal(outputs, every[1]) and torch.equal(ctx.layer_outputs(2), every[2])
    assert ctx.read_only_model() is ctx.read_only_model() and ctx.read_only_model() is not model
    with pytest.raises(IndexError, match="layer 3 does not exist"):
        ctx.layer(3)


def test_context_parts_of_a_users_model(corpus):
    torch.manual_seed(0)
    lm = rnn_lm(nn.Embedding(10_000, 16), nn.LSTM(16, 24, num_layers=2), nn.Linear(24, 10_000))
    ctx = ScoringContext(None, TINY, corpus, model=lm)
    assert ctx.n_layers == 2
    with torch.no_grad():
        emb = lm.embed(ctx.inputs)
        every, _ = lm.run_layers(emb, return_all=True)
    assert torch.equal(ctx.embedded_inputs, emb)
    assert torch.equal(ctx.layer_outputs(1), every[1]) and torch.equal(ctx.layer_outputs(0), every[0])
    assert ctx.layer(1) is ctx.read_only_model().layers[1]


def test_escape_bookkeeping_in_chunks_is_the_bookkeeping_of_every_step(corpus, monkeypatch):
    """The probe looks at its trajectories every CHUNK steps; looking after every step gives the same rates, on a
    cell whose trajectories escape at different steps and on one whose never do."""
    quadratic = {"h_new_0": {"op": "elementwise_prod", "input": ["node_0", "node_1"]},
                 "node_0": {"op": "linear", "input": ["x", "h_prev_0"]},
                 "node_1": {"op": "linear", "input": ["h_prev_0"]}}
    for cell in (parse_recipe(quadratic), reference_cell("lstm")):
        chunked = _escape.escape_rates(ScoringContext(cell, TINY, corpus))
        monkeypatch.setattr(_escape, "CHUNK", 1)
        every = _escape.escape_rates(ScoringContext(cell, TINY, corpus))
        monkeypatch.undo()
        assert torch.equal(chunked, every)


def test_recommended_method_builds_only_layer_one(corpus):
    from zeronas.proxies.runner import run_proxies

    names = ["hidden_cov", "state_escape"]
    ctx = ScoringContext(reference_cell("lstm"), TINY, corpus)
    scores = run_proxies(names, ctx)
    assert len(ctx._seeded()._layers) == 1 and ctx._template is None  # no layer 2 or 3, no decoder, no copy
    again = score_cell(reference_cell("lstm"), names, TINY, corpus)
    for name in names:
        assert scores[name].ok and scores[name].value == again[name].value
