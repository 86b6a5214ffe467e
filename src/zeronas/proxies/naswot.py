"""``naswot``: NASWOT's activation-code kernel (Mellor et al., ICML 2021, v2), the "Activation Distance" of
Serianni & Kalita (ACL 2023) on RNNs. Higher is better.

    K_H[i, j] = N_A - hamming(c_i, c_j),   score = log |det K_H|   (slogdet, float64)

over the probe batch's sequences ``i, j`` (``ctx.inputs``, real PTB tokens, as both papers use a data minibatch).
``c_i`` concatenates the binary code of every activation unit of every cell node, at every time step and in every
layer, of sequence ``i``; ``N_A`` is its length.

Code: ``pre-activation > 0`` for all three activations (:func:`zeronas.proxies._patterns.sign_code`). This follows
Serianni & Kalita, who hook every activation node of the NAS-Bench-NLP cell at every step and code ``output > 0``:
the same bit for tanh and leaky ReLU. For sigmoid their ``output > 0`` is always 1 (a constant that carries nothing);
we use the analogous midpoint bit (output > 1/2). On 27 development-split cells our score has Spearman 0.97 with their
published column despite the different probe batch and initial weights.

Identical codes for two sequences make ``K_H`` singular: log|det| = -inf (status ``inf``), not a made-up number; a
NaN pre-activation gives NaN.
"""

from __future__ import annotations

import torch

from zeronas.proxies._patterns import HammingKernel
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


def naswot_kernel(ctx: ScoringContext) -> HammingKernel:
    """The accumulated kernel over the probe batch (one forward pass, no gradient)."""
    model = ctx.read_only_model()  # only run forward, without a gradient
    kernel = HammingKernel(ctx.inputs.shape[1], ctx.device)
    with torch.no_grad():
        model.run_layers(model.embed(ctx.inputs), observer=kernel)
    return kernel


@proxy("naswot", requires=("activations",), higher_is_better=True, needs_data=True,
       description="log|det| of the Hamming kernel of cell activation codes (NASWOT; S&K Activation Distance)")
def naswot(ctx: ScoringContext) -> float:
    kernel = naswot_kernel(ctx)
    if kernel.saw_nan:
        return float("nan")
    return float(torch.linalg.slogdet(kernel.kernel)[1])
