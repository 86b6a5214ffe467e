"""``ntk_trace``: M_Trace = sqrt(||Theta||_tr / m) of the empirical NTK. Higher is better.

``Theta`` is the same kernel as ``ntk_cond`` (shared through ``ctx.cache``; see :mod:`zeronas.proxies._ntk`), ``m``
the number of sequences. For a PSD kernel the trace norm is the trace, i.e. the summed squared norms of the
per-sample gradients, so this is the root-mean-square per-sample gradient norm.

Reference and direction: NASI (Shu et al., ICLR 2022) scores architectures by the NTK trace norm, which bounds how
fast the training loss falls under gradient descent in the NTK regime (larger = faster convergence = better); Mok et
al. (CVPR 2022, "Demystifying the NTK") evaluate it in this normalised form as M_Trace. Both read larger as better,
and that is the registered direction. Measured here it runs the other way: on two disjoint samples of 30 and 100
development-split cells, Spearman with the PTB test loss was +0.30 and +0.36 (larger trace, higher loss), plausibly
because in an RNN a large per-sample gradient at initialisation signals the exploding regime.
"""

from __future__ import annotations

import math

import torch

from zeronas.proxies._ntk import empirical_ntk
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


def m_trace(theta: torch.Tensor) -> float:
    """sqrt(trace(Theta) / m); NaN propagates."""
    return math.sqrt(float(torch.diagonal(theta).sum()) / theta.shape[0])


@proxy("ntk_trace", higher_is_better=True, needs_data=True,
       description="sqrt(trace(NTK)/m) of the cell weights' empirical NTK (M_Trace; NASI trace norm)")
def ntk_trace(ctx: ScoringContext) -> float:
    return m_trace(empirical_ntk(ctx))
