"""Contract tests run against every registered proxy: it sees the cell weights, is deterministic, and fails
with a status rather than a number."""

from __future__ import annotations

import math

import pytest
import torch

from zeronas.cells.reference import reference_cell
from zeronas.proxies import TINY, Score, list_proxies, score_cell
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import PROXIES, proxy
from zeronas.proxies.runner import run_proxy

ALL = [spec.name for spec in list_proxies()]
# params, flops and the structural counts depend only on the architecture, by definition
WEIGHT_FREE = {"params", "flops", "n_blend", "n_leaky_relu", "n_prod", "cell_depth", "recurrent_fanin"}
# counts that depend on the weights but not on one weight's small change (each has its own weight test:
# hidden_rank in test_proxy_hidden_parts.py)
WEIGHT_COUNTS = {"hidden_rank"}


@pytest.fixture(scope="module")
def corpus():
    from zeronas.data.corpus import load_ptb

    return load_ptb()


def test_registry_lists_core_heuristics_and_enough_others():
    core = {"zen", "ntk_cond", "ntk_trace", "gradscore", "linear_regions"}
    assert core <= set(ALL), f"missing: {core - set(ALL)}"
    assert len(set(ALL) - core) >= 10
    for spec in list_proxies():
        assert spec.description and isinstance(spec.higher_is_better, bool) and isinstance(spec.needs_data, bool)


@pytest.mark.parametrize("name", ALL)
def test_proxy_is_deterministic(name, corpus):
    cell = reference_cell("lstm")
    a = score_cell(cell, [name], TINY, corpus)[name]
    b = score_cell(cell, [name], TINY, corpus)[name]
    assert a.status == "ok", a.message
    assert a.value == b.value  # bit-identical on the CPU


class PerturbedContext(ScoringContext):
    """The same context, but one recurrent-cell weight (not embedding or decoder) is changed: in the seeded
    parts themselves, so that every way a proxy reads the model (a copy, the read-only model, a layer) sees it."""

    def _seeded(self):
        parts = super()._seeded()
        if not getattr(parts, "perturbed", False):
            with torch.no_grad():
                weight = parts.layer(0).linears["i"].weight_1  # layer 1, input gate, h_prev_0 weight
                weight.mul_(3.0).add_(0.05)
            parts.perturbed = True
        return parts


@pytest.mark.parametrize("name", sorted(set(ALL) - WEIGHT_FREE - WEIGHT_COUNTS))
def test_proxy_reacts_to_a_recurrent_cell_weight(name, corpus):
    cell = reference_cell("lstm")
    base = run_proxy(name, ScoringContext(cell, TINY, corpus))
    changed = run_proxy(name, PerturbedContext(cell, TINY, corpus))
    assert base.ok and changed.ok, (base.message, changed.message)
    assert base.value != changed.value


@pytest.fixture
def failing_proxies():
    """Four proxies that fail in four ways, registered only for the test that asks for them (so no other test
    module ever lists them)."""
    with PROXIES.scoped():
        proxy("_test_nan", higher_is_better=True, needs_data=False, description="test: always NaN")(
            lambda ctx: float("nan"))
        proxy("_test_inf", higher_is_better=True, needs_data=False, description="test: overflows")(
            lambda ctx: torch.tensor(1e30, dtype=torch.float32).pow(2).item())

        def _oom(ctx):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB")

        def _error(ctx):
            raise ValueError("singular matrix in test")

        proxy("_test_oom", higher_is_better=True, needs_data=False, description="test: out of memory")(_oom)
        proxy("_test_error", higher_is_better=True, needs_data=False, description="test: raises")(_error)
        yield


def test_failures_are_statuses_and_other_proxies_still_run(corpus, failing_proxies):
    names = ["_test_nan", "params", "_test_inf", "_test_oom", "_test_error"]
    results = score_cell(reference_cell("rnn"), names, TINY, corpus)
    assert [results[n].status for n in names] == ["nan", "ok", "inf", "oom", "error"]
    for n in ["_test_nan", "_test_inf", "_test_oom", "_test_error"]:
        assert results[n].value is None and results[n].message
    assert "singular matrix in test" in results["_test_error"].message
    assert results["params"].value > 0 and not math.isnan(results["params"].value)
    assert isinstance(results["params"], Score)


def test_config_hash_is_stable_and_sensitive():
    assert TINY.config_hash() == TINY.with_().config_hash()
    assert TINY.config_hash() != TINY.with_(seed=1).config_hash()
    assert TINY.config_hash() == TINY.with_(device="cuda").config_hash()
    assert len(TINY.config_hash()) == 16


def test_context_models_are_independent_copies_of_the_seeded_model(corpus):
    """Each proxy may modify its model: every call returns a new model, bit-identical to a fresh seeded build."""
    from zeronas.models.lm import build_model

    ctx = ScoringContext(reference_cell("lstm"), TINY, corpus)
    first = ctx.model()
    with torch.no_grad():
        for p in first.parameters():
            p.mul_(-3.0)  # what synflow-like proxies do to their own model
    first.layers[0].fast_backward = False
    second = ctx.model(fast_backward=True)
    built = build_model(ctx.cell, ctx.vocab_size, seed=TINY.seed, config=ctx.model_config())
    assert not second.training and all(layer.fast_backward for layer in second.layers)
    fresh = dict(built.named_parameters())
    for name, p in second.named_parameters():
        assert torch.equal(p, fresh[name]), name
    assert all(p is not q for p, q in zip(first.parameters(), second.parameters()))
