"""The NAS-Bench-NLP search space (registered as ``"nb-nlp"``): its random cell generator and a neighbourhood.

The sampler follows the benchmark's generator as described by the paper and as inferred from the benchmark's
recipe list (see ``data/nbnlp/SOURCE.md``); it is written from that description, not copied. For a hidden tuple
size ``k`` it fills ``k + 13`` node slots ``node_0, node_1, ...`` in order:

- pick a main op among linear, blend, elementwise_prod, elementwise_sum with weights 3:1:1:1;
- **linear**: 2 or 3 inputs (weights 4:1, capped by the number of candidates), drawn without replacement from
  ``x``, ``h_prev_*`` and the activation nodes made so far; it is always followed by an activation node
  (tanh, sigm, leaky_relu, equal weights) that reads it and takes the next slot, *even when the linear took the
  last slot* (the benchmark has such cells, so a graph can hold ``k + 14`` nodes before pruning);
- **blend** (3 inputs), **elementwise_prod**, **elementwise_sum** (2 inputs): inputs drawn without replacement
  from ``h_prev_*`` and every node made so far (never ``x``); if there are too few candidates, nothing is added
  and no slot is used.

Then ``k`` distinct nodes, uniformly at random, become the outputs ``h_new_0..k-1`` (renamed, references
included), nodes that feed no output are dropped, and the cell is kept only if it passes the generator's sanity
rule: ``x`` and every ``h_prev_i`` are used, and no ``h_new_i`` reads an ``h_prev_*`` directly. Otherwise the
whole draw is repeated. The benchmark list holds 2000, 2000 and 735 cells of size k = 1, 2, 3, so by default ``k``
is drawn with those weights.

Two properties of generated cells, used by :func:`follows_generator_rules` and kept by the mutations: every
activation reads a linear node and every linear node is read by at most one activation; a linear reads 2 or 3
distinct inputs among ``x``, ``h_prev_*`` and activations; blend/prod/sum read 3/2/2 distinct inputs, never ``x``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping

import numpy as np

from zeronas.cells.recipe import PREV_RE, Cell, RecipeError, live_nodes, parse_recipe
from zeronas.cells.spaces import SearchSpace, register_space

__all__ = [
    "ACTIVATIONS", "HIDDEN_TUPLE_SIZES", "HIDDEN_TUPLE_WEIGHTS", "INTERMEDIATE_VERTICES", "MAIN_OPS",
    "NBNLPSpace", "SPACE", "follows_generator_rules", "mutate_cell", "sample_cell", "sample_recipe",
    "satisfies_sanity",
]

INTERMEDIATE_VERTICES = 13
HIDDEN_TUPLE_SIZES: tuple[int, ...] = (1, 2, 3)
HIDDEN_TUPLE_WEIGHTS: tuple[float, ...] = (2000, 2000, 735)  # the benchmark list's proportions
MAIN_OPS: tuple[str, ...] = ("linear", "blend", "elementwise_prod", "elementwise_sum")
MAIN_OP_WEIGHTS: tuple[float, ...] = (3, 1, 1, 1)
ACTIVATIONS: tuple[str, ...] = ("activation_tanh", "activation_sigm", "activation_leaky_relu")
LINEAR_FAN_IN: tuple[int, ...] = (2, 3)
LINEAR_FAN_IN_WEIGHTS: tuple[float, ...] = (4, 1)
ELEMENTWISE_FAN_IN = {"blend": 3, "elementwise_prod": 2, "elementwise_sum": 2}
# k=3 accepts about 7% of draws; this bound only stops a misconfigured generator from spinning forever
MAX_SAMPLE_TRIES = 100_000
MAX_MUTATION_TRIES = 1_000

Recipe = dict[str, dict[str, Any]]


def _rng(seed_or_rng: Any) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def _probs(weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


# ----------------------------------------------------------------------------------------------
# Sampler
# ----------------------------------------------------------------------------------------------

def _redundant_graph(k: int, rng: np.random.Generator, intermediate_vertices: int) -> Recipe:
    """The generator's graph before outputs are chosen: slots node_0.. in creation order."""
    base = ["x"] + [f"h_prev_{i}" for i in range(k)]
    prevs = base[1:]
    recipe: Recipe = {}
    activations: list[str] = []
    main_p, act_p, fan_p = _probs(MAIN_OP_WEIGHTS), _probs((1,) * len(ACTIVATIONS)), _probs(LINEAR_FAN_IN_WEIGHTS)
    slot = 0
    while slot < k + intermediate_vertices:
        op = MAIN_OPS[rng.choice(len(MAIN_OPS), p=main_p)]
        if op == "linear":
            candidates = base + activations
            n = min(int(LINEAR_FAN_IN[rng.choice(len(LINEAR_FAN_IN), p=fan_p)]), len(candidates))
            picks = rng.choice(len(candidates), size=n, replace=False)
            lin = f"node_{slot}"
            recipe[lin] = {"op": "linear", "input": [candidates[i] for i in picks]}
            act = f"node_{slot + 1}"  # may be slot k + intermediate_vertices: the benchmark allows that
            recipe[act] = {"op": ACTIVATIONS[rng.choice(len(ACTIVATIONS), p=act_p)], "input": [lin]}
            activations.append(act)
            slot += 2
        else:
            candidates = prevs + list(recipe)
            n = ELEMENTWISE_FAN_IN[op]
            if n > len(candidates):
                continue
            picks = rng.choice(len(candidates), size=n, replace=False)
            recipe[f"node_{slot}"] = {"op": op, "input": [candidates[i] for i in picks]}
            slot += 1
    return recipe


