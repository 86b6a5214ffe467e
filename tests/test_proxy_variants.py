"""The RNN variants of the seed heuristics against hand computations that share no code with them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zeronas.cells.reference import reference_cell
from zeronas.proxies import TINY
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.runner import run_proxy


@pytest.fixture(scope="module")
def corpus():
    from zeronas.data.corpus import load_ptb

    return load_ptb()


def test_gradscore_h0_is_the_mean_norm_of_each_sequence_s_initial_state_gradient(corpus) -> None:
    ctx = ScoringContext(reference_cell("lstm"), TINY, corpus)
    model = ctx.model(fast_backward=False)
    norms = []
    for b in range(TINY.batch_size):  # one sequence at a time
        h0 = [tuple(torch.zeros(1, layer.hidden_size, requires_grad=True) for _ in range(2)) for layer in model.layers]
        logits, _ = model(ctx.inputs[:, b:b + 1], h0)
        loss = F.cross_entropy(logits.reshape(-1, model.vocab_size), ctx.targets[:, b].reshape(-1), reduction="sum")
        grads = torch.autograd.grad(loss, [h for layer in h0 for h in layer])
        norms.append(math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads)))
    score = run_proxy("gradscore_h0", ctx)
    assert score.ok and score.value == pytest.approx(sum(norms) / len(norms), rel=1e-5)


def test_zen_state_measures_the_state_perturbation_not_the_input(corpus) -> None:
    ctx = ScoringContext(reference_cell("gru"), TINY, corpus)
    base = run_proxy("zen_state", ctx)
    assert base.ok
    # with alpha 10x larger, the response to a small state perturbation grows about 10x: log grows by ~log(10)
    bigger = run_proxy("zen_state", ScoringContext(reference_cell("gru"), TINY.with_(zen_alpha=0.1), corpus))
    assert bigger.ok and bigger.value - base.value == pytest.approx(math.log(10), abs=0.2)
    real = run_proxy("zen_real", ctx)
    assert real.ok and real.value != base.value
