"""The ENAS recurrent cell space (Pham et al., 2018), written in the cell language; registered as ``"enas"``.

An ENAS recurrent cell is a chain of *highway nodes* (the recurrent highway network of Zilly et al. 2017 with
a searched wiring). With ``s_{-1} = h_prev`` and ``x`` the layer input:

- node 0 reads ``x`` and ``h_prev``: ``c_0 = sigmoid(W_c [x, h_prev])``,
  ``s_0 = c_0 * f_0(W_h [x, h_prev]) + (1 - c_0) * h_prev``;
- node ``i >= 1`` reads ONE earlier node ``j < i``: ``c_i = sigmoid(W_c^(i) s_j)``,
  ``s_i = c_i * f_i(W_h^(i) s_j) + (1 - c_i) * s_j``;
- ``f_i`` is one of tanh, ReLU, identity, sigmoid (node 0's is searched too);
- the cell output (the new hidden state) is the average of the *loose ends*: the nodes no other node reads.

In the cell language each highway node is ``blend(sigm(linear(src)), f(linear(src)), src)``, with
``blend(z, a, b) = z*a + (1-z)*b``; the output is ``elementwise_mean`` of the loose ends (the loose end itself
when there is only one). The two linears of a node read the same source, so the cell layer fuses them into one
matmul of width 2H, as the ENAS code does with its single ``[x, h] @ W`` of width 2H.

Checked against the authors' code (melodyguan/enas, ``src/ptb/ptb_enas_child.py``, ``_rhn_fixed``): an
architecture is ``f_0`` then ``(j, f_i)`` per node, function ids 0..3 = tanh, ReLU, identity, sigmoid; the PTB
runs use 12 nodes (``--child_rhn_depth=12``); the output averages the unused nodes. Adaptations: our
``linear`` has a bias (theirs have none); their search-time batch norm and the dropout masks are not part of
a cell (the language model applies its own dropouts).

The space is sampled uniformly (each node's activation, each node's input among the earlier nodes); a mutation
changes one node's activation or one node's input node (to another earlier node).

This module also holds what the DARTS space (:mod:`zeronas.cells.darts`) shares with it: :class:`HighwayArc`,
:func:`highway_recipe`, :func:`decode_highway`.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from zeronas.cells.recipe import Cell, RecipeError, parse_recipe
from zeronas.cells.spaces import SearchSpace, SupernetSpec, register_space

__all__ = [
    "ACTIVATION_OPS", "ENAS_ACTIVATIONS", "ENAS_PTB_ARC", "HighwayArc", "NAMED_CELLS", "NUM_NODES", "EnasSpace",
    "NotAHighwayCell", "SPACE", "decode_highway", "enas_arc", "enas_cell", "highway_cell", "highway_recipe",
    "loose_ends", "mutate_cell", "named_cell", "parse_enas_arc", "propose_edit", "sample_cell",
]

# activation name -> op of the cell language ("identity" is its own op: no pre-activation to observe)
ACTIVATION_OPS: dict[str, str] = {
    "tanh": "activation_tanh",
    "relu": "activation_relu",
    "identity": "identity",
    "sigmoid": "activation_sigm",
}
_ACTIVATION_OF_OP = {op: name for name, op in ACTIVATION_OPS.items()}
# ENAS's function ids, in order (ptb_enas_child.py: 0 tanh, 1 relu, 2 identity, 3 sigmoid)
ENAS_ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "identity", "sigmoid")
NUM_NODES = 12  # --child_rhn_depth=12 in the authors' PTB search and final scripts
MAX_MUTATION_TRIES = 1_000
MAX_SAMPLE_TRIES = 1_000

# The cell ENAS found on PTB: --child_fixed_arc of the authors' scripts/ptb_final.sh (12 nodes, tanh/ReLU only)
ENAS_PTB_ARC = "0 0 0 1 1 2 1 2 0 2 0 5 1 1 0 6 1 8 1 8 1 8 1"

Recipe = dict[str, dict[str, Any]]


# ----------------------------------------------------------------------------------------------
# Highway cells (shared with the DARTS space)
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HighwayArc:
    """A highway cell: node 0 reads ``x`` and ``h_prev_0``, node ``i >= 1`` reads node ``parents[i - 1] < i``;
    ``activations[i]`` is node i's candidate activation; the output is the average of the nodes ``outputs``."""

    activations: tuple[str, ...]
    parents: tuple[int, ...]
    outputs: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.activations)
        if n < 1:
            raise ValueError("a highway cell has at least one node")
        if len(self.parents) != n - 1:
            raise ValueError(f"{n} nodes need {n - 1} parents, got {len(self.parents)}")
        for a in self.activations:
            if a not in ACTIVATION_OPS:
                raise ValueError(f"unknown activation {a!r} (known: {', '.join(ACTIVATION_OPS)})")
        for i, j in enumerate(self.parents, start=1):
            if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < i:
                raise ValueError(f"node {i} must read an earlier node (0..{i - 1}), got {j!r}")
        if not self.outputs or len(set(self.outputs)) != len(self.outputs):
            raise ValueError(f"the outputs must be distinct nodes, got {self.outputs!r}")
        for o in self.outputs:
            if isinstance(o, bool) or not isinstance(o, (int, np.integer)) or not 0 <= o < n:
                raise ValueError(f"output {o!r} is not a node (0..{n - 1})")
        # every node must reach the output, or the recipe has a dead node
        alive = set(self.outputs)
        for i in range(n - 1, 0, -1):
            if i in alive:
                alive.add(self.parents[i - 1])
        if len(alive) != n:
            dead = sorted(set(range(n)) - alive)
            raise ValueError(f"node(s) {dead} feed no output")

    @property
    def num_nodes(self) -> int:
        return len(self.activations)


