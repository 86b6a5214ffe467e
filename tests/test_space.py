"""Search spaces: the registry and the NAS-Bench-NLP sampler and neighbourhood."""

from __future__ import annotations

import collections
import gzip
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import zeronas
from zeronas.cells import nbnlp_space as nbnlp
from zeronas.cells.nbnlp_space import (
    ACTIVATIONS,
    NBNLPSpace,
    follows_generator_rules,
    mutate_cell,
    sample_cell,
    sample_recipe,
    satisfies_sanity,
)
from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.cells.spaces import SPACES, SearchSpace, get_space, list_spaces, register_space

RECIPES_FILE = Path(zeronas.__file__).parent / "data" / "nbnlp" / "ptb_multirun_recipes.jsonl.gz"


def _benchmark_generated() -> list[dict]:
    """One replica of the generated part of the benchmark list: 2000, 2000 and 735 cells of k = 1, 2, 3, with
    the generator's repeats (its distribution, not the distinct cells)."""
    with gzip.open(RECIPES_FILE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if r["kind"] == "generated" and r["replica"] == 0]


BENCH = _benchmark_generated()


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------

def test_nb_nlp_is_registered():
    assert "nb-nlp" in list_spaces()
    space = get_space("nb-nlp")
    assert space is nbnlp.SPACE and isinstance(space, SearchSpace) and space.name == "nb-nlp"


def test_unknown_space_names_the_known_ones():
    with pytest.raises(KeyError, match=r"no search space 'nope' \(known: .*nb-nlp"):
        get_space("nope")


class _Fixed(SearchSpace):
    def __init__(self, name: str) -> None:
        self.name = name

    def sample(self, rng):
        return reference_cell("rnn")

    def mutate(self, cell, rng):
        return reference_cell("gru")


def test_register_and_replace_a_space():
    a, b = _Fixed("test-fixed-space"), _Fixed("test-fixed-space")
    with SPACES.scoped():
        assert register_space(a) is a
        assert register_space(a) is a  # same object again: fine
        assert get_space("test-fixed-space") is a and "test-fixed-space" in list_spaces()
        with pytest.raises(ValueError, match="already registered"):
            register_space(b)
        register_space(b, replace=True)
        assert get_space("test-fixed-space") is b
        assert b.contains(reference_cell("gru"))  # default: every cell
    assert "test-fixed-space" not in list_spaces()
    with pytest.raises(ValueError, match="name"):
        register_space(_Fixed(""))
    with pytest.raises(ValueError, match="already registered"):
        register_space(NBNLPSpace())  # a second nb-nlp


def test_abstract_space_cannot_be_instantiated():
    with pytest.raises(TypeError):
        SearchSpace()  # type: ignore[abstract]


# ----------------------------------------------------------------------------------------------
# Sampler
# ----------------------------------------------------------------------------------------------

def test_same_seed_same_cell():
    for seed in range(20):
        a, b = sample_cell(seed), sample_cell(seed)
        assert a.recipe == b.recipe and a.arch_sha1 == b.arch_sha1
    assert sample_cell(np.random.default_rng(5)).recipe == sample_cell(5).recipe
    assert len({sample_cell(seed).arch_sha1 for seed in range(50)}) > 35


def test_generator_is_advanced_in_place():
    rng = np.random.default_rng(11)
    first, second = sample_cell(rng), sample_cell(rng)
    rng2 = np.random.default_rng(11)
    assert sample_cell(rng2).recipe == first.recipe and sample_cell(rng2).recipe == second.recipe
    space = get_space("nb-nlp")
    assert space.sample(np.random.default_rng(3)).recipe == space.sample(np.random.default_rng(3)).recipe


