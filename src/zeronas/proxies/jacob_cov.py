"""``jacob_cov``: NASWOT v1 (Mellor et al. 2021, "Neural Architecture Search without Training", first version).

Formula: J is the ``(B, T*E)`` matrix of per-sample input Jacobians (row b: the gradient of the summed
last-layer hidden outputs of sequence b with respect to its embedding-level input), C = corrcoef(J) is the
``(B, B)`` correlation matrix of its rows, v are the eigenvalues of C and k = 1e-5:

    jacob_cov = - sum_i [ log(v_i + k) + 1 / (v_i + k) ].

Each term is smallest at v_i = 1 - k; since the eigenvalues of C sum to B, the score is at most about -B,
reached when the Jacobians of different sequences are uncorrelated (C = I), and it falls towards
-(B - 1) / k when they are all alike (the network treats all inputs the same way). Higher is better.

Adaptation choices for RNN language models:
- The input is the embedding output of the real probe tokens (token ids cannot be differentiated); the
  output is the sum of the last layer's hidden outputs (the decoder is tied and cell-independent). The
  Jacobian is shared with ``gradscore`` through ``ctx.cache``.
- Eigenvalues of the symmetric C with ``torch.linalg.eigvalsh`` in float64 (the reference uses a general
  eigensolver on the same symmetric matrix). A sequence with an all-zero or constant Jacobian row has no
  correlation: C holds NaN and so does the score (status "nan"), as in the reference.
"""

from __future__ import annotations

import torch

from zeronas.proxies.context import ScoringContext
from zeronas.proxies.gradscore import per_sample_input_gradient
from zeronas.proxies.registry import proxy

K = 1e-5


def jacob_cov_score(jacobians: torch.Tensor, k: float = K) -> float:
    """The NASWOT v1 score of ``(B, D)`` per-sample Jacobians."""
    corr = torch.corrcoef(jacobians.double())
    if not bool(torch.isfinite(corr).all()):
        return float("nan")
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + k) + 1.0 / (v + k)).sum())


@proxy("jacob_cov", higher_is_better=True, needs_data=True,
       description="NASWOT v1: -sum log(v+k)+1/(v+k) over eigenvalues of the correlation of per-sample "
                   "input Jacobians (probe batch)")
def jacob_cov(ctx: ScoringContext) -> float:
    return jacob_cov_score(per_sample_input_gradient(ctx))