def _choose_outputs(recipe: Recipe, k: int, rng: np.random.Generator) -> Recipe:
    nodes = list(recipe)
    picks = rng.choice(len(nodes), size=k, replace=False)
    rename = {nodes[j]: f"h_new_{i}" for i, j in enumerate(picks)}
    return {rename.get(n, n): {"op": s["op"], "input": [rename.get(i, i) for i in s["input"]]}
            for n, s in recipe.items()}


def _prune(recipe: Recipe) -> Recipe:
    """Drop the nodes that feed no ``h_new_*`` (keeps the order of the others)."""
    alive = live_nodes(recipe, [n for n in recipe if n.startswith("h_new_")])
    return {n: s for n, s in recipe.items() if n in alive}


def _hidden_tuple_size(recipe: Mapping[str, Any]) -> int:
    return sum(1 for n in recipe if n.startswith("h_new_"))


def satisfies_sanity(cell: Cell | Mapping[str, Any], hidden_tuple_size: int | None = None) -> bool:
    """The generator's sanity rule: ``x`` and every ``h_prev_i`` are used, and no ``h_new_i`` reads an
    ``h_prev_*`` directly. A rule of this space, not of cell validity (the GRU reads h_prev_0 in its output)."""
    recipe = cell.recipe if isinstance(cell, Cell) else cell
    if hidden_tuple_size is None:
        hidden_tuple_size = cell.hidden_tuple_size if isinstance(cell, Cell) else _hidden_tuple_size(recipe)
    used = {i for spec in recipe.values() for i in spec["input"]}
    if not {"x", *(f"h_prev_{i}" for i in range(hidden_tuple_size))} <= used:
        return False
    for i in range(hidden_tuple_size):
        spec = recipe.get(f"h_new_{i}")
        if spec is not None and any(PREV_RE.match(inp) for inp in spec["input"]):
            return False
    return True


def follows_generator_rules(cell: Cell | Mapping[str, Any]) -> bool:
    """Whether the cell's wiring is one the generator can make (names and node count aside): activations read
    a linear, no linear is read by two activations, linears read 2-3 distinct nodes among x, h_prev_* and
    activations, blend/prod/sum read 3/2/2 distinct nodes other than x."""
    recipe = cell.recipe if isinstance(cell, Cell) else cell
    act_readers: dict[str, int] = {}
    for node, spec in recipe.items():
        op, inputs = spec["op"], spec["input"]
        if len(set(inputs)) != len(inputs):
            return False
        if op in ACTIVATIONS:
            src = inputs[0]
            if src not in recipe or recipe[src]["op"] != "linear":
                return False
            act_readers[src] = act_readers.get(src, 0) + 1
            if act_readers[src] > 1:
                return False
        elif op == "linear":
            if len(inputs) not in LINEAR_FAN_IN:
                return False
            for i in inputs:
                if i in recipe and recipe[i]["op"] not in ACTIVATIONS:
                    return False
        elif op in ELEMENTWISE_FAN_IN:
            if len(inputs) != ELEMENTWISE_FAN_IN[op] or "x" in inputs:
                return False
        else:
            return False
    return True


