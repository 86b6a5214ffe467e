"""Tests of the expressivity and flow proxies: zen, gradscore, grad_norm, synflow, jacob_cov, flops."""

from __future__ import annotations

import math

import pytest
import torch

from zeronas.cells.ops import OPS
from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.proxies import TINY, score_cell
from zeronas.proxies.context import ScoringContext
from zeronas.models.macs import cell_macs
from zeronas.proxies.jacob_cov import K, jacob_cov_score
from zeronas.proxies.runner import run_proxy
from zeronas.proxies.synflow import synflow_score

from contexts import ChangedContext

# The output is a product of four tanh's of small pre-activations: tiny and nearly flat in the input.
FLAT = parse_recipe({
    **{g: {"op": "linear", "input": ["x", "h_prev_0"]} for g in "abcd"},
    **{f"t{g}": {"op": "activation_tanh", "input": [g]} for g in "abcd"},
    "h_new_0": {"op": "elementwise_prod", "input": ["ta", "tb", "tc", "td"]},
})
# h_t = (W x + U h)^2 elementwise: with |weights| and ones the flow squares at every step and overflows.
SQUARE = parse_recipe({
    "a": {"op": "linear", "input": ["x", "h_prev_0"]},
    "b": {"op": "linear", "input": ["x", "h_prev_0"]},
    "h_new_0": {"op": "elementwise_prod", "input": ["a", "b"]},
})


@pytest.fixture(scope="module")
def corpus():
    from zeronas.data.corpus import load_ptb

    return load_ptb()


def value(name: str, ctx: ScoringContext) -> float:
    score = run_proxy(name, ctx)
    assert score.ok, (score.status, score.message)
    return score.value


# ----------------------------------------------------------------------------------------------- zen

def test_zen_ranks_lstm_far_above_a_flat_cell(corpus):
    lstm = value("zen", ScoringContext(reference_cell("lstm"), TINY, corpus))
    flat = value("zen", ScoringContext(FLAT, TINY, corpus))
    assert lstm - flat > 5.0  # nats: the flat cell passes on a perturbation thousands of times weaker


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_zen_is_a_log_finite_difference(cell, corpus):
    """For small alpha, ||f(x + alpha eps) - f(x)|| ~ alpha ||J eps||: a 10x smaller alpha is log(10) less."""
    big = value("zen", ScoringContext(reference_cell(cell), TINY.with_(zen_alpha=1e-2), corpus))
    small = value("zen", ScoringContext(reference_cell(cell), TINY.with_(zen_alpha=1e-3), corpus))
    assert big - small == pytest.approx(math.log(10), abs=0.01)


def test_zen_averages_over_seeded_draws(corpus):
    one = value("zen", ScoringContext(reference_cell("gru"), TINY.with_(zen_repeats=1), corpus))
    two = value("zen", ScoringContext(reference_cell("gru"), TINY.with_(zen_repeats=2), corpus))
    assert one != two and abs(one - two) < 0.5  # a second draw moves the estimate, but not far


# ----------------------------------------------------------------------------------------- gradscore

def test_gradscore_equals_a_hand_computed_gradient(corpus):
    """One tanh-RNN layer, two steps: f = sum(h1) + sum(h2), differentiated by hand."""
    config = TINY.with_(n_layers=1, seq_len=2)
    ctx = ScoringContext(reference_cell("rnn"), config, corpus)
    model = ctx.model()
    lin = model.layers[0].linears["pre"]  # inputs ["x", "h_prev_0"]
    wx, wh, b = (t.detach().double() for t in (lin.weight_0, lin.weight_1, lin.bias))
    with torch.no_grad():
        x = model.embed(ctx.inputs).double()
    h1 = torch.tanh(x[0] @ wx.T + b)
    h2 = torch.tanh(x[1] @ wx.T + h1 @ wh.T + b)
    d2 = 1 - h2 ** 2  # df/d(pre-activation at step 2)
    d1 = (1 - h1 ** 2) * (1 + d2 @ wh)  # h1 feeds f directly and through step 2
    per_sample = torch.sqrt(((d1 @ wx) ** 2).sum(1) + ((d2 @ wx) ** 2).sum(1))
    assert value("gradscore", ctx) == pytest.approx(float(per_sample.mean()), rel=1e-5)