def loose_ends(parents: Sequence[int], num_nodes: int) -> tuple[int, ...]:
    """The nodes no other node reads (ENAS averages them)."""
    used = set(int(j) for j in parents)
    return tuple(i for i in range(num_nodes) if i not in used)


def highway_recipe(arc: HighwayArc) -> Recipe:
    """The recipe of a highway cell: per node ``s{i}_c_pre`` / ``s{i}_c`` (gate), ``s{i}_h_pre`` / ``s{i}_h``
    (candidate), ``s{i}`` (the blend); ``h_new_0`` averages the outputs (or is the output node itself)."""
    only = arc.outputs[0] if len(arc.outputs) == 1 else None
    name = lambda i: "h_new_0" if i == only else f"s{i}"  # noqa: E731
    recipe: Recipe = {}
    for i, act in enumerate(arc.activations):
        src = ["x", "h_prev_0"] if i == 0 else [name(arc.parents[i - 1])]
        carry = "h_prev_0" if i == 0 else src[0]
        recipe[f"s{i}_c_pre"] = {"op": "linear", "input": list(src)}
        recipe[f"s{i}_c"] = {"op": "activation_sigm", "input": [f"s{i}_c_pre"]}
        recipe[f"s{i}_h_pre"] = {"op": "linear", "input": list(src)}
        recipe[f"s{i}_h"] = {"op": ACTIVATION_OPS[act], "input": [f"s{i}_h_pre"]}
        recipe[name(i)] = {"op": "blend", "input": [f"s{i}_c", f"s{i}_h", carry]}
    if only is None:
        recipe["h_new_0"] = {"op": "elementwise_mean", "input": [name(o) for o in arc.outputs]}
    return recipe


def highway_cell(arc: HighwayArc, *, name: str | None = None, source: str = "highway cell") -> Cell:
    return parse_recipe(highway_recipe(arc), source=source, name=name)


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


class NotAHighwayCell(ValueError):
    """The cell is not built of highway nodes (not in the ENAS or DARTS space)."""


