"""NTK proxies (ntk_cond, ntk_trace), activation-pattern proxies (linear_regions, naswot) and Serianni & Kalita's
hidden covariance (hidden_cov, hidden_cov_l2, hidden_cov_l3): formulas checked on hand-made inputs and tiny models."""

from __future__ import annotations

import math

import pytest
import torch

from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.proxies import TINY, get_proxy
from zeronas.proxies._hidden import K, cell_input_states, covariance_score
from zeronas.proxies._ntk import empirical_ntk, jacobian_func, jacobian_loop, loss_ntk
from zeronas.proxies._patterns import HammingKernel, LoopCrossings, region_code, sign_code
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.ntk_cond import condition_number
from zeronas.proxies.runner import run_proxy

# one node of each activation type
ALL_ACTIVATIONS = {
    "a": {"op": "linear", "input": ["x", "h_prev_0"]},
    "a1": {"op": "activation_tanh", "input": ["a"]},
    "b": {"op": "linear", "input": ["x", "h_prev_0"]},
    "b1": {"op": "activation_sigm", "input": ["b"]},
    "c": {"op": "linear", "input": ["x", "h_prev_0"]},
    "c1": {"op": "activation_leaky_relu", "input": ["c"]},
    "h_new_0": {"op": "elementwise_sum", "input": ["a1", "b1", "c1"]},
}
LINEAR_ONLY = {"h_new_0": {"op": "linear", "input": ["x", "h_prev_0"]}}


@pytest.fixture(scope="module")
def corpus():
    from zeronas.data.corpus import load_ptb

    return load_ptb()


def per_sample_grads_by_hand(ctx: ScoringContext) -> torch.Tensor:
    """J (m, P) from the token-level forward pass, one sample at a time, no code shared with _ntk."""
    model = ctx.model(fast_backward=False)
    params = [p for n, p in model.named_parameters() if n.startswith("layers.")]
    rows = []
    for b in range(ctx.config.ntk_batch):
        logits, _ = model(ctx.inputs[:, b:b + 1])
        grads = torch.autograd.grad(logits.sum(), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows).double()


# ---------------------------------------------------------------- NTK


def test_ntk_is_symmetric_psd_with_squared_gradient_norms_on_the_diagonal(corpus):
    ctx = ScoringContext(reference_cell("lstm"), TINY, corpus)
    theta = empirical_ntk(ctx)
    m = TINY.ntk_batch
    assert theta.shape == (m, m) and theta.dtype == torch.float64
    torch.testing.assert_close(theta, theta.T, rtol=1e-12, atol=0)
    eig = torch.linalg.eigvalsh(theta)
    assert eig[0] > -1e-9 * eig[-1]
    J = per_sample_grads_by_hand(ctx)
    torch.testing.assert_close(torch.diagonal(theta), (J * J).sum(1), rtol=1e-5, atol=0)
    torch.testing.assert_close(theta, J @ J.T, rtol=1e-5, atol=1e-6 * float(eig[-1]))
    assert empirical_ntk(ctx) is theta  # computed once, shared by ntk_cond and ntk_trace


def test_loss_ntk_is_the_kernel_of_each_sequence_s_lm_loss_gradient(corpus):
    ctx = ScoringContext(reference_cell("gru"), TINY, corpus)
    model = ctx.model(fast_backward=False)  # by hand: plain autograd through the token-level model
    params = [p for n, p in model.named_parameters() if n.startswith("layers.")]
    rows = []
    for b in range(TINY.ntk_batch):
        loss, _ = model.loss(ctx.inputs[:, b:b + 1], ctx.targets[:, b:b + 1])  # mean over the T steps
        grads = torch.autograd.grad(loss * ctx.inputs.shape[0], params)  # summed over the steps
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    J = torch.stack(rows).double()
    theta = loss_ntk(ctx)
    eig = torch.linalg.eigvalsh(J @ J.T)
    torch.testing.assert_close(theta, J @ J.T, rtol=1e-4, atol=1e-6 * float(eig[-1]))
    trace = run_proxy("ntk_trace_loss", ctx)
    assert trace.ok and trace.value == pytest.approx(math.sqrt(float((J * J).sum()) / J.shape[0]), rel=1e-5)
    cond = run_proxy("ntk_cond_loss", ctx)
    assert cond.ok and cond.value == pytest.approx(float(eig[-1] / eig[0]), rel=1e-3)
    assert not torch.allclose(theta, empirical_ntk(ctx))  # a different kernel from the summed-logits one


