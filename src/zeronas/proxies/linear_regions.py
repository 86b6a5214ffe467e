"""``linear_regions``: how many activation regions a loop of inputs passes through (TE-NAS's expressivity
indicator, adapted to RNNs). Higher is better.

TE-NAS (Chen et al., ICLR 2021) feeds random inputs and counts the distinct ReLU activation patterns among them. For
these RNNs that count saturates: with 1,600-8,000 coded units per token position, every one of the probe batch's 350
token positions has its own pattern (measured: 350 of 350 for 10 of 11 cells at the default config). So, as Raghu et
al. (ICML 2017, "trajectory" transitions) and Hanin & Rolnick (ICML 2019, regions along 1-D lines) do, we count the
regions met along a one-dimensional path, which does not saturate:

    x(theta) = cos(theta) U + sin(theta) V,  theta = 2 pi k / N,  k = 0..N-1

with ``U, V`` standard Gaussian sequences ``(seq_len, emb_size)`` at the embedding level (every point is marginally
N(0, I), standardised input as in TE-NAS); the whole sequence moves along the loop. Each point's code is every
activation unit at every step of every layer (:func:`zeronas.proxies._patterns.region_code`: leaky ReLU by sign;
tanh/sigmoid by a thermometer code over the hard-tanh breakpoints and the sign, thresholds (-1, 0, 1) and (-2, 0, 2)).
Counting the flipped bits between neighbouring points gives the number of region boundaries crossed, i.e. the number
of regions the closed loop is cut into (at least 1). Score = mean over ``N_LOOPS`` loops.

Choices: ``N_POINTS = 16`` (counts are within ~1-3% of N = 64 at the default config, and the spread between loops is
~0.5%), ``N_LOOPS = 2``. A NaN pre-activation makes the score NaN.
"""

from __future__ import annotations

import math

import torch

from zeronas.proxies._patterns import LoopCrossings
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy

N_POINTS = 16
N_LOOPS = 2
_OFFSET = 7301  # the proxy's own stream of ctx.randn draws


def loop_inputs(ctx: ScoringContext, n_loops: int = N_LOOPS, n_points: int = N_POINTS) -> torch.Tensor:
    """Embedding-level inputs ``(seq_len, n_loops * n_points, emb_size)``, loop-major along the batch."""
    T, E = ctx.config.seq_len, ctx.emb_size
    u = ctx.randn(n_loops, 1, T, E, offset=_OFFSET)
    v = ctx.randn(n_loops, 1, T, E, offset=_OFFSET + 1)
    theta = torch.arange(n_points, dtype=torch.float64, device=ctx.device) * (2 * math.pi / n_points)
    c = torch.cos(theta).to(ctx.dtype).view(1, n_points, 1, 1)
    s = torch.sin(theta).to(ctx.dtype).view(1, n_points, 1, 1)
    x = c * u + s * v  # (loops, points, T, E)
    return x.reshape(n_loops * n_points, T, E).transpose(0, 1).contiguous()


@proxy("linear_regions", requires=("activations",), higher_is_better=True, needs_data=False,
       description="activation regions crossed along Gaussian input loops (TE-NAS linear regions, 1-D adaptation)")
def linear_regions(ctx: ScoringContext) -> float:
    model = ctx.read_only_model()  # only run forward, without a gradient
    counter = LoopCrossings(N_LOOPS, N_POINTS)
    with torch.no_grad():
        model.run_layers(loop_inputs(ctx), observer=counter)
    if counter.saw_nan:
        return float("nan")
    return sum(max(c, 1) for c in counter.per_loop) / N_LOOPS
