"""TE-NAS-style pruning (Chen et al., ICLR 2021, "Neural Architecture Search on ImageNet in Four GPU Hours") for
the ENAS and DARTS recurrent spaces.

**The supernet.** Every node ``i`` of a highway cell (see :mod:`zeronas.cells.enas`) chooses one *candidate*
``(j, f)``: the earlier node ``j`` it reads (node 0 reads ``x`` and ``h_prev_0``) and its activation ``f``. The
supernet holds every candidate at once: node ``i`` is the mean (``elementwise_mean``) of the highway branches
``blend(c_ij, f(W_h s_j), s_j)`` of its remaining candidates, where ``c_ij = sigm(W_c s_j)``. As in the DARTS
supernet (``DARTSCell`` of quark0/darts, ``rnn/model_search.py``), the gate and the candidate projection of an edge
``j -> i`` are shared by its activations; the mean is DARTS's mixture with uniform weights. The output is the
space's: DARTS averages its step nodes; ENAS averages the loose ends, here the nodes that no remaining candidate
reads. With one candidate per node left, the supernet *is* the cell of the space (same canonical id).

**Pruning** (TE-NAS's ``prune_func_rank``). Each round, for every node with more than one candidate and every
candidate ``c`` of it, the supernet without ``c`` is scored by the proxy (default ``ntk_cond+linear_regions``:
NTK condition number, lower is better, and linear regions, higher is better). All the round's trial networks are
ranked together by each member in its own direction and the ranks are summed
(:func:`zeronas.metrics.combine_ranks`); the higher a trial ranks, the less removing its candidate hurts. Each
node then drops its ``k`` candidates whose removal hurts least, ``k = max(1, floor(fraction * (n - 1)))`` for
``n`` candidates (``fraction = 0.5`` by default; TE-NAS drops one per edge per round, ``prune_number=1``, which on
these spaces costs ~4,000 supernet scores for ENAS instead of ~600). Rounds repeat until every node keeps one
candidate. A trial whose score failed (e.g. a singular NTK, ``inf``) ranks last: its candidate is kept.

Identical nodes. The proxies like wide, shallow cells: many nodes end up reading node 0 through the same
activation, i.e. identical subtrees under one mean. Past 8 of them (more exactly: over
``recipe.MAX_TIE_COMBINATIONS`` orderings of tied inputs) a cell has no canonical id, so it cannot be stored, and
the ENAS/DARTS samplers redraw such cells; it is outside the searchable space. So a trial network that cannot be
identified counts as failed, and when a round's decisions would leave such a supernet, the highest-numbered node
among the identical ones keeps its next least prunable candidate instead (repeated until the supernet can be
identified).

Adaptations: TE-NAS ranks the *change* of each indicator against the unpruned supernet, ``(K0 - K)/K0`` and
``(R0 - R)/R0``; with one reference per round that is the same order as ranking the trial networks themselves,
which is what we do (and saves scoring the reference). Ties are average ranks (TE-NAS gives tied values the same
rank too). TE-NAS re-initialises and repeats each measurement (``repeat``); we score once per config seed.

**Cost.** A supernet has many more weights than a cell (ENAS, 12 nodes: 268 candidates on 134 edges), and the NTK
needs one backward pass per probe sequence, so pruning uses its own small scoring config, :data:`PRUNE_CONFIG`
(hidden and embedding size 32, one layer, 4 sequences of 8 tokens): with one worker the ENAS space prunes in
about 4.5 minutes (589 trial networks in 7 rounds), the DARTS space in 78 s (318 in 6). Trial networks are scored
through the store like any cell, so an interrupted run resumes and a second run scores nothing.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from zeronas.cells.recipe import Cell, RecipeError, parse_recipe
from zeronas.cells.spaces import SearchSpace
from zeronas.core.config import ScoringConfig
from zeronas.search.core import Budget, Candidate, ProgressFn, Scorer, SearchError, fitness

__all__ = ["DEFAULT_FRACTION", "PRUNE_CONFIG", "PRUNE_PROXY", "Supernet", "prune", "supernet_for"]

PRUNE_PROXY = "ntk_cond+linear_regions"
#: Small enough that the full ENAS supernet (12 nodes, 268 candidates) scores in ~0.6 s on one core (DARTS, 145
#: candidates: ~0.4 s). Measured end to end with one worker: ENAS 589 trial networks in 4.5 min, DARTS 318 in 78 s.
PRUNE_CONFIG = ScoringConfig(batch_size=4, seq_len=8, emb_size=32, hidden_size=32, n_layers=1, ntk_batch=4)
DEFAULT_FRACTION = 0.5

# (j, f): node j (-1 = the cell inputs x and h_prev_0) read through activation f (ENAS/DARTS names)
Choice = tuple[int, str]
State = tuple[tuple[Choice, ...], ...]


@dataclass(frozen=True)
class Supernet:
    """The candidate structure of a highway space: node 0's activations, the others' activations, the output
    rule (``"loose_ends"`` for ENAS, ``"steps"`` for DARTS) and the space's cell constructor."""

    space: str
    num_nodes: int
    first_activations: tuple[str, ...]
    activations: tuple[str, ...]
    outputs: str
    build: Callable[[list[str], list[int]], Cell]  # the space's cell for one candidate per node

    def initial(self) -> State:
        first = tuple((-1, f) for f in self.first_activations)
        rest = tuple(tuple((j, f) for j in range(i) for f in self.activations) for i in range(1, self.num_nodes))
        return (first,) + rest

    def output_nodes(self, state: State) -> list[int]:
        if self.outputs == "steps":
            return list(range(1, self.num_nodes)) if self.num_nodes > 1 else [0]
        read = {j for choices in state for j, _ in choices}
        return [i for i in range(self.num_nodes) if i not in read]

    def node_signatures(self, state: State) -> list[str]:
        """Per node, a hash of the subtree below it: equal for nodes that compute the same function of the
        inputs (same candidates on parents that are themselves equal)."""
        sigs: list[str] = []
        for choices in state:
            parts = sorted(f"{'in' if j < 0 else sigs[j]}:{f}" for j, f in choices)
            sigs.append(hashlib.sha1("|".join(parts).encode()).hexdigest()[:16])
        return sigs

    def recipe(self, state: State) -> dict[str, dict[str, Any]]:
        """The supernet holding the candidates in ``state`` (see the module docstring)."""
        from zeronas.cells.enas import ACTIVATION_OPS

        outs = self.output_nodes(state)
        only = outs[0] if len(outs) == 1 else None
        name = lambda i: "h_new_0" if i == only else f"s{i}"  # noqa: E731
        recipe: dict[str, dict[str, Any]] = {}
        for i, choices in enumerate(state):
            if not choices:
                raise SearchError(f"node {i} has no candidate left")
            branches = []
            for j in dict.fromkeys(j for j, _ in choices):  # the edges j -> i, in order
                src = ["x", "h_prev_0"] if j < 0 else [name(j)]
                carry = "h_prev_0" if j < 0 else src[0]
                edge = f"n{i}_{'in' if j < 0 else f'p{j}'}"
                recipe[f"{edge}_c_pre"] = {"op": "linear", "input": list(src)}
                recipe[f"{edge}_c"] = {"op": "activation_sigm", "input": [f"{edge}_c_pre"]}
                recipe[f"{edge}_h_pre"] = {"op": "linear", "input": list(src)}
                for jj, f in choices:
                    if jj != j:
                        continue
                    recipe[f"{edge}_{f}"] = {"op": ACTIVATION_OPS[f], "input": [f"{edge}_h_pre"]}
                    branches.append(f"{edge}_{f}_b")
                    recipe[branches[-1]] = {"op": "blend", "input": [f"{edge}_c", f"{edge}_{f}", carry]}
            if len(branches) == 1:
                recipe[name(i)] = recipe.pop(branches[0])
            else:
                recipe[name(i)] = {"op": "elementwise_mean", "input": branches}
        if only is None:
            recipe["h_new_0"] = {"op": "elementwise_mean", "input": [name(o) for o in outs]}
        return recipe

    def cell(self, state: State) -> Cell:
        return parse_recipe(self.recipe(state), source=f"{self.space} supernet")

    def final_cell(self, state: State) -> Cell:
        """The cell of the space chosen by a state with one candidate per node (built by the space's module)."""
        if any(len(c) != 1 for c in state):
            raise SearchError("every node must keep exactly one candidate")
        acts = [c[0][1] for c in state]
        parents = [c[0][0] for c in state[1:]]
        return self.build(acts, parents)


