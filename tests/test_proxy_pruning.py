"""The pruning-at-initialisation proxies (snip, grasp, fisher) checked against independent computations on tiny
models: finite differences for snip and for the Hessian-gradient product of grasp, a hand-written masked RNN for
fisher."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zeronas.bench.nbnlp import load_recipe_list
from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.data.corpus import build_corpus
from zeronas.proxies import TINY, ScoringConfig, get_proxy
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.grasp import grasp, hessian_vector_product
from zeronas.proxies.runner import run_proxy
from zeronas.proxies.snip import snip

from contexts import ChangedContext

# a model small enough for a finite difference per weight: vocab 9, embedding 3, hidden 4, two layers
MICRO = ScoringConfig(batch_size=2, seq_len=5, emb_size=3, hidden_size=4, n_layers=2, seed=3)
LINES = ["the cat sat on the mat", "a dog sat on a log", "the dog saw the cat"]


@pytest.fixture(scope="module")
def micro_corpus():
    return build_corpus([("train", LINES), ("valid", LINES), ("test", LINES)], name="micro")


@pytest.fixture(scope="module")
def ptb():
    from zeronas.data.corpus import load_ptb

    return load_ptb()


def _loss64(model, ctx) -> float:
    with torch.no_grad():
        return model.loss(ctx.inputs, ctx.targets)[0].item()


def test_saliency_weights_are_the_cell_matrices_and_the_tied_embedding(micro_corpus):
    model = ScoringContext(reference_cell("lstm"), MICRO, micro_corpus).model()
    names = [n for n, _ in model.weight_matrices()]
    assert "encoder.weight" in names and "decoder.weight" not in names  # tied: counted once
    assert not any(n.endswith("bias") for n in names)
    cell_matrices = [n for n, p in model.recurrent_parameters() if p.dim() == 2]
    assert len(cell_matrices) == 2 * 4 * 2  # 2 layers x 4 gates x (x, h_prev_0)
    assert set(cell_matrices) < set(names)


@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
def test_snip_equals_finite_difference_saliency(cell_name, micro_corpus):
    """theta_i * dL/dtheta_i = dL/dc_i at c = 1 for a mask c on theta: a central difference of the loss under
    theta_i -> theta_i (1 +- eps), in float64, for every selected weight."""
    ctx = ScoringContext(reference_cell(cell_name), MICRO, micro_corpus)
    model = ctx.model(fast_backward=False).double()
    eps = 1e-6
    expected = 0.0
    n_weights = 0
    for _, p in model.weight_matrices():
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            original = flat[i].item()
            flat[i] = original * (1 + eps)
            up = _loss64(model, ctx)
            flat[i] = original * (1 - eps)
            down = _loss64(model, ctx)
            flat[i] = original
            expected += abs((up - down) / (2 * eps))
            n_weights += 1
    assert n_weights > 150
    value = snip(ctx)
    assert value == pytest.approx(expected, rel=1e-4)
    assert run_proxy("snip", ctx).value == value


def test_snip_counts_the_recurrent_cells(micro_corpus):
    """Zeroing every cell weight matrix removes their share of the sum: the score drops."""

    class NoCellWeights(ChangedContext):
        def change(self, model) -> None:
            for _, p in model.recurrent_parameters():
                if p.dim() == 2:
                    p.zero_()

    full = snip(ScoringContext(reference_cell("lstm"), MICRO, micro_corpus))
    ablated = snip(NoCellWeights(reference_cell("lstm"), MICRO, micro_corpus))
    assert 0 < ablated < full


# h_new_1 only feeds itself: node_8's weights never reach the output
DEAD_STATE = {
    "node_6": {"op": "linear", "input": ["x", "h_prev_0"]},
    "h_new_0": {"op": "activation_tanh", "input": ["node_6"]},
    "node_8": {"op": "linear", "input": ["h_prev_0", "h_prev_1"]},
    "h_new_1": {"op": "activation_tanh", "input": ["node_8"]},
}


@pytest.mark.parametrize("name", ["snip", "grasp", "fisher"])
def test_weights_that_never_reach_the_loss_count_zero(name, micro_corpus):
    """A benchmark cell (recepie_id 1007002) carries a state that never reaches the output: the proxies still
    score it, and changing the dead weights changes nothing."""
    cell = parse_recipe(DEAD_STATE)

    class DeadWeightsChanged(ChangedContext):
        def change(self, model) -> None:
            for layer in model.layers:
                layer.linears["node_8"].weight_0.mul_(5.0)

    base = run_proxy(name, ScoringContext(cell, MICRO, micro_corpus))
    changed = run_proxy(name, DeadWeightsChanged(cell, MICRO, micro_corpus))
    assert base.ok and changed.ok, (base.message, changed.message)
    assert base.value == changed.value


def _finite_difference_hg(model, ctx, weights, g, eps: float) -> list[torch.Tensor]:
    """(grad L(theta + eps g) - grad L(theta - eps g)) / (2 eps): the Hessian applied to g, without double
    backward."""
    originals = [w.detach().clone() for w in weights]

    def grad_at(sign: float) -> list[torch.Tensor]:
        with torch.no_grad():
            for w, w0, gi in zip(weights, originals, g):
                w.copy_(w0 + sign * eps * gi)
        loss, _ = model.loss(ctx.inputs, ctx.targets)
        return [x.detach() for x in torch.autograd.grad(loss, weights)]

    plus, minus = grad_at(1.0), grad_at(-1.0)
    with torch.no_grad():
        for w, w0 in zip(weights, originals):
            w.copy_(w0)
    return [(a - b) / (2 * eps) for a, b in zip(plus, minus)]


def _double_backward_hv(model, ctx, weights, v) -> list[torch.Tensor]:
    """H v as Abdelfattah et al. compute it: grad of (v . dL/dtheta) through a create_graph backward."""
    loss, _ = model.loss(ctx.inputs, ctx.targets)
    grads = torch.autograd.grad(loss, weights, create_graph=True)
    return list(torch.autograd.grad(sum((vi * gi).sum() for vi, gi in zip(v, grads)), weights))


@pytest.mark.parametrize("cell_name", ["lstm", "rnn"])
def test_grasp_hessian_gradient_product_matches_finite_differences(cell_name, micro_corpus):
    """H g by reverse-over-forward (the proxy's code) against central differences of the gradient along g, and
    against double backward, in float64."""
    ctx = ScoringContext(reference_cell(cell_name), MICRO, micro_corpus)
    model = ctx.model(fast_backward=False).double()
    named = model.weight_matrices()
    weights = [p for _, p in named]
    loss, _ = model.loss(ctx.inputs, ctx.targets)
    g = [x.detach() for x in torch.autograd.grad(loss, weights)]
    hg = hessian_vector_product(model, ctx.inputs, ctx.targets, [n for n, _ in named], g)
    fd = _finite_difference_hg(model, ctx, weights, g, eps=1e-4 / max(x.norm().item() for x in g))
    hg_flat, fd_flat = torch.cat([h.reshape(-1) for h in hg]), torch.cat([f.reshape(-1) for f in fd])
    assert hg_flat.abs().max() > 0
    assert torch.allclose(hg_flat, fd_flat, rtol=1e-5, atol=1e-7 * fd_flat.abs().max().item())
    db_flat = torch.cat([h.reshape(-1) for h in _double_backward_hv(model, ctx, weights, g)])
    assert torch.allclose(hg_flat, db_flat, rtol=1e-9, atol=1e-12 * db_flat.abs().max().item())


def test_hessian_vector_product_keeps_the_tied_embedding_tied(micro_corpus):
    """The direction on encoder.weight must also act through the (tied) decoder: compare with double backward
    on a direction that is non-zero only there."""
    ctx = ScoringContext(reference_cell("gru"), MICRO, micro_corpus)
    model = ctx.model(fast_backward=False).double()
    named = model.weight_matrices()
    weights = [p for _, p in named]
    v = [torch.zeros_like(w) if n != "encoder.weight" else torch.ones_like(w) for n, w in named]
    hv = hessian_vector_product(model, ctx.inputs, ctx.targets, [n for n, _ in named], v)
    for a, b in zip(hv, _double_backward_hv(model, ctx, weights, v)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_grasp_is_minus_theta_dot_hg_over_the_weight_matrices(micro_corpus):
    ctx = ScoringContext(reference_cell("gru"), MICRO, micro_corpus)
    model = ctx.model(fast_backward=False).double()
    weights = [p for _, p in model.weight_matrices()]
    loss, _ = model.loss(ctx.inputs, ctx.targets)
    g = [x.detach() for x in torch.autograd.grad(loss, weights)]
    fd = _finite_difference_hg(model, ctx, weights, g, eps=1e-4 / max(x.norm().item() for x in g))
    expected = -sum((w.detach() * h).sum().item() for w, h in zip(weights, fd))
    value = grasp(ctx)
    assert expected != 0
    assert value == pytest.approx(expected, rel=1e-3)


def _hand_fisher_rnn(ctx: ScoringContext) -> float:
    """Fisher of a one-layer tanh RNN written out by hand with a multiplicative mask on its activation, shared by
    all steps of a sequence: 1/(2N) sum_n (dL/dm_{n,k})^2 summed over units k."""
    model = ctx.model(fast_backward=False).double()
    lin = model.layers[0].linears["pre"]
    w_x, w_h, b = lin.weight_0, lin.weight_1, lin.bias  # inputs ["x", "h_prev_0"]
    T, B = ctx.inputs.shape
    H = w_h.shape[0]
    mask = torch.ones(B, H, dtype=torch.float64, requires_grad=True)
    emb = model.encoder.weight[ctx.inputs]
    h = torch.zeros(B, H, dtype=torch.float64)
    outputs = []
    for t in range(T):
        h = mask * torch.tanh(emb[t] @ w_x.T + h @ w_h.T + b)
        outputs.append(h)
    logits = torch.stack(outputs) @ model.encoder.weight.T + model.decoder.bias
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ctx.targets.reshape(-1))
    (g_mask,) = torch.autograd.grad(loss, mask)
    return (0.5 * g_mask.pow(2).mean(0)).sum().item()


def test_fisher_equals_a_hand_written_masked_rnn(ptb):
    config = TINY.with_(n_layers=1)
    ctx = ScoringContext(reference_cell("rnn"), config, ptb)
    expected = _hand_fisher_rnn(ctx)
    value = get_proxy("fisher").fn(ctx)
    assert expected > 0
    assert value == pytest.approx(expected, rel=1e-4)


def _benchmark_cells(n: int) -> list:
    """The first ``n`` distinct generated benchmark cells of each hidden tuple size."""
    by_k: dict[int, list] = {1: [], 2: [], 3: []}
    for row in load_recipe_list():
        if row["kind"] != "generated":
            continue
        cell = parse_recipe(row["recipe"])
        bucket = by_k[cell.hidden_tuple_size]
        if len(bucket) < n and all(c.arch_sha1 != cell.arch_sha1 for c in bucket):
            bucket.append(cell)
        if all(len(b) == n for b in by_k.values()):
            break
    return [c for b in by_k.values() for c in b]


def test_fisher_is_non_negative_on_benchmark_cells(ptb):
    values = []
    for cell in _benchmark_cells(2) + [reference_cell(n) for n in ("rnn", "lstm", "gru")]:
        score = run_proxy("fisher", ScoringContext(cell, TINY, ptb))
        assert score.ok, score.message
        values.append(score.value)
    assert all(v >= 0 for v in values)
    assert sum(v > 0 for v in values) >= len(values) - 1


def test_fisher_is_zero_when_the_gradients_vanish(ptb):
    """With a zero (tied) embedding/decoder matrix the logits do not depend on the cells: every activation's
    gradient is exactly zero, and so is the score; the activations themselves are not zero."""

    class ZeroDecoder(ChangedContext):
        def change(self, model) -> None:
            model.encoder.weight.zero_()

    ctx = ZeroDecoder(reference_cell("lstm"), TINY, ptb)
    assert get_proxy("fisher").fn(ctx) == 0.0
    assert get_proxy("fisher").fn(ScoringContext(reference_cell("lstm"), TINY, ptb)) > 0


def test_fisher_counts_an_activation_of_the_initial_state(micro_corpus):
    """sigmoid(h_prev_0) at step 0 reads the zero initial state: it is 0.5 whatever the weights, yet masking it
    changes the loss. With one-step sequences it is the cell's only activation, and the score is positive."""
    cell = parse_recipe({
        "pre": {"op": "linear", "input": ["x", "h_prev_0"]},
        "gate": {"op": "activation_sigm", "input": ["h_prev_0"]},
        "h_new_0": {"op": "elementwise_prod", "input": ["gate", "pre"]},
    })
    value = get_proxy("fisher").fn(ScoringContext(cell, MICRO.with_(seq_len=1), micro_corpus))
    assert value > 0 and math.isfinite(value)


def test_directions_are_registered():
    for name in ("snip", "grasp", "fisher"):
        spec = get_proxy(name)
        assert spec.higher_is_better and spec.needs_data


def test_the_four_pruning_proxies_share_one_weight_selection(micro_corpus, monkeypatch):
    """grad_norm, snip, grasp and synflow sum over the model contract's weight_matrices(), and over nothing else:
    narrowing that one selection to the embedding changes all four, to the embedding's own terms."""
    from zeronas.models.lm import RNNModel

    cell = reference_cell("lstm")
    names = ["grad_norm", "snip", "grasp", "synflow"]
    full = {n: run_proxy(n, ScoringContext(cell, MICRO, micro_corpus)).value for n in names}
    monkeypatch.setattr(RNNModel, "weight_matrices",
                        lambda self: [(n, p) for n, p in self.named_parameters() if n == "encoder.weight"])
    ctx = ScoringContext(cell, MICRO, micro_corpus)
    narrowed = {n: run_proxy(n, ctx).value for n in names}
    assert all(narrowed[n] != full[n] for n in names)
    model = ctx.model()
    loss, _ = model.loss(ctx.inputs, ctx.targets)
    (g,) = torch.autograd.grad(loss, [model.encoder.weight])
    assert narrowed["grad_norm"] == pytest.approx(float(g.double().norm()), rel=1e-6)
    assert narrowed["snip"] == pytest.approx(float((model.encoder.weight.detach() * g).abs().sum()), rel=1e-6)


def test_snip_and_grasp_are_at_revision_2():
    """Revision 2: the shared selection's order (snip) and the fast-path gradient (grasp) changed the last bits."""
    assert get_proxy("snip").revision == 2 and get_proxy("grasp").revision == 2
    assert get_proxy("grad_norm").revision == 1 and get_proxy("synflow").revision == 1  # bit-identical