def _check_k(k: int) -> int:
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= max(HIDDEN_TUPLE_SIZES):
        raise ValueError(f"hidden_tuple_size must be one of {HIDDEN_TUPLE_SIZES}, got {k!r}")
    return int(k)


def sample_recipe(seed_or_rng: Any = None, hidden_tuple_size: int | None = None, *,
                  intermediate_vertices: int = INTERMEDIATE_VERTICES,
                  hidden_tuple_weights: tuple[float, ...] = HIDDEN_TUPLE_WEIGHTS) -> Recipe:
    """One recipe drawn like the benchmark's generator (see the module docstring). ``seed_or_rng``: an int seed,
    a ``numpy.random.Generator`` (advanced in place) or None (fresh entropy). ``hidden_tuple_size``: None draws it
    from 1, 2, 3 with ``hidden_tuple_weights``."""
    rng = _rng(seed_or_rng)
    if hidden_tuple_size is None:
        k = HIDDEN_TUPLE_SIZES[rng.choice(len(HIDDEN_TUPLE_SIZES), p=_probs(hidden_tuple_weights))]
    else:
        k = _check_k(hidden_tuple_size)
    for _ in range(MAX_SAMPLE_TRIES):
        recipe = _prune(_choose_outputs(_redundant_graph(k, rng, intermediate_vertices), k, rng))
        if satisfies_sanity(recipe, k):
            return recipe
    raise RuntimeError(f"no sane cell in {MAX_SAMPLE_TRIES} draws (hidden_tuple_size={k}, "
                       f"intermediate_vertices={intermediate_vertices})")


def sample_cell(seed_or_rng: Any = None, hidden_tuple_size: int | None = None, **kwargs: Any) -> Cell:
    """A validated cell from :func:`sample_recipe`. The same seed gives the same cell."""
    return parse_recipe(sample_recipe(seed_or_rng, hidden_tuple_size, **kwargs), source="nb-nlp sample")


# ----------------------------------------------------------------------------------------------
# Neighbourhood
# ----------------------------------------------------------------------------------------------

def _descendants(recipe: Recipe, node: str) -> set[str]:
    readers: dict[str, list[str]] = {}
    for n, spec in recipe.items():
        for i in spec["input"]:
            readers.setdefault(i, []).append(n)
    seen: set[str] = {node}
    todo = deque([node])
    while todo:
        for r in readers.get(todo.popleft(), ()):
            if r not in seen:
                seen.add(r)
                todo.append(r)
    return seen  # includes node itself


def _sources(recipe: Recipe, k: int, node: str) -> list[str]:
    """Nodes that ``node`` may read without a cycle, by the generator's input rules for its op."""
    banned = _descendants(recipe, node) | set(recipe[node]["input"])
    prevs = [f"h_prev_{i}" for i in range(k)]
    if recipe[node]["op"] == "linear":
        pool = ["x"] + prevs + [n for n, s in recipe.items() if s["op"] in ACTIVATIONS]
    else:
        pool = prevs + list(recipe)
    return [s for s in pool if s not in banned]


def _copy(recipe: Mapping[str, Any]) -> Recipe:
    return {n: {"op": s["op"], "input": list(s["input"])} for n, s in recipe.items()}