def test_ntk_trace_matches_a_hand_computation(corpus):
    ctx = ScoringContext(reference_cell("gru"), TINY, corpus)
    J = per_sample_grads_by_hand(ctx)
    expected = math.sqrt(float((J * J).sum()) / J.shape[0])  # sqrt(trace(J J^T) / m)
    score = run_proxy("ntk_trace", ctx)
    assert score.ok and score.value == pytest.approx(expected, rel=1e-5)
    cond = run_proxy("ntk_cond", ctx)  # same cached kernel
    eig = torch.linalg.eigvalsh(J @ J.T)
    assert cond.ok and cond.value == pytest.approx(float(eig[-1] / eig[0]), rel=1e-3)


def test_torch_func_jacobian_equals_backward_loop_and_finite_differences(corpus):
    ctx = ScoringContext(reference_cell("lstm"), TINY, corpus)
    model_func = ctx.model(fast_backward=False)
    model_loop = ctx.model(fast_backward=True)
    with torch.no_grad():
        emb = model_loop.embed(ctx.inputs[:, :3])
    by_func = jacobian_func(model_func, emb)
    by_loop = jacobian_loop(model_loop, emb)
    assert len(by_func) == len(by_loop) == len(model_loop.recurrent_parameters())
    for a, b, (_, p) in zip(by_func, by_loop, model_loop.recurrent_parameters()):
        assert a.shape == b.shape == (3, *p.shape)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
    with pytest.raises(ValueError):
        jacobian_func(model_loop, emb)

    # directional derivative in float64 against central finite differences
    model = ctx.model(fast_backward=True).double()
    emb64 = emb.double()
    grads = jacobian_loop(model, emb64)
    params = [p for _, p in model.recurrent_parameters()]
    gen = torch.Generator().manual_seed(3)
    direction = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]

    def summed(b: int, step: float) -> float:
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(step * d)
            out, _ = model.run_layers(emb64[:, b:b + 1])
            value = float(model.decode(out).sum())
            for p, d in zip(params, direction):
                p.sub_(step * d)
        return value

    eps = 1e-5
    for b in range(3):
        analytic = sum(float((g[b] * d).sum()) for g, d in zip(grads, direction))
        numeric = (summed(b, eps) - summed(b, -eps)) / (2 * eps)
        assert analytic == pytest.approx(numeric, rel=1e-6)


def test_condition_number_is_inf_or_nan_rather_than_a_made_up_number():
    assert condition_number(torch.diag(torch.tensor([4.0, 1.0, 2.0], dtype=torch.float64))) == pytest.approx(4.0)
    assert condition_number(torch.diag(torch.tensor([3.0, 0.0], dtype=torch.float64))) == math.inf
    assert condition_number(torch.diag(torch.tensor([3.0, -1e-12], dtype=torch.float64))) == math.inf
    assert condition_number(torch.diag(torch.tensor([3.0, 1e-14], dtype=torch.float64))) == math.inf  # < tol
    assert condition_number(torch.diag(torch.tensor([3.0, 1e-12], dtype=torch.float64))) == pytest.approx(3e12)
    assert condition_number(torch.diag(torch.tensor([3.0, 1e-3], dtype=torch.float64))) == pytest.approx(3e3)
    assert math.isnan(condition_number(torch.zeros(2, 2, dtype=torch.float64)))
    assert math.isnan(condition_number(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]])))


class DuplicateSequenceContext(ScoringContext):
    """The second probe sequence is a copy of the first: two identical gradient rows, a singular NTK."""

    @property
    def inputs(self) -> torch.Tensor:
        x = super().inputs.clone()
        x[:, 1] = x[:, 0]
        return x


def test_singular_ntk_gives_status_inf_and_trace_stays_finite(corpus):
    ctx = DuplicateSequenceContext(reference_cell("rnn"), TINY, corpus)
    cond = run_proxy("ntk_cond", ctx)
    assert cond.status == "inf" and cond.value is None
    trace = run_proxy("ntk_trace", ctx)
    assert trace.ok and trace.value > 0
    # the same sequences without the copy are well conditioned
    assert run_proxy("ntk_cond", ScoringContext(reference_cell("rnn"), TINY, corpus)).ok


