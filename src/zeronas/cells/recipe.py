"""Recipes: parse, validate and identify recurrent cells written in the NAS-Bench-NLP cell language.

A recipe is a JSON object mapping node names to ``{"op": OP, "input": [names]}``. The inputs of a cell
are ``x`` and ``h_prev_0..k-1``; its outputs are the nodes named exactly ``h_new_0..k-1``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from zeronas.cells.ops import OPS

MAX_HIDDEN_TUPLE_SIZE = 3
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# \Z, not $ ($ also matches before a final newline); indices are ASCII decimal without leading zeros:
# "h_prev_00", "h_prev_\u0661" or "h_prev_0\n" would otherwise pass as an input while naming no real one.
OUTPUT_RE = re.compile(r"^h_new_(0|[1-9][0-9]*)\Z")
PREV_RE = re.compile(r"^h_prev_(0|[1-9][0-9]*)\Z")
# Tie groups at commutative nodes are resolved by trying their permutations; beyond this many
# combinations the id would be too slow to compute, so we refuse rather than give a wrong id.
MAX_TIE_COMBINATIONS = 40320


class RecipeError(ValueError):
    """A recipe that cannot be a cell. The message names the source, the node and the problem."""


def sha1_of_recipe(recipe: Mapping[str, Any]) -> str:
    """The benchmark's key: sha1 of the recipe as sorted-key compact JSON."""
    return hashlib.sha1(canonical_json(recipe).encode()).hexdigest()


def canonical_json(recipe: Mapping[str, Any]) -> str:
    return json.dumps(recipe, sort_keys=True, separators=(",", ":"))