def supernet_for(space: SearchSpace) -> Supernet:
    """The supernet of a space that offers one (:meth:`SearchSpace.supernet`: the ENAS and DARTS spaces do)."""
    spec = space.supernet()
    if spec is None:
        raise SearchError(f"pruning needs a supernet, and the space {space.name!r} offers none (the enas and darts "
                          "spaces do)")
    return Supernet(space.name, spec.num_nodes, spec.first_activations, spec.activations, spec.outputs, spec.build)


def _drop_count(n: int, fraction: float) -> int:
    return min(n - 1, max(1, math.floor(fraction * (n - 1))))


def _identifiable(cell: Cell) -> bool:
    """Whether the cell has a canonical id (too many identical subtrees under one mean make it unidentifiable:
    :data:`zeronas.cells.recipe.MAX_TIE_COMBINATIONS`); the ENAS and DARTS samplers redraw such cells too."""
    try:
        cell.canonical_id
    except RecipeError:
        return False
    return True


def _score_trials(scorer: Scorer, cells: list[Cell]) -> list[Candidate]:
    """The trial networks as candidates; one that cannot be identified (so not stored) gets no score: failed."""
    trials = [Candidate(cell, {}, t) for t, cell in enumerate(cells)]
    good = [t for t, cell in enumerate(cells) if _identifiable(cell)]
    for t, scores in zip(good, scorer.score([cells[t] for t in good])):
        trials[t].scores = scores
    return trials


