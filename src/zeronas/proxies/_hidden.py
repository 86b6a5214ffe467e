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


def covariance_score(states: Tensor) -> float:
    """``states`` ``(T, B, H)`` -> the score above (float64): units are variables, (sequence, step) observations."""
    T, B, H = states.shape
    x = states.permute(2, 1, 0).reshape(H, B * T).double()
    corr = torch.corrcoef(x)
    if not bool(torch.isfinite(corr).all()):
        return float("nan")
    return _score(torch.linalg.eigvalsh(corr))


def _score(v: Tensor) -> float:
    return float(-(torch.log(v + K) + 1.0 / (v + K)).sum())


def layer_score(ctx: ScoringContext, layer: int) -> float:
    """The score of layer ``layer`` (1-based, as in the paper's column names)."""
    if not 1 <= layer <= ctx.n_layers:
        raise Unsupported(f"layer {layer} does not exist: the model has {ctx.n_layers} layer(s)")
    return covariance_score(cell_input_states(ctx, layer))
