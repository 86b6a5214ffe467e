"""``ntk_cond``: condition number of the empirical NTK (TE-NAS, Chen et al., ICLR 2021). Lower is better.

    kappa = lambda_max(Theta) / lambda_min(Theta),   Theta = J J^T

on the first ``ntk_batch`` probe sequences; ``J`` = per-sample gradients of the summed decoder logits with respect to
every recurrent-cell weight and bias (see :mod:`zeronas.proxies._ntk` for the choices). Eigenvalues in float64
(``torch.linalg.eigvalsh``).

A singular kernel has no finite condition number, and we do not invent one: when the smallest singular value of ``J``
is not resolved by the float32 gradients, ``sigma_min <= sigma_max * eps(float32)``, i.e.
``lambda_min <= lambda_max * eps(float32)**2`` (~1.4e-14 lambda_max; this covers ``lambda_min <= 0``), the kernel is
numerically singular and the proxy returns ``inf`` (status ``inf``). Above that the value is real: cells with a
sigmoid output give a kernel dominated by one common-mode direction, with condition numbers near 1e12, and one such
cell gave 3.41e12 from float32 gradients against 3.50e12 from float64 ones. A kernel that is all zero (no gradient
reaches the cells) or not finite gives NaN.
"""

from __future__ import annotations

import torch

from zeronas.proxies._ntk import empirical_ntk
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy

EPS32 = float(torch.finfo(torch.float32).eps)


def condition_number(theta: torch.Tensor) -> float:
    """lambda_max / lambda_min of a symmetric PSD matrix; ``inf`` when numerically singular, NaN when undefined."""
    if not bool(torch.isfinite(theta).all()):
        return float("nan")
    eig = torch.linalg.eigvalsh(theta.double())
    lam_min, lam_max = float(eig[0]), float(eig[-1])
    if lam_max <= 0.0:
        return float("nan")
    if lam_min <= lam_max * EPS32 * EPS32:
        return float("inf")
    return lam_max / lam_min


@proxy("ntk_cond", higher_is_better=False, needs_data=True,
       description="condition number of the empirical NTK of the cell weights (TE-NAS); inf if singular")
def ntk_cond(ctx: ScoringContext) -> float:
    return condition_number(empirical_ntk(ctx))