def _decide(net: Supernet, state: State, orders: dict[int, list[int]], drops: dict[int, int]) -> State:
    """Each node ``i`` keeps ``orders[i][drops[i]:]`` (``orders[i]``: positions, most prunable first). If the result
    cannot be identified (several nodes became the same subtree), the highest such node keeps instead its next
    least prunable candidate, until it can."""
    shift = {i: 0 for i in orders}

    def build() -> State:
        new = []
        for i, choices in enumerate(state):
            if i not in orders:
                new.append(choices)
                continue
            order, k = orders[i], drops[i]
            keep = order[k:]
            if shift[i]:
                keep = [order[k - shift[i]]] + keep[1:]  # swap the most prunable kept for a dropped one
            new.append(tuple(c for p, c in enumerate(choices) if p in set(keep)))
        return tuple(new)

    new_state = build()
    while not _identifiable(net.cell(new_state)):
        sigs = net.node_signatures(new_state)
        shared = [i for i in orders if sigs.count(sigs[i]) > 1 and shift[i] < drops[i]]
        if not shared:
            raise SearchError("pruning reached a supernet that cannot be identified (too many identical nodes)")
        shift[max(shared)] += 1
        new_state = build()
    return new_state


def prune(net: Supernet, scorer: Scorer, proxy: str, budget: Budget, *, fraction: float = DEFAULT_FRACTION,
          progress: ProgressFn | None = None) -> tuple[Cell, list[dict[str, Any]], int]:
    """Prune the supernet down to one cell of the space. Returns (the cell, one record per round, trial networks
    evaluated). When the budget (trial networks or time) runs out before the end, every node keeps the candidate
    whose removal hurt most in the last round."""
    if not 0.0 < fraction <= 1.0:
        raise SearchError(f"the pruning fraction must be in (0, 1], got {fraction}")
    state = net.initial()
    rounds: list[dict[str, Any]] = []
    evaluated = 0
    while any(len(c) > 1 for c in state):
        trials: list[tuple[int, Choice]] = [(i, c) for i, choices in enumerate(state) if len(choices) > 1
                                            for c in choices]
        if not rounds and budget.cells is not None and len(trials) > budget.cells:
            # a round is the unit of pruning: a budget below one round could only be overrun, so say it now
            raise SearchError(f"one pruning round of this space scores {len(trials)} trial networks; a budget of "
                              f"{budget.cells} cannot hold one (give --budget {len(trials)} or more, or none)")
        cells = [net.cell(tuple(tuple(x for x in ch if not (k == i and x == c)) for k, ch in enumerate(state)))
                 for i, c in trials]
        scored = _score_trials(scorer, cells)
        evaluated += len(scored)
        fit = fitness(scored, proxy)  # higher: the network without the candidate is better -> prune it first
        stop = budget.exhausted(evaluated)
        orders: dict[int, list[int]] = {}
        drops: dict[int, int] = {}
        cut_short = False
        for i, choices in enumerate(state):
            if len(choices) == 1:
                continue
            mine = [(fit[t], choices.index(c)) for t, (node, c) in enumerate(trials) if node == i]
            orders[i] = [pos for _, pos in sorted(mine, key=lambda fp: (-fp[0], fp[1]))]  # most prunable first
            drops[i] = _drop_count(len(choices), fraction)
            if stop and drops[i] < len(choices) - 1:
                drops[i], cut_short = len(choices) - 1, True
        new_state = _decide(net, state, orders, drops)
        dropped = {i: [c for c in state[i] if c not in new_state[i]] for i in orders}
        state = new_state
        rounds.append({"trials": len(trials), "failed": int(np.sum(~np.isfinite(fit))),
                       "left": sum(len(c) for c in state), "cut_short": cut_short,
                       "dropped": {str(i): [list(c) for c in cs] for i, cs in dropped.items()}})
        if progress is not None:
            progress(evaluated, budget.cells, None)
    return net.final_cell(state), rounds, evaluated