@pytest.mark.parametrize("k", [1, 2, 3])
def test_every_sample_is_valid_and_sane(k):
    rng = np.random.default_rng(100 + k)
    for _ in range(60):
        cell = sample_cell(rng, k)
        again = parse_recipe(cell.recipe)  # a valid cell
        assert again.hidden_tuple_size == cell.hidden_tuple_size == k
        assert satisfies_sanity(cell) and get_space("nb-nlp").contains(cell)
        assert follows_generator_rules(cell)
        for node in cell.recipe:
            m = re.fullmatch(r"node_(\d+)", node)
            assert m or re.fullmatch(r"h_new_[0-2]", node), node
            if m:  # slots 0 .. k+13 (the last one only for an activation after a linear in the last slot)
                assert int(m.group(1)) <= k + nbnlp.INTERMEDIATE_VERTICES
        assert 2 <= len(cell) <= k + nbnlp.INTERMEDIATE_VERTICES + 1


def test_default_hidden_tuple_sizes_follow_the_benchmark_weights():
    rng = np.random.default_rng(0)
    ks = collections.Counter(sample_cell(rng).hidden_tuple_size for _ in range(300))
    assert set(ks) == {1, 2, 3}
    # 2000:2000:735 -> 42.3%, 42.3%, 15.5%
    assert abs(ks[3] / 300 - 735 / 4735) < 0.07 and abs(ks[1] / 300 - 2000 / 4735) < 0.1
    assert NBNLPSpace("k2-only", hidden_tuple_size=2).sample(rng).hidden_tuple_size == 2


def test_bad_hidden_tuple_size():
    for k in (0, 4, 1.5, True):
        with pytest.raises(ValueError, match="hidden_tuple_size"):
            sample_cell(0, k)


def test_benchmark_cells_follow_the_rules_the_sampler_assumes():
    """The rules in nbnlp's docstring, checked on the benchmark itself: sanity, wiring, slot names."""
    for row in BENCH:
        recipe, k = row["recipe"], row["hidden_tuple_size"]
        assert satisfies_sanity(recipe) and follows_generator_rules(recipe), row["recepie_id"]
        slots = [int(n[5:]) for n in recipe if n.startswith("node_")]
        assert max(slots, default=0) <= k + nbnlp.INTERMEDIATE_VERTICES
    # the GRU reads h_prev_0 in its output: a valid cell, but not one this generator makes
    assert not satisfies_sanity(reference_cell("gru")) and satisfies_sanity(reference_cell("lstm"))


# ----------------------------------------------------------------------------------------------
# Distribution against the bundled benchmark
# ----------------------------------------------------------------------------------------------

OP_GROUPS = {"linear": ("linear",), "activation": ACTIVATIONS, "blend": ("blend",),
             "elementwise_prod": ("elementwise_prod",), "elementwise_sum": ("elementwise_sum",)}


def _per_cell(recipes: list[dict]) -> dict[str, np.ndarray]:
    """Per cell: node count, count of each op group, and (per linear) whether it has 3 inputs."""
    out: dict[str, list] = collections.defaultdict(list)
    for r in recipes:
        ops = [s["op"] for s in r.values()]
        out["nodes"].append(len(r))
        for group, members in OP_GROUPS.items():
            out[group].append(sum(op in members for op in ops))
        out["linear_3_inputs"].extend(len(s["input"]) == 3 for s in r.values() if s["op"] == "linear")
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _compare(sampled: list[dict], bench: list[dict], z_max: float = 4.5) -> None:
    s, b = _per_cell(sampled), _per_cell(bench)
    problems = []
    for stat in s:
        se = math.sqrt(s[stat].var() / len(s[stat]) + b[stat].var() / len(b[stat]))
        z = abs(s[stat].mean() - b[stat].mean()) / se
        if z > z_max:
            problems.append(f"{stat}: sampler {s[stat].mean():.3f} vs benchmark {b[stat].mean():.3f} (z={z:.1f})")
    # op fractions over all nodes
    s_total, b_total = s["nodes"].sum(), b["nodes"].sum()
    for group in OP_GROUPS:
        fs, fb = s[group].sum() / s_total, b[group].sum() / b_total
        if abs(fs - fb) > 0.03:
            problems.append(f"fraction of {group}: sampler {fs:.3f} vs benchmark {fb:.3f}")
    assert not problems, problems