def _highway_node(recipe: Mapping[str, Any], node: str) -> tuple[str, str, tuple[str, ...]]:
    """Read ``blend(sigm(linear(S)), f(linear(S)), carry)``: (activation, carry, the four helper nodes)."""
    spec = recipe.get(node)
    if spec is None or spec["op"] != "blend":
        raise NotAHighwayCell(f"node {node!r} is not a highway node (a blend)")
    gate, cand, carry = spec["input"]
    for helper, ops in ((gate, ("activation_sigm",)), (cand, tuple(_ACTIVATION_OF_OP))):
        if helper not in recipe or recipe[helper]["op"] not in ops:
            raise NotAHighwayCell(f"node {node!r}: input {helper!r} is not {' or '.join(ops)}")
    gate_pre, cand_pre = recipe[gate]["input"][0], recipe[cand]["input"][0]
    srcs = []
    for pre in (gate_pre, cand_pre):
        if pre not in recipe or recipe[pre]["op"] != "linear":
            raise NotAHighwayCell(f"node {node!r}: {pre!r} is not a linear node")
        srcs.append(sorted(recipe[pre]["input"]))
    if srcs[0] != srcs[1]:
        raise NotAHighwayCell(f"node {node!r}: gate and candidate read different nodes")
    if srcs[0] == ["h_prev_0", "x"]:
        if carry != "h_prev_0":
            raise NotAHighwayCell(f"node {node!r}: the first node must carry h_prev_0")
    elif srcs[0] != [carry]:
        raise NotAHighwayCell(f"node {node!r}: gate and candidate must read the carried node {carry!r}")
    return _ACTIVATION_OF_OP[recipe[cand]["op"]], carry, (gate_pre, gate, cand_pre, cand)


def decode_highway(cell: Cell | Mapping[str, Any]) -> HighwayArc:
    """The :class:`HighwayArc` of a highway cell, nodes numbered in a topological order (ties by node name, so
    a cell made by :func:`highway_recipe` gets its own numbering back). :class:`NotAHighwayCell` otherwise."""
    cell = parse_recipe(cell, source="highway cell")
    recipe = cell.recipe
    if cell.hidden_tuple_size != 1:
        raise NotAHighwayCell("a highway cell has hidden tuple size 1")
    out = recipe["h_new_0"]
    if out["op"] == "elementwise_mean":
        out_nodes = list(out["input"])
        if len(set(out_nodes)) != len(out_nodes):
            raise NotAHighwayCell("h_new_0 averages a node twice")
        accounted = 1
    else:
        out_nodes = ["h_new_0"]
        accounted = 0
    nodes: dict[str, tuple[str, str]] = {}  # name -> (activation, carry)
    helpers: set[str] = set()
    todo = list(out_nodes)
    while todo:
        node = todo.pop()
        if node in nodes:
            continue
        act, carry, parts = _highway_node(recipe, node)
        nodes[node] = (act, carry)
        helpers.update(parts)
        if carry != "h_prev_0":
            todo.append(carry)
    if len(helpers) != 4 * len(nodes) or accounted + 5 * len(nodes) != len(recipe):
        raise NotAHighwayCell("the cell has nodes that are not part of a highway node, or shares them")
    roots = [n for n, (_, carry) in nodes.items() if carry == "h_prev_0"]
    if len(roots) != 1:
        raise NotAHighwayCell(f"a highway cell has exactly one node reading x and h_prev_0, found {len(roots)}")
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for n, (_, carry) in nodes.items():
        if carry != "h_prev_0":
            children[carry].append(n)
    order: list[str] = []
    heap = [(_natural_key(roots[0]), roots[0])]
    while heap:
        _, n = heapq.heappop(heap)
        order.append(n)
        for c in children[n]:
            heapq.heappush(heap, (_natural_key(c), c))
    index = {n: i for i, n in enumerate(order)}
    return HighwayArc(activations=tuple(nodes[n][0] for n in order),
                      parents=tuple(index[nodes[n][1]] for n in order[1:]),
                      outputs=tuple(sorted(index[n] for n in out_nodes)))


