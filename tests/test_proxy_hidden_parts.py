"""The parts of layer 1's state that hidden_cov mixes: its null directions (hidden_rank), its scale (state_rms) and
the share carried from the past (state_memory). Known values on hand-made states and on cells built to have or to
lack a memory, computed here without the proxies' code."""

from __future__ import annotations

import math

import pytest
import torch

from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.data.corpus import Corpus, Vocabulary
from zeronas.proxies import TINY, get_proxy
from zeronas.proxies._hidden import correlation_eigenvalues, excess_nulls, shared_nulls
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.runner import run_proxy

# the output is a function of the current token alone: the carried states feed only the second state, never h_new_0
MEMORYLESS = {"a": {"op": "linear", "input": ["x"]}, "h_new_0": {"op": "activation_tanh", "input": ["a"]},
              "h_new_1": {"op": "linear", "input": ["h_prev_0", "h_prev_1"]}}
# the same cell, but the previous state feeds the linear node
RNN = {"a": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["a"]}}
# a probe of 3 sequences x 6 steps (15 observations can vary) over 40 units: 25 null directions shared by all cells
CONFIG = TINY.with_(batch_size=3, seq_len=6, emb_size=32, hidden_size=40)


@pytest.fixture(scope="module")
def small_vocab_corpus() -> Corpus:
    """Seeded random text over 6 word types: a probe of 18 tokens repeats most of them."""
    words = [f"w{i}" for i in range(6)]
    text = torch.randint(0, 6, (500,), generator=torch.Generator().manual_seed(3))
    return Corpus(Vocabulary(words), text, text.clone(), text.clone(), name="six-words")


def _context(recipe, corpus, config=CONFIG) -> ScoringContext:
    return ScoringContext(parse_recipe(recipe), config, corpus)


def test_shared_nulls_and_excess_nulls_on_hand_made_states() -> None:
    assert shared_nulls(T=35, B=10, H=600) == 260  # the default config
    assert shared_nulls(T=8, B=4, H=24) == 0  # more observations than units
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(3, 2, 8, generator=gen, dtype=torch.float64)  # T=3, B=2, H=8: 4 can vary, 4 null
    states[0] = 0.0  # the zero initial state of each sequence, as hidden_cov's observations have
    v = correlation_eigenvalues(states)
    assert excess_nulls(v, 3, 2, 8) == 0
    states[2, 1] = states[1, 0]  # one observation repeats another: one more null direction
    assert excess_nulls(correlation_eigenvalues(states), 3, 2, 8) == 1
    states[2, 0] = states[1, 0]  # and a third copy: two
    assert excess_nulls(correlation_eigenvalues(states), 3, 2, 8) == 2


def test_hidden_rank_counts_the_repeated_tokens_a_memoryless_cell_collapses(small_vocab_corpus) -> None:
    ctx = _context(MEMORYLESS, small_vocab_corpus)
    seen = ctx.inputs[:-1]  # the tokens behind the observed states (the state entering step t is after token t-1)
    distinct = len(set(seen.flatten().tolist()))
    repeats = seen.numel() - distinct
    assert repeats > 5  # the probe does repeat tokens
    score = run_proxy("hidden_rank", ctx)
    assert score.ok and score.value == repeats  # one state per distinct token: every repeat is a null direction
    # a state that carries its history tells the repeats apart
    rnn = run_proxy("hidden_rank", _context(RNN, small_vocab_corpus))
    assert rnn.ok and rnn.value == 0
    lstm = run_proxy("hidden_rank", ScoringContext(reference_cell("lstm"), CONFIG, small_vocab_corpus))
    assert lstm.ok and lstm.value == 0


def test_hidden_rank_is_a_lower_is_better_gate_at_zero() -> None:
    spec = get_proxy("hidden_rank")
    assert not spec.higher_is_better and spec.gate == 0.0
    assert get_proxy("state_rms").higher_is_better is False
    assert get_proxy("state_memory").higher_is_better is True


def test_state_rms_is_the_rms_of_layer_1_outputs(small_vocab_corpus) -> None:
    ctx = ScoringContext(reference_cell("gru"), CONFIG, small_vocab_corpus)
    model = ctx.model()
    with torch.no_grad():
        out, _ = model.layers[0](model.embed(ctx.inputs))
    expected = math.sqrt(sum(float(x) ** 2 for x in out.double().flatten()) / out.numel())
    score = run_proxy("state_rms", ctx)
    assert score.ok and score.value == pytest.approx(expected, rel=1e-9)
    # it measures the scale: the same cell with its layer-1 weights doubled has a larger output
    with torch.no_grad():
        for p in model.layers[0].parameters():
            p.mul_(2.0)
    bigger = run_proxy("state_rms", ScoringContext(None, CONFIG, small_vocab_corpus, model=model))
    assert bigger.ok and bigger.value > 1.5 * score.value


def test_state_memory_is_zero_without_a_past_and_matches_a_step_by_step_reset(small_vocab_corpus) -> None:
    none = run_proxy("state_memory", _context(MEMORYLESS, small_vocab_corpus))
    assert none.ok and none.value < 1e-6  # the same step from a zero state gives the same output
    ctx = _context(RNN, small_vocab_corpus)
    model = ctx.model()
    with torch.no_grad():
        emb = model.embed(ctx.inputs)
        out, _ = model.layers[0](emb)
        fresh = torch.stack([model.layers[0](emb[t:t + 1])[0][0] for t in range(emb.shape[0])])  # zero state each
    expected = float((out - fresh).double().norm() / out.double().norm())
    score = run_proxy("state_memory", ctx)
    assert score.ok and 0.05 < score.value < 1 and score.value == pytest.approx(expected, rel=1e-5)


def test_hidden_rank_reacts_to_the_recurrent_weights(small_vocab_corpus) -> None:
    ctx = _context(RNN, small_vocab_corpus)
    assert run_proxy("hidden_rank", ctx).value == 0
    model = ctx.model()
    with torch.no_grad():
        model.layers[0].linears["a"].weight_1.zero_()  # h_prev_0's weight: the state no longer reaches the output
    cut = run_proxy("hidden_rank", ScoringContext(None, CONFIG, small_vocab_corpus, model=model))
    seen = ctx.inputs[:-1]
    assert cut.ok and cut.value == seen.numel() - len(set(seen.flatten().tolist()))  # the memoryless count