def _propose(recipe: Recipe, k: int, rng: np.random.Generator) -> Recipe | None:
    """One random edit (or None when the chosen kind of edit has nothing to act on)."""
    nodes = list(recipe)
    by_op = lambda ops: [n for n in nodes if recipe[n]["op"] in ops]  # noqa: E731
    kinds = ["activation", "sum_prod", "rewire", "blend_swap", "linear_fan_in"]
    kind = kinds[rng.integers(len(kinds))]
    new = _copy(recipe)
    if kind == "activation":
        targets = by_op(ACTIVATIONS)
        if not targets:
            return None
        node = targets[rng.integers(len(targets))]
        others = [a for a in ACTIVATIONS if a != recipe[node]["op"]]
        new[node]["op"] = others[rng.integers(len(others))]
    elif kind == "sum_prod":
        targets = by_op(("elementwise_sum", "elementwise_prod"))
        if not targets:
            return None
        node = targets[rng.integers(len(targets))]
        new[node]["op"] = "elementwise_prod" if recipe[node]["op"] == "elementwise_sum" else "elementwise_sum"
    elif kind == "rewire":
        targets = by_op(("linear",) + tuple(ELEMENTWISE_FAN_IN))
        if not targets:
            return None
        node = targets[rng.integers(len(targets))]
        sources = _sources(recipe, k, node)
        if not sources:
            return None
        pos = int(rng.integers(len(recipe[node]["input"])))
        new[node]["input"][pos] = sources[rng.integers(len(sources))]
    elif kind == "blend_swap":
        targets = by_op(("blend",))
        if not targets:
            return None
        node = targets[rng.integers(len(targets))]
        a, b = rng.choice(3, size=2, replace=False)
        inputs = new[node]["input"]
        inputs[a], inputs[b] = inputs[b], inputs[a]
    else:  # linear_fan_in: 2 -> 3 inputs or 3 -> 2
        targets = by_op(("linear",))
        if not targets:
            return None
        node = targets[rng.integers(len(targets))]
        inputs = new[node]["input"]
        if len(inputs) >= max(LINEAR_FAN_IN):
            del inputs[rng.integers(len(inputs))]
        else:
            sources = _sources(recipe, k, node)
            if not sources:
                return None
            inputs.append(sources[rng.integers(len(sources))])
    return _prune(new)


def mutate_cell(cell: Cell, rng: Any = None) -> Cell:
    """A neighbour of ``cell``: one random edit among changing an activation's type, switching an
    elementwise_sum/prod, rewiring one input of a linear/blend/sum/prod node to another node it may read (by the
    generator's input rules, never one downstream of it), swapping two inputs of a blend, adding or removing an
    input of a linear (2 <-> 3 inputs); nodes left feeding no output are dropped. Edits are drawn until the result
    is a valid cell that passes the generator's sanity rule and has a different ``canonical_id``."""
    rng = _rng(rng)
    cell = parse_recipe(cell, source="cell to mutate")
    k = cell.hidden_tuple_size
    try:
        old_id = cell.canonical_id
    except RecipeError:
        old_id = None
    for _ in range(MAX_MUTATION_TRIES):
        recipe = _propose(cell.recipe, k, rng)
        if recipe is None or not satisfies_sanity(recipe, k):
            continue
        try:
            new = parse_recipe(recipe, source="nb-nlp mutation")
            if new.hidden_tuple_size == k and new.canonical_id != old_id:
                return new
        except RecipeError:
            continue
    raise RuntimeError(f"no valid neighbour of the cell found in {MAX_MUTATION_TRIES} tries")


# ----------------------------------------------------------------------------------------------
# The registered space
# ----------------------------------------------------------------------------------------------

class NBNLPSpace(SearchSpace):
    """NAS-Bench-NLP's generator as a search space. ``hidden_tuple_size`` fixes k; None draws it with
    ``hidden_tuple_weights`` (the benchmark's 2000:2000:735 by default)."""

    def __init__(self, name: str = "nb-nlp", *, hidden_tuple_size: int | None = None,
                 hidden_tuple_weights: tuple[float, ...] = HIDDEN_TUPLE_WEIGHTS,
                 intermediate_vertices: int = INTERMEDIATE_VERTICES) -> None:
        self.name = name
        self.hidden_tuple_size = None if hidden_tuple_size is None else _check_k(hidden_tuple_size)
        self.hidden_tuple_weights = tuple(hidden_tuple_weights)
        self.intermediate_vertices = intermediate_vertices

    def sample(self, rng: np.random.Generator) -> Cell:
        return sample_cell(rng, self.hidden_tuple_size, intermediate_vertices=self.intermediate_vertices,
                           hidden_tuple_weights=self.hidden_tuple_weights)

    def mutate(self, cell: Cell, rng: np.random.Generator) -> Cell:
        return mutate_cell(cell, rng)

    def contains(self, cell: Cell) -> bool:
        return satisfies_sanity(cell)


SPACE = register_space(NBNLPSpace())