def _same_cell(cell: Cell, arc: HighwayArc) -> bool:
    """Whether ``cell`` is exactly ``arc``'s cell up to node names (and input order of commutative ops)."""
    try:
        return cell.canonical_id == highway_cell(arc).canonical_id
    except RecipeError:
        return False


def propose_edit(arc: HighwayArc, rng: np.random.Generator, *, activations: Sequence[str],
                 first_activation_searched: bool) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """One edit of a genotype: a node's activation, or a node's input (to another earlier node).
    Returns the new (activations, parents); the caller sets the outputs by its space's rule."""
    acts, parents = list(arc.activations), list(arc.parents)
    n = len(acts)
    act_nodes = list(range(0 if first_activation_searched else 1, n))
    rewirable = list(range(2, n))  # node 1 can only read node 0
    kinds = (["activation"] if act_nodes and len(activations) > 1 else []) + (["input"] if rewirable else [])
    if not kinds:
        raise ValueError("this cell has no neighbour: no activation to change and no input to rewire")
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "activation":
        i = act_nodes[int(rng.integers(len(act_nodes)))]
        others = [a for a in activations if a != acts[i]]
        acts[i] = others[int(rng.integers(len(others)))]
    else:
        i = rewirable[int(rng.integers(len(rewirable)))]
        others = [j for j in range(i) if j != parents[i - 1]]
        parents[i - 1] = others[int(rng.integers(len(others)))]
    return tuple(acts), tuple(parents)


def _rng(seed_or_rng: Any) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def mutate_highway(cell: Cell, rng: np.random.Generator, arc: HighwayArc, *, activations: Sequence[str],
                   first_activation_searched: bool,
                   build: Callable[[tuple[str, ...], tuple[int, ...]], Cell]) -> Cell:
    """One :func:`propose_edit` after another until ``build`` gives a cell with a different canonical id."""
    old_id = cell.canonical_id
    for _ in range(MAX_MUTATION_TRIES):
        acts, parents = propose_edit(arc, rng, activations=activations,
                                     first_activation_searched=first_activation_searched)
        new = build(acts, parents)
        try:
            if new.canonical_id != old_id:
                return new
        except RecipeError:
            continue
    raise RuntimeError(f"no valid neighbour of the cell found in {MAX_MUTATION_TRIES} tries")


def space_contains(cell: Cell, decode: Callable[[Cell], HighwayArc]) -> bool:
    """Whether ``cell`` decodes to a genotype of the space and is exactly that genotype's cell."""
    try:
        parsed = parse_recipe(cell)
        arc = decode(parsed)
    except (NotAHighwayCell, RecipeError):
        return False
    return _same_cell(parsed, arc)


# ----------------------------------------------------------------------------------------------
# ENAS
# ----------------------------------------------------------------------------------------------

def enas_arc(activations: Sequence[str], parents: Sequence[int]) -> HighwayArc:
    """An ENAS genotype: ``activations`` of nodes 0..N-1, ``parents[i - 1]`` the node that node i reads;
    the output averages the loose ends."""
    acts, pars = tuple(activations), tuple(int(j) for j in parents)
    return HighwayArc(acts, pars, loose_ends(pars, len(acts)))


def enas_cell(activations: Sequence[str], parents: Sequence[int], *, name: str | None = None) -> Cell:
    return highway_cell(enas_arc(activations, parents), name=name, source="ENAS cell")


def parse_enas_arc(text: str | Sequence[int]) -> HighwayArc:
    """An architecture in the ENAS code's format (``--child_fixed_arc``): ``f_0`` then ``j f_i`` for each further
    node, function ids 0..3 = tanh, ReLU, identity, sigmoid."""
    tokens = [int(t) for t in text.split()] if isinstance(text, str) else [int(t) for t in text]
    if len(tokens) % 2 != 1:
        raise ValueError(f"an ENAS arc has 1 + 2*(N-1) numbers, got {len(tokens)}")
    ids = [tokens[0]] + tokens[2::2]
    for f in ids:
        if not 0 <= f < len(ENAS_ACTIVATIONS):
            raise ValueError(f"unknown ENAS function id {f} (0..{len(ENAS_ACTIVATIONS) - 1})")
    return enas_arc([ENAS_ACTIVATIONS[f] for f in ids], tokens[1::2])


