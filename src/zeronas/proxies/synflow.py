"""``synflow``: synaptic flow (Tanaka et al. 2020), in the zero-cost-proxy form of Abdelfattah et al. 2021.

Formula: every parameter is replaced by its absolute value, an all-ones input is fed in, R is the sum of the
network's output, and

    synflow = sum over weight matrices theta of sum | theta * dR / dtheta |.

With nonnegative weights and input no unit cancels another, so R measures how much "flow" the
architecture passes from input to output; pruning theory says more is better. Higher is better.

Adaptation choices for RNN language models:
- The ones go in at the embedding output: a ``(seq_len, 1, emb)`` tensor (batch of one, as in the
  reference) through ``model.run_layers``, then ``model.decode``. R is the sum of the decoder logits over
  all steps and words (the whole network's output, as in the reference). With the decoder bias at 0 the
  decoder's own term equals R, so the score is at least R.
- Scored weights are the matrices (names ending in ``weight*``: cell matrices and the tied
  embedding/decoder matrix), not the biases, as the reference scores ``layer.weight`` only. Biases are
  still made nonnegative, so they feed the flow.
- Float64 throughout: 35 steps of products and sums of nonnegative numbers grow fast. If it still
  overflows, inf is returned as it is (R = inf means the score is inf, since score >= R): the runner
  records status "inf" instead of a made-up number.
- The model is restored afterwards (signs and dtype), though ``ctx.model()`` hands out a fresh one anyway.
"""

from __future__ import annotations

import torch

from zeronas.models.contract import RecurrentLM
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy


def synflow_score(model: RecurrentLM, seq_len: int) -> float:
    """Synflow of ``model`` with a ones input of ``seq_len`` steps; the model is left as it was."""
    dtype = next(model.parameters()).dtype
    model.double()
    with torch.no_grad():
        signs = {n: torch.sign(p) for n, p in model.named_parameters()}
        for p in model.parameters():
            p.abs_()
    try:
        weights = [p for _, p in model.weight_matrices()]
        ones = torch.ones(seq_len, 1, model.emb_size, dtype=torch.float64, device=next(model.parameters()).device)
        out, _ = model.run_layers(ones)
        flow = model.decode(out).sum()
        if not bool(torch.isfinite(flow)):
            return float(flow.detach())
        grads = torch.autograd.grad(flow, weights, allow_unused=True)
        score = torch.zeros((), dtype=torch.float64)
        for w, g in zip(weights, grads):
            if g is not None:
                score = score + (w.detach() * g).abs().sum()
        return float(score)
    finally:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.mul_(signs[n])
        model.to(dtype)


@proxy("synflow", higher_is_better=True, needs_data=False,
       description="synaptic flow: sum |theta * dR/dtheta| over weight matrices, |weights|, ones at the "
                   "embedding output, R = sum of logits, float64")
def synflow(ctx: ScoringContext) -> float:
    return synflow_score(ctx.model(), ctx.config.seq_len)