# ---------------------------------------------------------------- activation codes


def test_codes_are_defined_for_each_activation_type():
    pre = torch.tensor([[-3.0, -1.5, -0.5, 0.5, 1.5, 3.0]])
    assert sign_code(pre).tolist() == [[False, False, False, True, True, True]]
    leaky = region_code("activation_leaky_relu", pre)
    assert leaky.shape == (1, 6) and leaky.tolist() == sign_code(pre).tolist()
    # thermometer codes (one bit per threshold): tanh (-1, 0, 1), sigmoid (-2, 0, 2)
    tanh = region_code("activation_tanh", pre).reshape(6, 3).int().tolist()
    assert tanh == [[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]]
    sigm = region_code("activation_sigm", pre).reshape(6, 3).int().tolist()
    assert sigm == [[0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0], [1, 1, 1]]
    # Hamming distance = number of thresholds between two pre-activations
    a, b = region_code("activation_tanh", torch.tensor([[-3.0]])), region_code("activation_tanh", torch.tensor([[3.0]]))
    assert int((a != b).sum()) == 3
    with pytest.raises(ValueError):
        region_code("elementwise_sum", pre)


def test_observer_codes_every_activation_node_of_every_type(corpus):
    ctx = ScoringContext(parse_recipe(ALL_ACTIVATIONS), TINY, corpus)
    model = ctx.model()
    seen: dict[str, int] = {}

    def observer(node, op, pre, post):
        code = region_code(op, pre)
        assert code.dtype == torch.bool and code.shape[0] == TINY.batch_size
        seen[op] = code.shape[1] // pre.shape[1]

    with torch.no_grad():
        model.run_layers(model.embed(ctx.inputs), observer=observer)
    assert seen == {"activation_tanh": 3, "activation_sigm": 3, "activation_leaky_relu": 1}


def test_loop_crossings_count_flipped_bits_between_neighbours_cyclically():
    counter = LoopCrossings(n_loops=2, n_points=4)
    # loop 0: leaky sign [1, 0, 0, 1] -> 2 flips; loop 1: all positive -> 0 flips
    counter("n", "activation_leaky_relu", torch.tensor([[1.0], [-1.0], [-2.0], [0.5], [1.0], [2.0], [3.0], [4.0]]),
            torch.empty(0))
    assert counter.per_loop == [2, 0]
    # tanh codes 000, 110, 111, 110 -> 2 + 1 + 1 + 2 thresholds crossed around the loop
    counter("n", "activation_tanh", torch.tensor([[-3.0], [0.5], [3.0], [0.5], [0.1], [0.1], [0.1], [0.1]]),
            torch.empty(0))
    assert counter.per_loop == [2 + 6, 0] and not counter.saw_nan
    counter("n", "activation_sigm", torch.tensor([[float("nan")]] * 8), torch.empty(0))
    assert counter.saw_nan


def test_linear_regions_counts_regions_and_a_linear_cell_has_one(corpus):
    linear = run_proxy("linear_regions", ScoringContext(parse_recipe(LINEAR_ONLY), TINY, corpus))
    assert linear.ok and linear.value == 1.0
    mixed = run_proxy("linear_regions", ScoringContext(parse_recipe(ALL_ACTIVATIONS), TINY, corpus))
    assert mixed.ok and mixed.value > 1.0 and mixed.value == int(2 * mixed.value) / 2  # mean of 2 counts
    spec = get_proxy("linear_regions")
    assert spec.higher_is_better and not spec.needs_data


# ---------------------------------------------------------------- NASWOT


