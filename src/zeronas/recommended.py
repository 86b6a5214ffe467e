"""The project's recommendation, in one place: what ``zeronas search`` ranks by when no proxy is named, and what
``zeronas evaluate`` measures beside every registered proxy by default.

Chosen by 5-fold cross-validation on the NAS-Bench-NLP development split (``benchmarks/recommended_cv.py``): the
best-ranking candidate among those whose divergence ROC-AUC on the training folds is at least 0.9. The figures and
how they were found are in docs/findings.md.
"""

from __future__ import annotations

#: A cell that passes the trainability check ranks above every cell that does not; hidden covariance orders each.
RECOMMENDED_METHOD = "hidden_cov!state_escape"
#: The training-free trainability check: > 0 (its registered gate) predicts that training diverges.
TRAINABILITY_CHECK = "state_escape"

__all__ = ["RECOMMENDED_METHOD", "TRAINABILITY_CHECK"]
