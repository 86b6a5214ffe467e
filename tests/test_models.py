"""The model builder: equivalence with PyTorch's cells, gradients, parameter counts, regularisation."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from zeronas.bench.nbnlp import load_recipe_list
from zeronas.bench.published import published_parameter_counts
from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.models.cell import CellLayer
from zeronas.models.lm import ModelConfig, build_model, count_parameters

SMALL = dict(emb_size=12, hidden_size=16, n_layers=3)


def copy_gates(layer: CellLayer, weight_ih, weight_hh, bias_ih, bias_hh, names) -> None:
    H = layer.hidden_size
    with torch.no_grad():
        for k, name in enumerate(names):
            rows = slice(k * H, (k + 1) * H)
            layer.linears[name].weight_0.copy_(weight_ih[rows])
            layer.linears[name].weight_1.copy_(weight_hh[rows])
            layer.linears[name].bias.copy_(bias_ih[rows] + bias_hh[rows])


def run_reference(ref_cell, x, state):
    outs = []
    for t in range(x.shape[0]):
        state = ref_cell(x[t], state)
        outs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outs), state


def test_lstm_recipe_matches_torch_lstmcell():
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(7, 5)
    layer = CellLayer(reference_cell("lstm"), 7, 5)
    copy_gates(layer, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh, ["i", "f", "g", "o"])
    x, h, c = torch.randn(9, 3, 7), torch.randn(3, 5), torch.randn(3, 5)
    out, (h_new, c_new) = layer(x, (h, c))
    ref_out, (ref_h, ref_c) = run_reference(ref, x, (h, c))
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(h_new, ref_h, atol=1e-5, rtol=0)
    torch.testing.assert_close(c_new, ref_c, atol=1e-5, rtol=0)


def test_gru_recipe_matches_torch_grucell():
    torch.manual_seed(1)
    ref = torch.nn.GRUCell(6, 4)
    layer = CellLayer(reference_cell("gru"), 6, 4)
    H = 4
    copy_gates(layer, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh, ["r", "z"])
    with torch.no_grad():  # the candidate's x and h parts keep separate biases, as in PyTorch
        layer.linears["n_x"].weight_0.copy_(ref.weight_ih[2 * H:])
        layer.linears["n_x"].bias.copy_(ref.bias_ih[2 * H:])
        layer.linears["n_h"].weight_0.copy_(ref.weight_hh[2 * H:])
        layer.linears["n_h"].bias.copy_(ref.bias_hh[2 * H:])
    x, h = torch.randn(8, 2, 6), torch.randn(2, 4)
    out, (h_new,) = layer(x, (h,))
    ref_out, ref_h = run_reference(ref, x, h)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(h_new, ref_h, atol=1e-5, rtol=0)


def test_rnn_recipe_matches_torch_rnncell():
    torch.manual_seed(2)
    ref = torch.nn.RNNCell(5, 3)
    layer = CellLayer(reference_cell("rnn"), 5, 3)
    copy_gates(layer, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh, ["pre"])
    x, h = torch.randn(6, 2, 5), torch.randn(2, 3)
    out, _ = layer(x, (h,))
    torch.testing.assert_close(out, run_reference(ref, x, h)[0], atol=1e-5, rtol=0)


def benchmark_cells(n: int, seed: int = 0):
    rows = {r["arch_sha1"]: r["recipe"] for r in load_recipe_list()}
    keys = sorted(rows)
    random.Random(seed).shuffle(keys)
    return [parse_recipe(rows[k]) for k in keys[:n]]


def fast_and_plain(layer: CellLayer, x: torch.Tensor) -> dict[bool, list[torch.Tensor]]:
    """For fast_backward on and off: the layer's output, then the gradients of the input and of every parameter
    of one loss over the output and the final state."""
    results = {}
    for fast in (True, False):
        layer.fast_backward = fast
        layer.zero_grad()
        x.grad = None
        out, state = layer(x)
        (out.pow(2).sum() + sum(s.sum() for s in state)).backward()
        results[fast] = [out.detach().clone(), x.grad.clone()] + [p.grad.clone() for p in layer.parameters()]
    return results


@pytest.mark.parametrize("cell", benchmark_cells(6) + [reference_cell("lstm"), reference_cell("gru")],
                         ids=lambda c: c.arch_sha1[:8])
def test_fast_backward_gives_the_same_gradients(cell):
    """The per-sequence weight gradient (deferred.py) equals autograd's per-step accumulation."""
    torch.manual_seed(3)
    layer = CellLayer(cell, 5, 6)
    x = torch.randn(7, 3, 5, requires_grad=True)
    results = fast_and_plain(layer, x)
    for a, b in zip(results[True], results[False]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("batch", [1, 4])
def test_fast_backward_at_onednn_sizes_matches_plain_autograd(batch):
    """At sizes where the products go through oneDNN (every dimension >= ONEDNN_MIN_DIM), with one row per step
    (the NTK's per-sample passes) and several: outputs and every gradient equal the plain autograd path."""
    from zeronas.models.matmul import ONEDNN_MIN_DIM, use_onednn

    torch.manual_seed(5)
    n_in, n_hidden = ONEDNN_MIN_DIM, ONEDNN_MIN_DIM + 32
    layer = CellLayer(reference_cell("lstm"), n_in, n_hidden)
    assert use_onednn(layer.linears["i"].weight_1)  # the pinned PyTorch has oneDNN's strided linear
    x = torch.randn(6, batch, n_in, requires_grad=True)
    results = fast_and_plain(layer, x)
    for a, b in zip(results[True], results[False]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_onednn_products_read_transposed_operands_correctly():
    from zeronas.models.matmul import mm, onednn_linear

    torch.manual_seed(6)
    a, b = torch.randn(300, 200), torch.randn(300, 400)
    torch.testing.assert_close(mm(a.t(), b), a.t() @ b, atol=1e-3, rtol=1e-4)  # both operands transposed views
    h, w = torch.randn(1, 256), torch.randn(256, 512)
    for weight in (w.t(), w.t().contiguous()):  # a transposed view and a contiguous weight, one row
        torch.testing.assert_close(onednn_linear(h, weight), h @ weight.t(), atol=1e-4, rtol=1e-4)
    row_slice = torch.randn(20, 1024)[:, 256:512]  # rows with a stride larger than their length
    torch.testing.assert_close(onednn_linear(row_slice, w.t()), row_slice @ w, atol=1e-4, rtol=1e-4)


def test_lm_shapes_state_and_tied_weights():
    model = build_model(reference_cell("lstm"), vocab_size=50, seed=0, **SMALL).eval()
    tokens = torch.randint(0, 50, (11, 4))
    logits, hidden = model(tokens)
    assert logits.shape == (11, 4, 50)
    assert len(hidden) == 3 and all(len(h) == 2 for h in hidden)
    assert hidden[-1][0].shape == (4, SMALL["emb_size"])  # last layer is emb-sized for tying
    assert model.decoder.weight is model.encoder.weight
    # carrying the state over equals running the whole sequence at once
    first, h1 = model(tokens[:5])
    second, _ = model(tokens[5:], h1)
    torch.testing.assert_close(torch.cat([first, second]), logits, atol=1e-5, rtol=0)


def test_seeded_build_is_deterministic_and_seed_sensitive():
    a = build_model(reference_cell("gru"), vocab_size=30, seed=5, **SMALL)
    b = build_model(reference_cell("gru"), vocab_size=30, seed=5, **SMALL)
    c = build_model(reference_cell("gru"), vocab_size=30, seed=6, **SMALL)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q), name
    assert not all(torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))


