"""Layer hidden states on the probe batch and their covariance score, shared by ``hidden_cov``, ``hidden_cov_l2``
and ``hidden_cov_l3`` (Serianni & Kalita, ACL 2023, "Layer N Hidden Covariance").

What they compute (``RNN_metrics.ipynb`` of aaronserianni/training-free-nas): a hook stores ``h_prev_0``, the
hidden state that enters the cell, at every step of every layer of an untrained model in eval mode; for layer ``l``
these are the zero initial state and the layer's outputs at steps ``0..T-2``. Stacked as ``(batch, H, T)`` and
reshaped to ``(H, batch * T)``: the *hidden units are the variables* and every (sequence, time step) pair is an
observation. ``C = corrcoef`` over the units (``H x H``) and, with the eigenvalues ``v`` of ``C`` and ``k = 1e-5``,

    score = -sum_v [ log(v + k) + 1 / (v + k) ]

(the Jacobian-covariance formula of Mellor et al. v1). Their correlation with the test loss is negative, so higher is
better. We match all of that on ``ctx.inputs`` (their probe was a PTB test minibatch of 50 x 70; ours is the config's
probe batch). With fewer observations than units (default: 10 x 35 = 350 < 600), ``C`` has rank < H and each null
eigenvalue adds the same constant ``-(log k + 1/k)``: an offset shared by all cells that leaves rankings unchanged.
On 27 development-split cells our layer 1/2/3 scores have Spearman 0.89/0.93/0.98 with the published columns.

A unit that is constant over the batch has no correlation (NaN in ``corrcoef``), so the score is NaN.
"""

from __future__ import annotations

import torch

from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import Unsupported

Tensor = torch.Tensor
K = 1e-5
REVISION = 1  # of hidden_cov, hidden_cov_l2 and hidden_cov_l3


def cell_input_states(ctx: ScoringContext, layer: int) -> Tensor:
    """``(T, B, H)``: the ``h_prev_0`` each step's cell of layer ``layer`` (1-based) receives: the zero state,
    then its outputs 0..T-2. From the context's read-only forward pass of the probe batch (cached there), which
    runs only the layers up to this one."""
    out = ctx.layer_outputs(layer - 1)
    return torch.cat([torch.zeros_like(out[:1]), out[:-1]], 0)


def correlation_eigenvalues(states: Tensor) -> Tensor | None:
    """``states`` ``(T, B, H)`` -> the eigenvalues (ascending, float64) of the correlation matrix between the ``H``
    units, with every (sequence, step) an observation; None when a unit is constant (no correlation)."""
    T, B, H = states.shape
    x = states.permute(2, 1, 0).reshape(H, B * T).double()
    corr = torch.corrcoef(x)
    if not bool(torch.isfinite(corr).all()):
        return None
    return torch.linalg.eigvalsh(corr)


def covariance_score(states: Tensor) -> float:
    """``states`` ``(T, B, H)`` -> the score above (float64): units are variables, (sequence, step) observations."""
    v = correlation_eigenvalues(states)
    return float("nan") if v is None else _score(v)


def _score(v: Tensor) -> float:
    return float(-(torch.log(v + K) + 1.0 / (v + K)).sum())


def _check_layer(ctx: ScoringContext, layer: int) -> None:
    if not 1 <= layer <= ctx.n_layers:
        raise Unsupported(f"layer {layer} does not exist: the model has {ctx.n_layers} layer(s)")


def layer_eigenvalues(ctx: ScoringContext, layer: int) -> Tensor | None:
    """:func:`correlation_eigenvalues` of layer ``layer`` (1-based) on the probe batch, cached in ``ctx.cache``
    (shared by ``hidden_cov`` and the parts below)."""
    _check_layer(ctx, layer)
    key = f"hidden/eigenvalues/{layer}"
    if key not in ctx.cache:
        ctx.cache[key] = correlation_eigenvalues(cell_input_states(ctx, layer))
    return ctx.cache[key]


def layer_score(ctx: ScoringContext, layer: int) -> float:
    """The score of layer ``layer`` (1-based, as in the paper's column names)."""
    v = layer_eigenvalues(ctx, layer)
    return float("nan") if v is None else _score(v)


# ------------------------------------------------------------------------------------------------------------------
# The parts of layer 1's state that docs/findings.md ("Why the LSTMs sit in the middle") separates: its null
# directions (hidden_rank), its scale (state_rms) and the share of it carried from the past (state_memory).
# ------------------------------------------------------------------------------------------------------------------

NULL_EPS = 1e-8  # an eigenvalue of the correlation below this is a null direction (spread < 1e-4 of a unit's)


def shared_nulls(T: int, B: int, H: int) -> int:
    """Null directions every cell has: the ``B`` zero initial states are one observation and the centring removes
    one more, so at most ``B (T - 1)`` of the ``H`` directions can vary."""
    return max(0, H - B * (T - 1))


def excess_nulls(eigenvalues: Tensor, T: int, B: int, H: int, eps: float = NULL_EPS) -> int:
    """Eigenvalues below ``eps`` beyond :func:`shared_nulls`."""
    return int((eigenvalues < eps).sum()) - shared_nulls(T, B, H)


def state_memory_share(ctx: ScoringContext) -> float:
    """``||h - h°|| / ||h||`` over layer 1's outputs ``h`` on the probe batch, where ``h°`` is each step run again
    from a zero carried state (all steps as one batch of single steps): the share of the state that comes from
    the past. NaN when the outputs are all zero."""
    emb = ctx.embedded_inputs
    T, B, E = emb.shape
    with torch.no_grad():
        fresh, _ = ctx.layer(0)(emb.reshape(1, T * B, E))
    out = ctx.layer_outputs(0).double()
    norm = out.norm()
    if not bool(norm > 0):
        return float("nan")
    return float((out - fresh.reshape(out.shape).double()).norm() / norm)