def test_gradscore_sees_a_flat_cell(corpus):
    lstm = value("gradscore", ScoringContext(reference_cell("lstm"), TINY, corpus))
    flat = value("gradscore", ScoringContext(FLAT, TINY, corpus))
    assert lstm > 1000 * flat


def test_a_cell_that_ignores_its_input_has_zero_gradscore_and_no_jacobian_correlation(corpus):
    """x feeds only a carried state (h_1) that never reaches the layer output h_new_0 (as in one benchmark
    cell): the input gradient is exactly zero, so gradscore is 0 and jacob_cov's correlation is undefined."""
    blind = parse_recipe({
        "a": {"op": "linear", "input": ["x", "h_prev_1"]},
        "h_new_1": {"op": "activation_tanh", "input": ["a"]},
        "b": {"op": "linear", "input": ["h_prev_0"]},
        "h_new_0": {"op": "activation_tanh", "input": ["b"]},
    })
    ctx = ScoringContext(blind, TINY, corpus)
    assert value("gradscore", ctx) == 0.0
    jc = run_proxy("jacob_cov", ctx)
    assert jc.status == "nan" and jc.value is None


# ----------------------------------------------------------------------------------------- grad_norm

def test_grad_norm_is_the_weight_gradient_norm_of_the_loss(corpus):
    """Against autograd's .backward() on the plain (not deferred) cell implementation."""
    ctx = ScoringContext(reference_cell("lstm"), TINY, corpus)
    model = ctx.model(fast_backward=False)
    loss, _ = model.loss(ctx.inputs, ctx.targets)
    loss.backward()
    expected = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for _, p in model.weight_matrices()))
    everything = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters()))
    got = value("grad_norm", ctx)
    assert got == pytest.approx(expected, rel=1e-5)
    assert got != pytest.approx(everything, rel=1e-5)  # biases are left out


def test_grad_norm_weights_are_the_matrices(corpus):
    model = ScoringContext(reference_cell("gru"), TINY, corpus).model()
    names = [n for n, _ in model.weight_matrices()]
    cell_matrices = [n for n, _ in model.recurrent_parameters() if ".weight_" in n]
    assert sorted(names) == sorted(["encoder.weight"] + cell_matrices)
    assert not any("bias" in n for n in names)


# ------------------------------------------------------------------------------------------- synflow

class SignFlippedContext(ChangedContext):
    """Every parameter has the signs of about half its entries flipped."""

    def change(self, model) -> None:
        gen = torch.Generator().manual_seed(7)
        for p in model.parameters():
            p.mul_(torch.randint(0, 2, p.shape, generator=gen).to(p.dtype) * 2 - 1)


class ScaledDecoderContext(ChangedContext):
    """The tied embedding/decoder matrix doubled (a power of two: the scaling is exact in floating point)."""

    def change(self, model) -> None:
        model.encoder.weight.mul_(2.0)


def test_synflow_ignores_weight_signs(corpus):
    for cell in ("lstm", "gru"):
        base = value("synflow", ScoringContext(reference_cell(cell), TINY, corpus))
        flipped = value("synflow", SignFlippedContext(reference_cell(cell), TINY, corpus))
        assert base == flipped


def test_synflow_is_linear_in_the_decoder_scale(corpus):
    """R and every dR/dtheta are linear in |W_dec| (zero decoder bias), so the score doubles exactly."""
    base = value("synflow", ScoringContext(reference_cell("lstm"), TINY, corpus))
    scaled = value("synflow", ScaledDecoderContext(reference_cell("lstm"), TINY, corpus))
    assert scaled == pytest.approx(2 * base, rel=1e-12)


def test_synflow_overflow_is_an_inf_status(corpus):
    score = score_cell(SQUARE, ["synflow"], TINY, corpus)["synflow"]
    assert score.status == "inf" and score.value is None


def test_synflow_leaves_the_model_as_it_was(corpus):
    ctx = ScoringContext(reference_cell("gru"), TINY, corpus)
    model = ctx.model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    score = synflow_score(model, TINY.seq_len)
    assert score > 0 and math.isfinite(score)
    for n, p in model.named_parameters():
        assert p.dtype == torch.float32 and torch.equal(p, before[n]), n
    assert model.decoder.weight is model.encoder.weight
    loss, _ = model.loss(ctx.inputs, ctx.targets)  # still a working float32 model
    assert math.isfinite(float(loss.detach()))