def test_initialisation_follows_nasbench_nlp():
    model = build_model(reference_cell("lstm"), vocab_size=30, seed=0, **SMALL)
    bound = 1 / SMALL["hidden_size"] ** 0.5
    layer0 = model.layers[0]
    assert all(p.abs().max() <= bound for p in layer0.parameters())
    assert model.encoder.weight.abs().max() <= 0.1
    assert torch.count_nonzero(model.decoder.bias) == 0


def test_dropouts_act_only_in_training():
    model = build_model(reference_cell("lstm"), vocab_size=40, seed=0, **SMALL)
    tokens = torch.randint(0, 40, (6, 3))
    model.train()
    torch.manual_seed(0)
    a, _ = model(tokens)
    torch.manual_seed(1)
    b, _ = model(tokens)
    assert not torch.allclose(a, b)  # dropout masks differ
    model.eval()
    c, _ = model(tokens)
    d, _ = model(tokens)
    assert torch.equal(c, d)
    quiet = build_model(reference_cell("lstm"), vocab_size=40, seed=0,
                        config=ModelConfig(**SMALL).without_dropout()).train()
    torch.manual_seed(0)
    e, _ = quiet(tokens)
    torch.manual_seed(1)
    f, _ = quiet(tokens)
    assert torch.equal(e, f)


def test_loss_is_mean_token_cross_entropy_and_backprops_into_cells():
    model = build_model(reference_cell("rnn"), vocab_size=20, seed=0, **SMALL).eval()
    tokens = torch.randint(0, 20, (5, 2))
    targets = torch.randint(0, 20, (5, 2))
    loss, _ = model.loss(tokens, targets)
    assert 2.0 < loss.item() < 4.0  # close to log(20) = 3.0 at initialisation
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in model.recurrent_parameters())


def sample_published_counts(n: int, seed: int = 0):
    rows = sorted(set(published_parameter_counts()))
    return random.Random(seed).sample(rows, n)


def test_parameter_counts_match_published_counts():
    """A sample here; benchmarks/check_parameter_counts.py checks every run."""
    recipes = {row["recepie_id"]: row["recipe"] for row in load_recipe_list()}
    sample = sample_published_counts(300)
    for rid, published in sample:
        assert count_parameters(parse_recipe(recipes[rid])) == published, rid
    for rid, published in itertools.islice(sample, 3):  # and for real, on built models
        assert build_model(parse_recipe(recipes[rid])).num_parameters() == published, rid


def test_weight_drop_changes_recurrent_weights_only_in_training():
    model = build_model(reference_cell("lstm"), vocab_size=20, seed=0, config=ModelConfig(
        **SMALL, dropout=0, dropouth=0, dropouti=0, dropoute=0, wdrop=0.9))
    tokens = torch.randint(0, 20, (4, 2))
    model.eval()
    base, _ = model(tokens)
    model.train()
    torch.manual_seed(0)
    dropped, _ = model(tokens)
    assert not torch.allclose(base, dropped)