@pytest.mark.parametrize("k", [1, 2, 3])
def test_distribution_matches_the_benchmark_per_hidden_tuple_size(k):
    rng = np.random.default_rng(2024 + k)
    sampled = [sample_recipe(rng, k) for _ in range(300)]
    _compare(sampled, [r["recipe"] for r in BENCH if r["hidden_tuple_size"] == k])


def test_distribution_matches_the_benchmark_overall():
    rng = np.random.default_rng(7)
    _compare([sample_recipe(rng) for _ in range(300)], [r["recipe"] for r in BENCH])


def test_simplest_cell_frequency_for_k1():
    """linear(x, h_prev_0) -> activation is 14.8% of the benchmark's k=1 list (296/2000)."""
    rng = np.random.default_rng(1)
    share = np.mean([len(sample_recipe(rng, 1)) == 2 for _ in range(400)])
    bench = np.mean([len(r["recipe"]) == 2 for r in BENCH if r["hidden_tuple_size"] == 1])
    assert abs(bench - 0.148) < 1e-9
    assert abs(share - bench) < 0.06


# ----------------------------------------------------------------------------------------------
# Mutation
# ----------------------------------------------------------------------------------------------

def test_mutation_gives_a_valid_different_sane_cell():
    rng = np.random.default_rng(42)
    for i in range(120):
        cell = sample_cell(rng)
        child = mutate_cell(cell, rng)
        assert isinstance(child, Cell)
        assert parse_recipe(child.recipe).canonical_id == child.canonical_id != cell.canonical_id
        assert child.hidden_tuple_size == cell.hidden_tuple_size
        assert satisfies_sanity(child)
        assert follows_generator_rules(child)  # mutations keep the generator's wiring rules
        assert len(child) <= len(cell)  # edits never add nodes (removing an input may drop some)


def test_mutation_is_deterministic_and_does_not_touch_its_input():
    cell = sample_cell(9, 2)
    before = json.dumps(cell.recipe, sort_keys=True)
    a = mutate_cell(cell, np.random.default_rng(1))
    b = get_space("nb-nlp").mutate(cell, np.random.default_rng(1))
    assert a.recipe == b.recipe
    assert json.dumps(cell.recipe, sort_keys=True) == before


def test_mutation_reaches_every_kind_of_edit():
    """Over many mutations each kind of edit shows up: activation type, sum<->prod, rewiring, blend input
    order, linear fan-in."""
    rng = np.random.default_rng(3)
    seen = collections.Counter()
    for _ in range(150):
        cell = sample_cell(rng, 2)
        child = mutate_cell(cell, rng)
        if len(child) == len(cell) and set(child.recipe) == set(cell.recipe):
            changed = [n for n in cell.recipe if cell.recipe[n] != child.recipe[n]]
            assert len(changed) == 1
            old, new = cell.recipe[changed[0]], child.recipe[changed[0]]
            if old["op"] != new["op"]:
                seen["activation" if old["op"] in ACTIVATIONS else "sum_prod"] += 1
            elif len(old["input"]) != len(new["input"]):
                seen["fan_in"] += 1
            elif sorted(old["input"]) == sorted(new["input"]):
                seen["blend_swap"] += 1
            else:
                seen["rewire"] += 1
        else:
            seen["pruned"] += 1
    assert {"activation", "sum_prod", "fan_in", "blend_swap", "rewire"} <= set(seen), seen


def test_random_walk_stays_in_the_space():
    rng = np.random.default_rng(8)
    cell = sample_cell(rng, 3)
    ids = {cell.canonical_id}
    for _ in range(60):
        new = mutate_cell(cell, rng)
        assert new.canonical_id != cell.canonical_id
        assert satisfies_sanity(new) and new.hidden_tuple_size == 3
        cell = new
        ids.add(cell.canonical_id)
    assert len(ids) > 20


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_mutating_reference_cells(name):
    cell = reference_cell(name)
    rng = np.random.default_rng(0)
    for _ in range(10):
        child = mutate_cell(cell, rng)
        assert child.canonical_id != cell.canonical_id and satisfies_sanity(child)