def sample_cell(seed_or_rng: Any = None, num_nodes: int = NUM_NODES) -> Cell:
    """A uniform draw from the ENAS space: each node's activation among the four, each node's input among the
    earlier nodes. The same seed gives the same cell. A draw whose canonical id cannot be computed (over
    ``recipe.MAX_TIE_COMBINATIONS`` orderings of identical loose ends, e.g. 9+ identical leaves) is redrawn."""
    rng = _rng(seed_or_rng)
    if isinstance(num_nodes, bool) or int(num_nodes) != num_nodes or num_nodes < 1:
        raise ValueError(f"num_nodes must be a positive integer, got {num_nodes!r}")
    for _ in range(MAX_SAMPLE_TRIES):
        acts = [ENAS_ACTIVATIONS[int(k)] for k in rng.integers(len(ENAS_ACTIVATIONS), size=num_nodes)]
        parents = [int(rng.integers(i)) for i in range(1, num_nodes)]
        cell = enas_cell(acts, parents)
        try:
            cell.canonical_id
        except RecipeError:
            continue
        return cell
    raise RuntimeError(f"no identifiable ENAS cell in {MAX_SAMPLE_TRIES} draws")


def _decode_enas(cell: Cell, num_nodes: int | None) -> HighwayArc:
    arc = decode_highway(cell)
    if num_nodes is not None and arc.num_nodes != num_nodes:
        raise NotAHighwayCell(f"the ENAS space has {num_nodes} nodes, the cell has {arc.num_nodes}")
    if arc.outputs != loose_ends(arc.parents, arc.num_nodes):
        raise NotAHighwayCell("an ENAS cell averages exactly its loose ends")
    return arc


def mutate_cell(cell: Cell, rng: Any = None, num_nodes: int | None = None) -> Cell:
    """A neighbour in the ENAS space: one node's activation changed (node 0's included) or one node's input
    moved to another earlier node; drawn until its ``canonical_id`` differs from ``cell``'s."""
    cell = parse_recipe(cell, source="cell to mutate")
    return mutate_highway(cell, _rng(rng), _decode_enas(cell, num_nodes), activations=ENAS_ACTIVATIONS,
                          first_activation_searched=True, build=enas_cell)


class EnasSpace(SearchSpace):
    """The ENAS recurrent space with ``num_nodes`` highway nodes (12, as in the authors' PTB runs)."""

    def __init__(self, name: str = "enas", *, num_nodes: int = NUM_NODES) -> None:
        self.name = name
        self.num_nodes = num_nodes

    def sample(self, rng: np.random.Generator) -> Cell:
        return sample_cell(rng, self.num_nodes)

    def mutate(self, cell: Cell, rng: np.random.Generator) -> Cell:
        return mutate_cell(cell, rng, self.num_nodes)

    def supernet(self) -> SupernetSpec:
        return SupernetSpec(self.num_nodes, ENAS_ACTIVATIONS, ENAS_ACTIVATIONS, "loose_ends", enas_cell)

    def contains(self, cell: Cell) -> bool:
        return space_contains(cell, lambda c: _decode_enas(c, self.num_nodes))


SPACE = register_space(EnasSpace())


# ----------------------------------------------------------------------------------------------
# Published cells
# ----------------------------------------------------------------------------------------------

NAMED_CELLS: dict[str, HighwayArc] = {"ENAS_PTB": parse_enas_arc(ENAS_PTB_ARC)}


def named_cell(name: str) -> Cell:
    """A published ENAS cell by name (``ENAS_PTB``)."""
    try:
        arc = NAMED_CELLS[name]
    except KeyError:
        raise KeyError(f"no ENAS cell {name!r} (known: {', '.join(NAMED_CELLS)})") from None
    return highway_cell(arc, name=name, source=f"ENAS cell {name!r}")