# ----------------------------------------------------------------------------------------- jacob_cov

class SameSequenceContext(ScoringContext):
    """Every sequence of the probe batch is the first one."""

    @property
    def inputs(self):
        tokens = super().inputs
        return tokens[:, :1].expand_as(tokens).contiguous()


def test_jacob_cov_of_identical_samples(corpus):
    """C is all ones: eigenvalues B and 0 (B - 1 times)."""
    B = TINY.batch_size
    same = value("jacob_cov", SameSequenceContext(reference_cell("lstm"), TINY, corpus))
    expected = -(math.log(B + K) + 1 / (B + K) + (B - 1) * (math.log(K) + 1 / K))
    assert same == pytest.approx(expected, rel=1e-6)
    distinct = value("jacob_cov", ScoringContext(reference_cell("lstm"), TINY, corpus))
    assert same < distinct <= -B * (math.log(1 + K) + 1 / (1 + K)) + 1e-9


def test_jacob_cov_of_uncorrelated_jacobians_is_the_maximum():
    rows = torch.tensor([[1.0, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])  # zero mean, orthogonal
    assert jacob_cov_score(rows) == pytest.approx(-3 * (math.log(1 + K) + 1 / (1 + K)), rel=1e-12)
    assert math.isnan(jacob_cov_score(torch.tensor([[1.0, 2, 3], [0, 0, 0]])))  # no correlation: NaN


# --------------------------------------------------------------------------------------------- flops

def test_flops_of_the_rnn_by_hand(corpus):
    """TINY: emb 16, hidden 24, 3 layers (16->24, 24->24, 24->16), one linear(x, h) per layer, tied decoder."""
    ctx = ScoringContext(reference_cell("rnn"), TINY, corpus)
    V = ctx.vocab_size
    by_hand = (16 + 24) * 24 + (24 + 24) * 24 + (24 + 16) * 16 + 16 * V
    assert value("flops", ctx) == by_hand == 2752 + 16 * V


def test_flops_of_the_lstm_by_hand(corpus):
    """Four gate matmuls per layer plus three elementwise products (keep, write, output) of H each."""
    ctx = ScoringContext(reference_cell("lstm"), TINY, corpus)
    V = ctx.vocab_size
    by_hand = 4 * ((16 + 24) * 24 + (24 + 24) * 24 + (24 + 16) * 16) + 3 * (24 + 24 + 16) + 16 * V
    assert value("flops", ctx) == by_hand


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_flops_matmuls_match_the_built_model(cell, corpus):
    """Each cell weight entry is used once per token: matmul MACs = entries of the built model's matrices."""
    ctx = ScoringContext(reference_cell(cell), TINY, corpus)
    model = ctx.model()
    entries = sum(p.numel() for n, p in model.recurrent_parameters() if ".weight_" in n)
    decoder = model.decoder.weight.numel()
    elementwise = {"rnn": 0, "lstm": 3, "gru": 3}[cell] * (24 + 24 + 16)  # gru: reset product + blend (2)
    assert model.macs_per_token() == ctx.macs_per_token() == entries + decoder + elementwise


def test_flops_counts_every_op_of_the_cell_language():
    """A new op must be given a MAC count on purpose; an unknown one is an error, not a silent zero."""
    assert {name for name, spec in OPS.items() if spec.macs is not None} == set(OPS) - {"linear"}
    assert {name for name, spec in OPS.items() if spec.kernel is not None} == set(OPS) - {"linear"}
    assert {name for name, spec in OPS.items() if spec.region_thresholds} == {
        name for name in OPS if name.startswith("activation_")}
    cell = parse_recipe({"a": {"op": "linear", "input": ["x", "h_prev_0"]},
                         "b": {"op": "linear", "input": ["x", "h_prev_0"]},
                         "h_new_0": {"op": "blend", "input": ["a", "b", "h_prev_0"]}})
    assert cell_macs(cell, 3, 5) == 2 * (3 + 5) * 5 + 2 * 5  # two matmuls (3 + 5) x 5, blend 2 per unit