def test_naswot_kernel_is_n_a_minus_hamming(corpus):
    ctx = ScoringContext(parse_recipe(ALL_ACTIVATIONS), TINY, corpus)
    model = ctx.model()
    B = TINY.batch_size
    kernel = HammingKernel(B)
    codes = []

    def both(node, op, pre, post):
        kernel(node, op, pre, post)
        codes.append(pre > 0)

    with torch.no_grad():
        model.run_layers(model.embed(ctx.inputs), observer=both)
    c = torch.cat(codes, 1)  # (B, N_A): every unit, step, node and layer
    n_a = c.shape[1]
    assert kernel.n_bits == n_a == 3 * TINY.seq_len * (2 * TINY.hidden_size + TINY.emb_size)
    hamming = (c[:, None, :] != c[None, :, :]).sum(-1).double()
    torch.testing.assert_close(kernel.kernel, n_a - hamming, rtol=0, atol=0)
    assert torch.equal(torch.diagonal(kernel.kernel), torch.full((B,), float(n_a), dtype=torch.float64))
    assert torch.equal(kernel.kernel, kernel.kernel.T)
    assert bool((kernel.kernel >= 0).all()) and bool((kernel.kernel <= n_a).all())
    score = run_proxy("naswot", ctx)
    assert score.ok and score.value == pytest.approx(float(torch.linalg.slogdet(n_a - hamming)[1]))


def test_naswot_without_activations_is_singular_not_a_number(corpus):
    score = run_proxy("naswot", ScoringContext(parse_recipe(LINEAR_ONLY), TINY, corpus))
    assert score.status == "inf" and score.value is None  # log|det 0| = -inf


# ---------------------------------------------------------------- hidden covariance


def jacob_cov(eigenvalues: list[float]) -> float:
    return -sum(math.log(v + K) + 1 / (v + K) for v in eigenvalues)


def test_covariance_score_on_hand_made_hidden_states():
    # 4 units over 2 sequences x 4 steps: orthogonal zero-mean +-1 patterns -> correlation = identity
    hadamard = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [1, -1, 1, -1, 1, -1, 1, -1],
                             [1, 1, -1, -1, 1, 1, -1, -1], [1, -1, -1, 1, 1, -1, -1, 1]], dtype=torch.float64)
    units = hadamard[1:]  # (3 units, 8 observations), each zero mean
    states = units.T.reshape(2, 4, 3).permute(1, 0, 2)  # (T=4, B=2, H=3); observation index = b * T + t
    assert covariance_score(states) == pytest.approx(jacob_cov([1.0, 1.0, 1.0]), rel=1e-12)
    # the order of observations does not matter, the choice of variables does
    assert covariance_score(states.flip(0)) == pytest.approx(covariance_score(states), rel=1e-12)
    # two identical units and an independent one: eigenvalues 2, 1, 0
    dup = torch.stack([units[0], units[0], units[1]])
    states = dup.T.reshape(2, 4, 3).permute(1, 0, 2)
    assert covariance_score(states) == pytest.approx(jacob_cov([2.0, 1.0, 0.0]), rel=1e-9)
    # a constant unit has no correlation
    const = torch.stack([units[0], torch.ones(8, dtype=torch.float64)])
    assert math.isnan(covariance_score(const.T.reshape(2, 4, 2).permute(1, 0, 2)))


def test_hidden_states_are_the_cell_inputs_of_each_layer(corpus):
    ctx = ScoringContext(reference_cell("gru"), TINY, corpus)
    states = [cell_input_states(ctx, layer) for layer in range(1, TINY.n_layers + 1)]
    model = ctx.model()
    with torch.no_grad():
        outputs, _ = model.run_layers(model.embed(ctx.inputs), return_all=True)
    assert len(states) == TINY.n_layers
    for s, o in zip(states, outputs):
        assert s.shape == o.shape
        assert torch.equal(s[0], torch.zeros_like(s[0])) and torch.equal(s[1:], o[:-1])
    for layer, name in enumerate(["hidden_cov", "hidden_cov_l2", "hidden_cov_l3"], start=1):
        score = run_proxy(name, ctx)
        assert score.ok and score.value == covariance_score(states[layer - 1])
        assert get_proxy(name).higher_is_better
    from zeronas.proxies._hidden import layer_score
    from zeronas.proxies.registry import Unsupported

    with pytest.raises(Unsupported, match="layer 4 does not exist: the model has 3 layer"):
        layer_score(ctx, TINY.n_layers + 1)


def test_directions():
    assert not get_proxy("ntk_cond").higher_is_better
    for name in ["ntk_trace", "linear_regions", "naswot", "hidden_cov", "hidden_cov_l2", "hidden_cov_l3"]:
        assert get_proxy(name).higher_is_better
