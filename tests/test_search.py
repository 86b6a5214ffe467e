"""``zeronas search``: ranking, random search, aging evolution, benchmark mode, TE-NAS pruning, resuming, the CLI.

Everything runs with tiny scoring configs, mostly with the ``params`` proxy (exact and nearly free), in this
process (one worker: the serial executor). A test-only proxy that sleeps lets a real search be killed mid-run.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from zeronas.bench.nbnlp import Benchmark
from zeronas.cells.darts import DartsSpace, darts_cell
from zeronas.cells.enas import EnasSpace, enas_cell
from zeronas.cells.nbnlp_space import satisfies_sanity
from zeronas.cells.recipe import parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.cells.spaces import SPACES, get_space, register_space
from zeronas.cli import app
from zeronas.proxies import TINY, registry
from zeronas.proxies.registry import proxy as register_proxy
from zeronas.proxies.runner import Score
from zeronas.search import (PRUNE_CONFIG, BenchmarkSource, Candidate, SearchError, fitness, ranked, run_search,
                            supernet_for, wl_distance)
from zeronas.search.core import Budget, Scorer
from zeronas.search.evolution import evolution
from zeronas.search.prune import _decide, prune
from zeronas.search.sources import SpaceSource
from zeronas.store import open_store

runner = CliRunner()
PLUGIN = "zeronas_search_test_plugin"
PLUGIN_SOURCE = '''
"""Test-only proxy: the parameter count, after sleeping ZERONAS_SEARCH_SLEEP seconds."""
import os
import time

from zeronas.proxies.registry import proxy


@proxy("t_slow_params", higher_is_better=True, needs_data=False, description="test only")
def t_slow_params(ctx):
    time.sleep(float(os.environ.get("ZERONAS_SEARCH_SLEEP", "0")))
    return float(ctx.model().num_parameters())
'''
SEARCH_SCRIPT = '''
import json, sys
import zeronas_search_test_plugin  # registers t_slow_params
from zeronas.proxies import TINY
from zeronas.search import run_search

if __name__ == "__main__":
    result = run_search(algorithm="evolution", proxy="t_slow_params", budget=12, seed=7, store=sys.argv[1],
                        workers=1, config=TINY, round_size=2, population_size=4, sample_size=2)
    print(json.dumps({"ids": [c.canonical_id for c in result.candidates], "computed": result.computed,
                      "reused": result.reused}))
'''


@pytest.fixture(autouse=True)
def one_thread():
    """Small models on a shared machine: one torch thread (as each worker process of the executor)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_spaces():
    """An ENAS space of 3 nodes and a DARTS space of 2 steps, registered for run_search, removed afterwards."""
    with SPACES.scoped():
        yield [register_space(EnasSpace("enas-3", num_nodes=3)), register_space(DartsSpace("darts-2", steps=2))]


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search_plugin")
    (folder / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    (folder / "run_search.py").write_text(SEARCH_SCRIPT)
    with registry.PROXIES.scoped():
        yield folder
    sys.modules.pop(PLUGIN, None)


def _cand(values: dict[str, float | None], index: int) -> Candidate:
    scores = {m: Score(m, v, "ok") if v is not None else Score(m, None, "nan") for m, v in values.items()}
    return Candidate(parse_recipe({"h_new_0": {"op": "linear", "input": ["x", "h_prev_0"]}}), scores, index)


def _store_rows(path: Path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, canonical_id, proxy, value, created_at FROM results ORDER BY id").fetchall()
    finally:
        db.close()


# ----------------------------------------------------------------------------------------------------------------
# Ranking
# ----------------------------------------------------------------------------------------------------------------

def test_fitness_follows_each_proxy_direction_and_puts_failures_last() -> None:
    # ntk_cond: lower is better; a NaN score ranks after every scored candidate
    cands = [_cand({"ntk_cond": v}, i) for i, v in enumerate([30.0, None, 10.0, 20.0])]
    assert [c.index for c in ranked(cands, "ntk_cond")] == [2, 3, 0, 1]
    fit = fitness(cands, "ntk_cond")
    assert fit[1] == -math.inf and fit[2] > fit[3] > fit[0]
    # params: higher is better; ties keep the order of evaluation
    cands = [_cand({"params": v}, i) for i, v in enumerate([5.0, 7.0, 7.0, 1.0])]
    assert [c.index for c in ranked(cands, "params")] == [1, 2, 0, 3]


def test_a_guard_ranks_failing_candidates_last_without_ranking_by_its_value(tmp_path) -> None:
    with registry.PROXIES.scoped():
        register_proxy("t_guard_multi", higher_is_better=True, needs_data=False, description="test only")(
            lambda ctx: 1.0 if ctx.cell.hidden_tuple_size > 1 else float("nan"))  # NaN for single-state cells
        _guarded_searches(tmp_path)
    assert "t_guard_multi" not in registry.PROXIES


def _guarded_searches(tmp_path) -> None:
    kwargs = dict(algorithm="random", budget=24, seed=3, store=f"sqlite:///{tmp_path / 'g.db'}", workers=1,
                  config=TINY)
    plain = run_search(proxy="params", **kwargs)
    assert plain.best[0].cell.hidden_tuple_size == 1  # unguarded, this seed picks a single-state cell
    guarded = run_search(proxy="params!t_guard_multi", **kwargs)
    assert guarded.proxy == "params!t_guard_multi"
    assert [c.canonical_id for c in guarded.candidates] == [c.canonical_id for c in plain.candidates]
    kept = [c for c in guarded.candidates if c.cell.hidden_tuple_size > 1]
    failed = [c for c in guarded.candidates if c.cell.hidden_tuple_size == 1]
    assert kept and failed and all("t_guard_multi" in c.scores for c in guarded.candidates)
    assert max(c.fitness for c in failed) < min(c.fitness for c in kept)  # a failed guard ranks last
    by_params = [sorted(group, key=lambda c: (-c.scores["params"].value, c.index))  # the guard does not rank
                 for group in (kept, failed)]
    assert [c.canonical_id for c in guarded.best] == [c.canonical_id for c in by_params[0] + by_params[1]]
    listed = run_search(proxy="params", gates=["t_guard_multi"], **kwargs)  # what --gate passes
    assert listed.proxy == guarded.proxy and [c.canonical_id for c in listed.best] == [
        c.canonical_id for c in guarded.best]
    with pytest.warns(DeprecationWarning, match="gates"):  # the former name still works
        old_name = run_search(proxy="params", guards=["t_guard_multi"], **kwargs)
    assert old_name.proxy == guarded.proxy
    with pytest.raises(SearchError, match="gate is one proxy"):
        run_search(proxy="params!t_guard_multi+zen", **kwargs)
    with pytest.raises(SearchError, match="no_such_guard"):
        run_search(proxy="params!no_such_guard", **kwargs)


def test_a_combination_ranks_by_the_sum_of_per_proxy_ranks() -> None:
    # ntk_cond ranks (lower better): c0 best (3), c2 (2), c1 (1); linear_regions ranks (higher better):
    # c1 best (3), c2 (2), c0 (1). Sums 4, 4, 4 -> add a fourth cell that is best on both.
    values = [(10.0, 100.0), (30.0, 300.0), (20.0, 200.0), (5.0, 400.0), (1.0, None)]
    cands = [_cand({"ntk_cond": a, "linear_regions": b}, i) for i, (a, b) in enumerate(values)]
    fit = fitness(cands, "ntk_cond+linear_regions")
    # over the 4 ok cells: ntk ranks (desc better) c3 4, c0 3, c2 2, c1 1; regions c3 4, c1 3, c2 2, c0 1
    assert fit.tolist() == [4.0, 4.0, 4.0, 8.0, -math.inf]
    assert ranked(cands, "ntk_cond+linear_regions")[0].index == 3
    with pytest.raises(SearchError, match="unknown proxy"):
        fitness(cands, "ntk_cond+no_such_proxy")


# ----------------------------------------------------------------------------------------------------------------
# Random search and evolution in a space
# ----------------------------------------------------------------------------------------------------------------

def test_random_search_scores_distinct_cells_of_the_space_and_ranks_them(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = run_search(algorithm="random", proxy="params", budget=15, seed=3, store=url, benchmark=False,
                        workers=1, config=TINY)
    ids = [c.canonical_id for c in result.candidates]
    assert len(ids) == len(set(ids)) == 15 and result.computed == 15
    assert all(satisfies_sanity(c.cell) for c in result.candidates)
    values = [c.scores["params"].value for c in result.best]
    assert values == sorted(values, reverse=True)
    # the same draws as the space's sampler, in order (duplicates skipped)
    rng, space, expect = np.random.default_rng(3), get_space("nb-nlp"), []
    while len(expect) < 15:
        cid = space.sample(rng).canonical_id
        if cid not in expect:
            expect.append(cid)
    assert ids == expect
    with open_store(url) as store:
        assert set(store.scores_table(TINY, ["params"])) == set(ids)


def test_a_time_budget_stops_the_search_between_rounds(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    for algorithm in ("random", "evolution"):
        result = run_search(algorithm=algorithm, proxy="params", time_budget=1e-3, seed=0, store=url, workers=1,
                            config=TINY, round_size=3, population_size=4, sample_size=2)
        assert len(result.candidates) == 3  # the first round runs, then the time is up
    limited = run_search(algorithm="random", proxy="params", time_budget=60, budget=7, seed=0, store=url,
                         workers=1, config=TINY, round_size=3)
    assert len(limited.candidates) == 7  # whichever limit comes first


class RecordingSource(SpaceSource):
    def __init__(self, space) -> None:
        super().__init__(space)
        self.parents: list[str] = []

    def mutate(self, cell, rng, exclude):
        self.parents.append(cell.canonical_id)
        return super().mutate(cell, rng, exclude)


def test_serial_scoring_leaves_the_process_thread_count_as_it_was() -> None:
    """The serial scorer uses one torch thread while it scores, and puts the caller's count back, also when
    scoring fails."""
    before = torch.get_num_threads()
    seen = []
    with registry.PROXIES.scoped():
        register_proxy("t_threads", higher_is_better=True, needs_data=False, description="test only")(
            lambda ctx: seen.append(torch.get_num_threads()) or 1.0)
        torch.set_num_threads(3)
        try:
            with open_store("sqlite:///:memory:") as store:
                scorer = Scorer(store, TINY, ["t_threads"], workers=1)
                scorer.score([reference_cell("rnn")])
                assert seen == [1] and torch.get_num_threads() == 3
                with pytest.raises(KeyError):
                    Scorer(store, TINY, ["t_no_such_proxy"], workers=1).score([reference_cell("gru")])
                assert torch.get_num_threads() == 3
        finally:
            torch.set_num_threads(before)


def test_aging_evolution_mutates_the_best_of_a_sample_of_the_youngest_cells() -> None:
    store = open_store("sqlite:///:memory:")
    source = RecordingSource(get_space("nb-nlp"))
    scorer = Scorer(store, TINY, ["params"], workers=1)
    P, S, R = 6, 3, 3
    cands = evolution(source, scorer, "params", Budget(30), np.random.default_rng(0), round_size=R,
                      population_size=P, sample_size=S)
    assert len(cands) == 30 and len({c.canonical_id for c in cands}) == 30  # never the same cell twice
    assert len(source.parents) == 30 - P
    index = {c.canonical_id: c.index for c in cands}
    params = {c.canonical_id: c.scores["params"].value for c in cands}
    for child, parent in enumerate(source.parents, start=P):
        start = child - (child - P) % R  # the first child of this round
        alive = range(start - P, start)  # the population: the P cells evaluated last before the round
        assert index[parent] in alive, "the parent must come from the population, not from the oldest cells"
        younger_rank = sorted((params[cands[i].canonical_id] for i in alive), reverse=True).index(params[parent])
        assert younger_rank <= P - S, "the parent is the best of a sample of S, so at least S-1 are not better"
    # selection pressure: the children have more parameters than the random initial population on average
    assert np.mean([params[c.canonical_id] for c in cands[P:]]) > np.mean([params[c.canonical_id]
                                                                           for c in cands[:P]])
    store.close()


def test_evolution_in_the_enas_space_and_a_combination(tmp_path, small_spaces) -> None:
    result = run_search(space="enas-3", algorithm="evolution", proxy="params+hidden_cov", budget=10, seed=1,
                        store=f"sqlite:///{tmp_path / 'e.db'}", workers=1, config=TINY, population_size=4,
                        sample_size=2, round_size=3)
    assert len(result.candidates) == 10 and result.proxy == "params+hidden_cov"
    space = get_space("enas-3")
    assert all(space.contains(c.cell) for c in result.candidates)
    assert all(set(c.scores) == {"params", "hidden_cov"} for c in result.candidates)
    assert result.best[0].fitness == max(c.fitness for c in result.candidates)


# ----------------------------------------------------------------------------------------------------------------
# Benchmark mode
# ----------------------------------------------------------------------------------------------------------------

def test_wl_distance_is_zero_up_to_renaming_and_grows_with_edits() -> None:
    cell = Benchmark.nbnlp().sample(1, 5)[0].cell
    renamed = parse_recipe({(f"z_{n}" if n.startswith("node_") else n):
                            {"op": s["op"], "input": [f"z_{i}" if i.startswith("node_") else i for i in s["input"]]}
                            for n, s in cell.recipe.items()})
    assert renamed.canonical_id == cell.canonical_id and wl_distance(cell, renamed) == 0
    child = get_space("nb-nlp").mutate(cell, np.random.default_rng(0))
    assert wl_distance(cell, child) > 0


def test_benchmark_mutation_maps_to_the_nearest_unseen_benchmark_cell() -> None:
    cells = [a.cell for a in Benchmark.nbnlp().sample(300, 1)]
    space = get_space("nb-nlp")
    source = BenchmarkSource(cells, space)
    parent = cells[0]
    exclude = {c.canonical_id for c in cells[1:40]}
    # replay the mutation the source draws, then check its pick against brute force
    child = space.mutate(parent, np.random.default_rng(11))
    picked = source.mutate(parent, np.random.default_rng(11), exclude)
    allowed = [c for c in cells if c.canonical_id not in exclude and c.canonical_id != parent.canonical_id]
    best = min(wl_distance(child, c) for c in allowed)
    assert picked.canonical_id not in exclude | {parent.canonical_id}
    assert wl_distance(child, picked) == best
    # sampling never returns an excluded cell, and says so when nothing is left
    rng = np.random.default_rng(0)
    assert all(source.sample(rng, exclude).canonical_id not in exclude for _ in range(20))
    assert source.sample(rng, {c.canonical_id for c in cells}) is None


def test_benchmark_search_picks_benchmark_cells_and_reports_their_perplexity(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    bench = Benchmark.nbnlp()
    result = run_search(algorithm="evolution", proxy="params", budget=14, seed=2, store=url, workers=1,
                        config=TINY, population_size=6, sample_size=3, round_size=4)
    assert result.benchmark  # the default for nb-nlp
    assert all(c.canonical_id in bench for c in result.candidates)
    rows = result.entries(5, {a.canonical_id: a for a in bench})
    assert len(rows) == 5 and [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    for row in rows:
        arch = bench.get(row["canonical_id"])
        assert row["in_benchmark"] and row["test_ppl"] == (None if arch.diverged else arch.test_ppl)
        assert parse_recipe(row["recipe"]).canonical_id == row["canonical_id"]
    # random benchmark mode: a seeded sample of benchmark cells
    again = run_search(algorithm="random", proxy="params", budget=5, seed=2, store=url, workers=1, config=TINY)
    same = run_search(algorithm="random", proxy="params", budget=5, seed=2, store=url, workers=1, config=TINY)
    assert [c.canonical_id for c in again.candidates] == [c.canonical_id for c in same.candidates]
    assert all(c.canonical_id in bench for c in again.candidates)


def test_bad_requests_are_refused(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(SearchError, match="benchmark mode needs"):
        run_search(space="enas", benchmark=True, store=url, proxy="params", budget=2)
    with pytest.raises(SearchError, match="offers none"):
        run_search(algorithm="prune", store=url)
    with pytest.raises(SearchError, match="unknown algorithm"):
        run_search(algorithm="annealing", store=url)
    with pytest.raises(SearchError, match="no search space"):
        run_search(space="nas-bench-101", store=url)
    with pytest.raises(SearchError, match="unknown proxy"):
        run_search(proxy="params+nope", store=url, budget=2)


# ----------------------------------------------------------------------------------------------------------------
# Resuming
# ----------------------------------------------------------------------------------------------------------------

def test_a_second_run_replays_the_search_and_scores_nothing(tmp_path) -> None:
    path = tmp_path / "r.db"
    kwargs = dict(algorithm="evolution", proxy="params", budget=16, seed=4, store=f"sqlite:///{path}", workers=1,
                  config=TINY, population_size=5, sample_size=2, round_size=3)
    first = run_search(**kwargs)
    rows = _store_rows(path)
    second = run_search(**kwargs)
    assert first.computed == 16 and second.computed == 0 and second.reused == 16
    assert [c.canonical_id for c in second.candidates] == [c.canonical_id for c in first.candidates]
    assert _store_rows(path) == rows  # nothing rewritten


def test_a_killed_search_resumes_where_it_stopped(plugin_dir, tmp_path, sigkill_once) -> None:
    sys.path.insert(0, str(plugin_dir))
    try:
        __import__(PLUGIN)
        reference = run_search(algorithm="evolution", proxy="t_slow_params", budget=12, seed=7,
                               store=f"sqlite:///{tmp_path / 'ref.db'}", workers=1, config=TINY, round_size=2,
                               population_size=4, sample_size=2)
    finally:
        sys.path.remove(str(plugin_dir))
    path = tmp_path / "kill.db"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")]),
               ZERONAS_SEARCH_SLEEP="0.3")
    command = [sys.executable, str(plugin_dir / "run_search.py"), f"sqlite:///{path}"]
    # killed past the initial population, so the kill lands among the children
    sigkill_once(command, env, lambda: len({r[1] for r in _store_rows(path)}), at_least=5, deadline_s=60)
    before = _store_rows(path)
    done = len({r[1] for r in before})
    assert 5 <= done < 12

    rerun = subprocess.run(command, env=dict(env, ZERONAS_SEARCH_SLEEP="0"), capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert out["ids"] == [c.canonical_id for c in reference.candidates]  # the same search, replayed
    assert out["reused"] == done and out["computed"] == 12 - done  # nothing scored twice
    after = _store_rows(path)
    assert after[:len(before)] == before and len({r[1] for r in after}) == 12


# ----------------------------------------------------------------------------------------------------------------
# Pruning
# ----------------------------------------------------------------------------------------------------------------

def test_the_supernet_holds_every_candidate_and_one_candidate_per_node_is_the_space_cell() -> None:
    enas = supernet_for(EnasSpace("e4", num_nodes=4))
    state = enas.initial()
    assert [len(c) for c in state] == [4, 4, 8, 12]  # node 0: 4 activations; node i: i inputs x 4
    recipe = enas.recipe(state)
    ops = [s["op"] for s in recipe.values()]
    assert ops.count("blend") == 28 and ops.count("elementwise_mean") == 4  # 4 node means; one loose end
    assert ops.count("linear") == 2 * (1 + 1 + 2 + 3)  # a gate and a candidate projection per edge
    pick = ((( -1, "relu"),), ((0, "tanh"),), ((0, "identity"),), ((1, "sigmoid"),))
    assert enas.cell(pick).canonical_id == enas_cell(["relu", "tanh", "identity", "sigmoid"],
                                                     [0, 0, 1]).canonical_id
    darts = supernet_for(DartsSpace("d3", steps=3))
    assert [len(c) for c in darts.initial()] == [1, 4, 8, 12]
    pick = (((-1, "tanh"),), ((0, "relu"),), ((1, "identity"),), ((0, "sigmoid"),))
    assert darts.cell(pick).canonical_id == darts_cell([("relu", 0), ("identity", 1), ("sigmoid", 0)]).canonical_id
    assert darts.final_cell(pick).canonical_id == darts.cell(pick).canonical_id
    with pytest.raises(SearchError, match="the space 'nb-nlp' offers none"):
        supernet_for(get_space("nb-nlp"))


def test_pruning_uses_what_a_space_offers_not_its_class() -> None:
    from zeronas.cells.enas import enas_cell
    from zeronas.cells.spaces import SearchSpace, SupernetSpec

    class TanhChains(SearchSpace):  # a space of the user's own: not an ENAS or DARTS class
        name = "tanh-chains"

        def sample(self, rng):  # pragma: no cover - pruning never samples
            raise NotImplementedError

        def mutate(self, cell, rng):  # pragma: no cover
            raise NotImplementedError

        def supernet(self) -> SupernetSpec:
            return SupernetSpec(3, ("tanh",), ("tanh", "relu"), "loose_ends", enas_cell)

    net = supernet_for(TanhChains())
    assert net.space == "tanh-chains" and [len(c) for c in net.initial()] == [1, 2, 4]
    pick = (((-1, "tanh"),), ((0, "relu"),), ((1, "tanh"),))
    assert net.final_cell(pick).canonical_id == enas_cell(["tanh", "relu", "tanh"], [0, 1]).canonical_id


def test_pruning_drops_the_candidates_whose_removal_hurts_least() -> None:
    # With params (higher is better) a removal hurts least when the edge keeps other activations (its gate and
    # projection stay); the first round must drop, per node, the candidates with the highest trial params.
    net = supernet_for(EnasSpace("e4", num_nodes=4))
    store = open_store("sqlite:///:memory:")
    scorer = Scorer(store, TINY.with_(n_layers=1), ["params"], workers=1)
    cell, rounds, trials = prune(net, scorer, "params", Budget(), fraction=0.5)
    assert EnasSpace("e4", num_nodes=4).contains(cell)
    first = rounds[0]
    assert first["trials"] == 28 and trials == sum(r["trials"] for r in rounds)
    state = net.initial()
    params_without = {}
    for i, choices in enumerate(state):
        for c in choices:
            trial = tuple(tuple(x for x in ch if not (k == i and x == c)) for k, ch in enumerate(state))
            params_without[(i, c)] = store.get(net.cell(trial).canonical_id, scorer.config)["params"].value
    for node, dropped in first["dropped"].items():
        i = int(node)
        dropped = {tuple(c) for c in dropped}
        assert len(dropped) == max(1, (len(state[i]) - 1) // 2)
        kept = [c for c in state[i] if c not in dropped]
        assert min(params_without[(i, c)] for c in dropped) >= max(params_without[(i, c)] for c in kept)
    assert rounds[-1]["left"] == 4 and not any(r["cut_short"] for r in rounds)
    # a budget of one round: every node keeps its most needed candidate at once
    first = rounds[0]["trials"]
    cut = prune(net, scorer, "params", Budget(cells=first), fraction=0.5)
    assert len(cut[1]) == 1 and cut[1][0]["cut_short"] and cut[1][0]["left"] == 4
    # less than one round: refused before anything is scored, not overrun
    with pytest.raises(SearchError, match=f"scores {first} trial networks; a budget of {first - 1}"):
        prune(net, scorer, "params", Budget(cells=first - 1), fraction=0.5)
    store.close()


def test_pruning_never_leaves_a_supernet_that_cannot_be_identified() -> None:
    # ten nodes that all prefer (node 0, relu) would be ten identical loose ends: 10! orderings, no canonical id.
    net = supernet_for(EnasSpace("e11", num_nodes=11))
    state = (((-1, "tanh"),),) + tuple(((0, "relu"), (0, "tanh")) for _ in range(10))
    orders = {i: [1, 0] for i in range(1, 11)}  # tanh is the most prunable everywhere
    with pytest.raises(Exception, match="too symmetric"):
        net.cell(tuple(c[:1] for c in state)).canonical_id
    decided = _decide(net, state, orders, {i: 1 for i in orders})
    net.cell(decided).canonical_id  # identifiable
    # the fewest changes, from the highest node down: 7 relu + 3 tanh leaves = 7! 3! orderings <= 8!
    assert [c[0][1] for c in decided[1:]] == ["relu"] * 7 + ["tanh"] * 3


def test_prune_search_with_ntk_and_linear_regions_resumes(tmp_path, small_spaces) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    config = PRUNE_CONFIG.with_(hidden_size=8, emb_size=8)
    for space in ("enas-3", "darts-2"):
        result = run_search(space=space, algorithm="prune", store=url, workers=1, config=config)
        assert result.proxy == "ntk_cond+linear_regions"
        (best,) = result.best
        assert get_space(space).contains(best.cell)
        assert best.scores["ntk_cond"].ok and best.scores["linear_regions"].ok
        assert result.info["rounds"][-1]["left"] == 3  # one candidate per node: 3 nodes in both spaces
        again = run_search(space=space, algorithm="prune", store=url, workers=1, config=config)
        assert again.computed == 0 and again.best[0].canonical_id == best.canonical_id


# ----------------------------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------------------------

def test_cli_search_json_and_table(tmp_path) -> None:
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY.to_dict()))
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    args = ["search", "--algorithm", "random", "--budget", "6", "--proxy", "params", "--scoring-config",
            str(config), "--store", store, "--workers", "1", "--top", "3", "--seed", "5"]
    result = runner.invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["top"]
    assert "random 6/6 cells" in result.stderr  # a stderr that is not a terminal gets plain progress lines
    bench = Benchmark.nbnlp()
    assert len(rows) == 3
    for row in rows:
        assert set(row) >= {"recipe", "canonical_id", "scores", "test_ppl"}
        arch = bench.get(row["canonical_id"])
        assert row["test_ppl"] == (None if arch.diverged else arch.test_ppl)
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert rows[0]["canonical_id"] in table.stdout and "0 scored now, 6 from the store" in table.stdout
    enas = runner.invoke(app, ["search", "--space", "enas", "--algorithm", "random", "--budget", "2", "--proxy",
                               "params", "--scoring-config", str(config), "--store", store, "--workers", "1",
                               "--json"])
    assert enas.exit_code == 0, enas.output
    assert all("test_ppl" not in row and get_space("enas").contains(parse_recipe(row["recipe"]))
               for row in json.loads(enas.stdout)["top"])
    bad = runner.invoke(app, ["search", "--space", "enas", "--benchmark", "--store", store])
    assert bad.exit_code == 2 and "benchmark mode needs" in bad.output


def test_cli_gate_and_its_deprecated_alias_guard(tmp_path) -> None:
    for option in ("--gate", "--guard"):
        res = runner.invoke(app, ["search", option, "no_such_proxy", "--store", f"sqlite:///{tmp_path / 'g.db'}"])
        assert res.exit_code == 2 and f"{option}: unknown proxy 'no_such_proxy'" in res.output, res.output
    assert "--guard is deprecated: use --gate" in res.stderr
    assert "--gate" in runner.invoke(app, ["search", "--help"]).stdout
