"""A LightGBM booster's text, checked in Python before LightGBM sees any of it.

LightGBM's native model parser trusts its input: a tree whose child indices point outside the tree, arrays of the
wrong length or ``tree_sizes`` that do not match the text read and write outside their buffers (abort, segfault,
heap corruption). The model file's SHA-256 proves only that the file is whole, not who wrote it, so a booster
text from a model file is parsed here, line by line, against the format LightGBM writes for the models zeronas
fits (numerical splits, one output, no linear trees), every number and index is checked, and LightGBM is then
given only a canonical text rebuilt from the checked lines (the number tokens as they were, so the doubles are the
same): the header, the trees' prediction fields, nothing else.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

MAX_TREES = 100_000
MAX_LEAVES = 1 << 17
OBJECTIVES = {"regression": "regression", "lambdarank": "lambdarank", "binary": "binary sigmoid:1"}
_INT = re.compile(r"-?\d{1,10}")
_FLOAT = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,4})?")
_HEADER = ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx", "objective",
           "feature_names", "feature_infos", "tree_sizes")
_PREDICTION = ("split_feature", "threshold", "decision_type", "left_child", "right_child", "leaf_value")
_AUX = ("split_gain", "leaf_weight", "leaf_count", "internal_value", "internal_weight", "internal_count")
_DECISION_TYPES = {0, 2, 4, 6, 8, 10}  # numerical: default-left bit, missing type none/zero/NaN; no categorical


class BoosterTextError(ValueError):
    """A booster text that is not what LightGBM writes for a zeronas model; the message says where."""


def _ints(text: str, where: str) -> list[int]:
    tokens = text.split(" ") if text else []
    if not all(_INT.fullmatch(t) for t in tokens):
        raise BoosterTextError(f"{where}: not a list of integers")
    return [int(t) for t in tokens]


def _floats(text: str, where: str, infinite: bool = False) -> list[str]:
    """The tokens, each a finite decimal number (kept as written, so LightGBM parses the same double); with
    ``infinite``, ``inf`` and ``-inf`` too (a threshold that sends every value one way), never NaN."""
    tokens = text.split(" ") if text else []
    for t in tokens:
        ok = bool(_FLOAT.fullmatch(t)) and math.isfinite(float(t)) or (infinite and t in ("inf", "-inf"))
        if not ok:
            raise BoosterTextError(f"{where}: {t[:30]!r} is not a {'number' if infinite else 'finite number'}")
    return tokens


def _key_values(lines: Sequence[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or key in out:
            raise BoosterTextError(f"{where}: line {line[:40]!r} is not a single key=value")
        out[key] = value
    return out


def _check_structure(left: list[int], right: list[int], n_leaves: int, where: str) -> None:
    """Every internal node but the root, and every leaf, is the child of exactly one node, all reachable from the
    root: a tree, with no index outside it."""
    n_internal = n_leaves - 1
    seen_nodes, seen_leaves = [0] * n_internal, [0] * n_leaves
    for child in left + right:
        if child >= 0:
            if not 0 < child < n_internal:
                raise BoosterTextError(f"{where}: child node {child} outside the tree")
            seen_nodes[child] += 1
        else:
            if not 0 <= ~child < n_leaves:
                raise BoosterTextError(f"{where}: child leaf {~child} outside the tree")
            seen_leaves[~child] += 1
    if any(n != 1 for n in seen_nodes[1:]) or any(n != 1 for n in seen_leaves):
        raise BoosterTextError(f"{where}: a node or leaf is not the child of exactly one node")
    stack, reached = [0], 0
    while stack:  # with one parent each, every node reached once means no cycle
        node = stack.pop()
        reached += 1
        if reached > n_internal:
            raise BoosterTextError(f"{where}: the nodes form a cycle")
        stack.extend(c for c in (left[node], right[node]) if c >= 0)
    if reached != n_internal:
        raise BoosterTextError(f"{where}: some nodes are not reachable from the root")


def _tree(lines: Sequence[str], index: int, n_features: int) -> list[str]:
    """The checked prediction lines of tree ``index``."""
    where = f"tree {index}"
    kv = _key_values(lines, where)
    if kv.get("num_cat") != "0" or kv.get("is_linear", "0") != "0":
        raise BoosterTextError(f"{where}: categorical or linear trees are not zeronas's")
    leaves = _ints(kv.get("num_leaves", ""), f"{where} num_leaves")
    if len(leaves) != 1 or not 1 <= leaves[0] <= MAX_LEAVES:
        raise BoosterTextError(f"{where}: num_leaves must be 1 to {MAX_LEAVES}")
    n_leaves = leaves[0]
    n_internal = n_leaves - 1
    for key in _PREDICTION:
        if key not in kv:
            raise BoosterTextError(f"{where}: no {key}")
    features = _ints(kv["split_feature"], f"{where} split_feature")
    decisions = _ints(kv["decision_type"], f"{where} decision_type")
    left, right = _ints(kv["left_child"], f"{where} left_child"), _ints(kv["right_child"], f"{where} right_child")
    thresholds = _floats(kv["threshold"], f"{where} threshold", infinite=True)
    values = _floats(kv["leaf_value"], f"{where} leaf_value")
    shrinkage = _floats(kv.get("shrinkage", "1"), f"{where} shrinkage")
    if any(len(a) != n_internal for a in (features, decisions, left, right, thresholds)) or len(values) != n_leaves:
        raise BoosterTextError(f"{where}: its arrays do not have num_leaves - 1 splits and num_leaves leaves")
    if len(shrinkage) != 1:
        raise BoosterTextError(f"{where}: shrinkage must be one number")
    if any(not 0 <= f < n_features for f in features):
        raise BoosterTextError(f"{where}: a split on a feature outside 0..{n_features - 1}")
    if any(d not in _DECISION_TYPES for d in decisions):
        raise BoosterTextError(f"{where}: a decision type that is not a numerical split")
    if n_internal:
        _check_structure(left, right, n_leaves, where)
    for key in _AUX:  # not used to predict, and not handed on; checked all the same
        _floats(kv.get(key, ""), f"{where} {key}", infinite=True)
    return [f"Tree={index}", f"num_leaves={n_leaves}", "num_cat=0",
            *(f"{key}={kv[key]}" for key in _PREDICTION), "is_linear=0", f"shrinkage={shrinkage[0]}"]


def _header(lines: Sequence[str], feature_names: Sequence[str], objective: str) -> tuple[list[str], int]:
    """The checked header lines (without tree_sizes) and the number of trees tree_sizes announces, or -1."""
    kv = _key_values(lines, "header")
    unknown = sorted(set(kv) - set(_HEADER))
    if unknown:
        raise BoosterTextError(f"header: unknown field {unknown[0][:30]!r}")
    expect = {"version": "v4", "num_class": "1", "num_tree_per_iteration": "1", "label_index": "0",
              "max_feature_idx": str(len(feature_names) - 1), "objective": OBJECTIVES[objective],
              "feature_names": " ".join(feature_names)}
    for key, value in expect.items():
        if kv.get(key) != value:
            raise BoosterTextError(f"header: {key} is {kv.get(key, '(missing)')[:40]!r}, expected {value[:40]!r}")
    infos = kv.get("feature_infos", "").split(" ")
    info = re.compile(r"none|\[" + _FLOAT.pattern + ":" + _FLOAT.pattern + r"\]")
    if len(infos) != len(feature_names) or not all(info.fullmatch(i) for i in infos):
        raise BoosterTextError("header: feature_infos is not one [min:max] or none per feature")
    n_trees = len(_ints(kv["tree_sizes"], "header tree_sizes")) if "tree_sizes" in kv else -1
    return ["tree", *(f"{k}={v}" for k, v in expect.items()), f"feature_infos={kv['feature_infos']}"], n_trees


def canonical_booster(text: str, feature_names: Sequence[str], objective: str) -> str:
    """``text`` (LightGBM's ``model_to_string``) checked, as a canonical text holding only what prediction reads;
    :class:`BoosterTextError` naming the first problem otherwise. ``objective``: regression, lambdarank or
    binary; ``feature_names``: the names the booster must have been fitted with."""
    if not isinstance(text, str):
        raise BoosterTextError(f"not a text but a {type(text).__name__}")
    body, sep, _ = text.partition("\nend of trees\n")
    if not sep:
        raise BoosterTextError("no 'end of trees' line")
    blocks = [b for b in re.split(r"\n\s*\n", body.strip("\n")) if b.strip()]
    if not blocks or blocks[0].splitlines()[0] != "tree":
        raise BoosterTextError("does not start with LightGBM's 'tree' line")
    header, announced = _header(blocks[0].splitlines()[1:], feature_names, objective)
    trees = blocks[1:]
    if not 1 <= len(trees) <= MAX_TREES or announced not in (-1, len(trees)):
        raise BoosterTextError(f"{len(trees)} trees (tree_sizes announces {announced}); 1 to {MAX_TREES} expected")
    out = ["\n".join(header), ""]
    for i, block in enumerate(trees):
        lines = block.splitlines()
        if lines[0] != f"Tree={i}":
            raise BoosterTextError(f"tree {i}: starts with {lines[0][:30]!r}, not Tree={i}")
        out += ["\n".join(_tree(lines[1:], i, len(feature_names))), "", ""]
    return "\n".join(out) + "end of trees\n"


__all__ = ["BoosterTextError", "canonical_booster"]