def _read_only(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError("a cell's recipe is read-only: build a new cell from a copy (Cell(cell.to_dict()))")


class _Inputs(list):
    """A node's inputs: a list that refuses every change (compares, serialises and iterates as a list)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self) -> tuple:
        return type(self), (list(self),)


class _Mapping(dict):
    """A dict that refuses every change (a node, or the recipe): it compares with and serialises as a dict."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(canonical_json(self))

    def __reduce__(self) -> tuple:
        return type(self), (dict(self),)


class Cell:
    """A validated, immutable cell: the constructor checks ``recipe`` (a mapping of nodes, see the module
    docstring) and keeps a read-only copy, so that no caller can change a cell after its ids are known. Equal
    cells (same recipe and name) hash alike. :func:`parse_recipe` and :func:`load_cell` build one from JSON text
    or a file; ``RecipeError`` names ``source``, the node and the problem."""

    __slots__ = ("recipe", "hidden_tuple_size", "order", "name", "_ids")

    recipe: Mapping[str, Mapping[str, Any]]
    hidden_tuple_size: int
    order: tuple[str, ...]  # nodes in topological order (inputs excluded)
    name: str | None

    def __init__(self, recipe: Mapping[str, Mapping[str, Any]], *, name: str | None = None,
                 source: str = "recipe", max_hidden_tuple_size: int = MAX_HIDDEN_TUPLE_SIZE) -> None:
        checked = _check_shape(recipe, source)
        k = _check_outputs(checked, source, max_hidden_tuple_size)
        _check_inputs_defined(checked, k, source)
        order = _topological_order(checked, source)
        _check_inputs_used(checked, k, source)
        _check_no_dead_nodes(checked, k, source)
        frozen = _Mapping({n: _Mapping(op=spec["op"], input=_Inputs(spec["input"])) for n, spec in checked.items()})
        for attr, value in (("recipe", frozen), ("hidden_tuple_size", k), ("order", order), ("name", name),
                            ("_ids", {})):
            object.__setattr__(self, attr, value)

    @staticmethod
    def from_recipe(recipe: Any, *, source: str = "recipe", name: str | None = None) -> "Cell":
        return parse_recipe(recipe, source=source, name=name)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"a Cell is immutable (cannot set {attr!r})")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"a Cell is immutable (cannot delete {attr!r})")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.recipe, self.hidden_tuple_size, self.order, self.name) == (
            other.recipe, other.hidden_tuple_size, other.order, other.name)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.arch_sha1, self.name))

    def __repr__(self) -> str:
        return (f"Cell(recipe={self.to_dict()!r}, hidden_tuple_size={self.hidden_tuple_size!r}, "
                f"order={self.order!r}, name={self.name!r})")

    def __reduce__(self) -> tuple:
        return _cell_from, (self.to_dict(), self.name)

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("x",) + tuple(f"h_prev_{i}" for i in range(self.hidden_tuple_size))

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(f"h_new_{i}" for i in range(self.hidden_tuple_size))

    @property
    def arch_sha1(self) -> str:
        if "sha1" not in self._ids:
            self._ids["sha1"] = sha1_of_recipe(self.recipe)
        return self._ids["sha1"]

    @property
    def canonical_id(self) -> str:
        """Invariant to renaming intermediate nodes and to the input order of commutative ops."""
        if "canonical" not in self._ids:
            self._ids["canonical"] = _canonical_id(self.recipe, self.hidden_tuple_size, self.order)
        return self._ids["canonical"]

    def op(self, node: str) -> str:
        return self.recipe[node]["op"]

    def node_inputs(self, node: str) -> list[str]:
        return self.recipe[node]["input"]

    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(v["op"] for v in self.recipe.values()).items()))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The recipe as plain, mutable dicts and lists (a copy: changing it changes no cell)."""
        return {n: {"op": spec["op"], "input": list(spec["input"])} for n, spec in self.recipe.items()}

    def to_json(self, indent: int | None = None) -> str:
        if indent is None:
            return canonical_json(self.recipe)
        return json.dumps(self.recipe, sort_keys=True, indent=indent)

    def __len__(self) -> int:
        return len(self.recipe)


def _cell_from(recipe: dict[str, dict[str, Any]], name: str | None) -> Cell:
    """Unpickling: the cell is validated again from its plain recipe."""
    return Cell(recipe, name=name)


def load_cell(path: str | Path, *, name: str | None = None) -> Cell:
    """Read and validate a recipe file. Errors name the file."""
    from zeronas.files import MiB, FileArgError, read_text

    p = Path(path)
    try:  # a regular file of bounded size: never a FIFO that blocks or /dev/zero
        text = read_text(p, what="recipe file", limit=16 * MiB)
    except FileArgError as exc:
        raise RecipeError(str(exc)) from None
    return parse_recipe(text, source=str(p), name=name)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise RecipeError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def parse_recipe(obj: Any, *, source: str = "recipe", name: str | None = None,
                 max_hidden_tuple_size: int = MAX_HIDDEN_TUPLE_SIZE) -> Cell:
    """Parse a JSON string (or an already decoded mapping) and validate it as a cell. From a string, the canonical
    id is computed at once, so that a recipe too symmetric to identify is refused with the other input errors;
    the generators, which build mappings and redraw such cells, meet it when they ask for the id."""
    if isinstance(obj, Cell):
        return obj
    from_text = isinstance(obj, (str, bytes))
    if from_text:
        try:
            obj = json.loads(obj, object_pairs_hook=_reject_duplicates)
        except RecipeError as exc:
            raise RecipeError(f"{source}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise RecipeError(f"{source}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise RecipeError(f"{source}: JSON nested too deeply to be a cell recipe") from None
    cell = Cell(obj, name=name, source=source, max_hidden_tuple_size=max_hidden_tuple_size)
    if from_text:  # user input (a file, a CSV line, a command line): a recipe whose id cannot be computed is
        try:       # refused here, with its source named, not later wherever the id is first needed
            cell.canonical_id
        except RecipeError as exc:
            raise RecipeError(f"{source}: {exc}") from None
    return cell


def _check_shape(obj: Any, source: str) -> dict[str, dict[str, Any]]:
    if not isinstance(obj, Mapping):
        raise RecipeError(f"{source}: a recipe must be a JSON object of nodes, got {type(obj).__name__}")
    if not obj:
        raise RecipeError(f"{source}: the recipe has no nodes")
    recipe: dict[str, dict[str, Any]] = {}
    for node, spec in obj.items():
        if not isinstance(node, str) or not NAME_RE.match(node):
            raise RecipeError(f"{source}: node {node!r}: a node name must be letters, digits and '_' "
                              "and not start with a digit")
        if node == "x" or PREV_RE.match(node):
            raise RecipeError(f"{source}: node {node!r}: this name is reserved for a cell input")
        if not isinstance(spec, Mapping):
            raise RecipeError(f"{source}: node {node!r}: must be an object with 'op' and 'input'")
        extra = sorted(set(spec) - {"op", "input"}, key=repr)
        if extra:
            raise RecipeError(f"{source}: node {node!r}: unknown field(s) {', '.join(map(repr, extra))}; "
                              "a node has only 'op' and 'input'")
        if "op" not in spec:
            raise RecipeError(f"{source}: node {node!r}: missing field 'op'")
        if "input" not in spec:
            raise RecipeError(f"{source}: node {node!r}: missing field 'input'")
        op, inputs = spec["op"], spec["input"]
        if not isinstance(op, str):
            raise RecipeError(f"{source}: node {node!r}: field 'op' must be a string")
        if op not in OPS:
            raise RecipeError(f"{source}: node {node!r}: unknown op {op!r} (known: {', '.join(sorted(OPS))})")
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise RecipeError(f"{source}: node {node!r}: field 'input' must be a list of node names")
        if not OPS[op].accepts(len(inputs)):
            raise RecipeError(f"{source}: node {node!r}: op {op!r} takes {OPS[op].arity_text()} input(s), "
                              f"got {len(inputs)}")
        recipe[node] = {"op": op, "input": list(inputs)}
    return recipe


def _check_outputs(recipe: dict[str, dict[str, Any]], source: str, max_k: int) -> int:
    indices = sorted(int(m.group(1)) for n in recipe if (m := OUTPUT_RE.match(n)))
    if not indices:
        raise RecipeError(f"{source}: missing output node 'h_new_0' (outputs are named h_new_0..h_new_k-1)")
    k = indices[-1] + 1
    for i in range(k):
        if i not in indices:
            raise RecipeError(f"{source}: missing output node 'h_new_{i}' (found h_new_{k - 1}, so the hidden "
                              f"tuple size is {k} and h_new_0..h_new_{k - 1} must all exist)")
    if k > max_k:
        raise RecipeError(f"{source}: hidden tuple size {k} is over the maximum {max_k} (node 'h_new_{k - 1}')")
    return k


def _check_inputs_defined(recipe: dict[str, dict[str, Any]], k: int, source: str) -> None:
    for node, spec in recipe.items():
        for inp in spec["input"]:
            if inp == "x" or inp in recipe:
                continue
            m = PREV_RE.match(inp)
            if m and int(m.group(1)) < k:
                continue
            if m:
                raise RecipeError(f"{source}: node {node!r}: input {inp!r} is not defined: the hidden tuple size "
                                  f"is {k} (outputs h_new_0..h_new_{k - 1}), so only h_prev_0..h_prev_{k - 1} exist")
            raise RecipeError(f"{source}: node {node!r}: input {inp!r} is not defined")


def _topological_order(recipe: dict[str, dict[str, Any]], source: str) -> tuple[str, ...]:
    """Depth-first topological sort that reports the first cycle it finds as a path."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    order: list[str] = []
    for root in sorted(recipe):
        if state.get(root) == 2:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            inputs = recipe[node]["input"]
            if i < len(inputs):
                stack[-1] = (node, i + 1)
                child = inputs[i]
                if child not in recipe:
                    continue
                if state.get(child) == 1:
                    cycle = path[path.index(child):] + [child]
                    raise RecipeError(f"{source}: node {child!r}: cycle " + " -> ".join(reversed(cycle)))
                if state.get(child) != 2:
                    state[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                state[node] = 2
                order.append(node)
                stack.pop()
                path.pop()
    return tuple(order)


def _check_inputs_used(recipe: dict[str, dict[str, Any]], k: int, source: str) -> None:
    used = {inp for spec in recipe.values() for inp in spec["input"]}
    for inp in ["x"] + [f"h_prev_{i}" for i in range(k)]:
        if inp not in used:
            raise RecipeError(f"{source}: input {inp!r} is not used by any node")


def live_nodes(recipe: Mapping[str, Mapping[str, Any]], outputs: Iterable[str]) -> set[str]:
    """The nodes that some output depends on (the outputs included; cell inputs excluded)."""
    alive: set[str] = set()
    todo = list(outputs)
    while todo:
        node = todo.pop()
        if node in alive or node not in recipe:
            continue
        alive.add(node)
        todo.extend(recipe[node]["input"])
    return alive


def _check_no_dead_nodes(recipe: dict[str, dict[str, Any]], k: int, source: str) -> None:
    alive = live_nodes(recipe, [f"h_new_{i}" for i in range(k)])
    dead = [n for n in recipe if n not in alive]
    if dead:
        raise RecipeError(f"{source}: node {dead[0]!r} feeds no output (h_new_*)"
                          + (f"; also {', '.join(map(repr, dead[1:]))}" if len(dead) > 1 else ""))


# ----------------------------------------------------------------------------------------------
# Canonical id
# ----------------------------------------------------------------------------------------------

def _subgraph_signatures(recipe: dict[str, dict[str, Any]], order: Sequence[str]) -> dict[str, str]:
    """A Merkle hash per node of the tree below it, commutative inputs sorted.

    It ignores sharing (two distinct but identical sub-trees hash alike); it only orders children,
    and the full serialization in :func:`_canonical_id` settles ties exactly."""
    sigs: dict[str, str] = {}
    for node in order:  # the cell's topological order: every input first, no recursion however deep the cell
        spec = recipe[node]
        child = [sigs.get(c, c) for c in spec["input"]]  # a cell input (x, h_prev_i) is its own signature
        if OPS[spec["op"]].commutative:
            child.sort()
        sigs[node] = hashlib.sha1(f"{spec['op']}({','.join(child)})".encode()).hexdigest()
    return sigs


def _serialize(recipe: dict[str, dict[str, Any]], roots: list[str], sig, tie_order: dict[str, list[str]]) -> str:
    """Depth-first serialization with first-visit numbering: a complete description of a DAG whose
    children are ordered. Commutative children are ordered by signature, ties by ``tie_order``."""
    numbers: dict[str, int] = {}
    parts: list[str] = []

    def children(node: str) -> list[str]:
        inputs = recipe[node]["input"]
        if node in tie_order:
            return tie_order[node]
        if OPS[recipe[node]["op"]].commutative:
            return sorted(inputs, key=sig)
        return list(inputs)

    def visit(root: str) -> str:
        """The recursive definition (number a node when first met, then its children in order, then emit it),
        run on an explicit stack so that a long chain of nodes cannot exhaust Python's recursion limit."""
        if root not in recipe:
            return root
        if root in numbers:
            return f"#{numbers[root]}"
        numbers[root] = len(numbers)
        stack: list[tuple[str, list[str], list[str]]] = [(root, children(root), [])]
        while True:
            node, kids, refs = stack[-1]
            if len(refs) < len(kids):
                c = kids[len(refs)]
                if c not in recipe:
                    refs.append(c)
                elif c in numbers:
                    refs.append(f"#{numbers[c]}")
                else:
                    numbers[c] = len(numbers)
                    stack.append((c, children(c), []))
                continue
            stack.pop()
            parts.append(f"{numbers[node]}={recipe[node]['op']}({','.join(refs)})")
            ref = f"#{numbers[node]}"
            if not stack:
                return ref
            stack[-1][2].append(ref)

    tops = [visit(r) for r in roots]
    return ";".join(parts) + "|" + ",".join(tops)


def _canonical_id(recipe: dict[str, dict[str, Any]], k: int, order: Sequence[str]) -> str:
    sigs = _subgraph_signatures(recipe, order)

    def sig(n: str) -> str:
        return sigs.get(n, n)

    # Commutative nodes whose sorted children contain distinct nodes with equal signatures: those
    # children may still differ by how they are shared elsewhere, so every order is tried.
    tie_choices: list[tuple[str, list[list[str]]]] = []
    n_combos = 1  # counted before the orderings are listed: listing 12! of them would not finish
    for node, spec in recipe.items():
        if not OPS[spec["op"]].commutative or len(spec["input"]) < 2:
            continue
        ordered = sorted(spec["input"], key=sig)
        groups = [list(g) for _, g in itertools.groupby(ordered, key=sig)]
        if all(len(set(g)) == 1 for g in groups):
            continue
        n_combos *= math.prod(math.factorial(len(g)) for g in groups)
        if n_combos > MAX_TIE_COMBINATIONS:
            raise RecipeError(f"recipe too symmetric to identify (over {MAX_TIE_COMBINATIONS} orderings of tied "
                              f"inputs, at node {node!r})")
        options = [list(itertools.chain.from_iterable(p))
                   for p in itertools.product(*[itertools.permutations(g) for g in groups])]
        tie_choices.append((node, options))
    roots = [f"h_new_{i}" for i in range(k)]
    best: str | None = None
    for combo in itertools.product(*[options for _, options in tie_choices]):
        tie_order = {node: order for (node, _), order in zip(tie_choices, combo)}
        text = _serialize(recipe, roots, sig, tie_order)
        if best is None or text < best:
            best = text
    assert best is not None
    return hashlib.sha1(best.encode()).hexdigest()
