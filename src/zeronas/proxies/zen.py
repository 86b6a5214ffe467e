"""``zen``: the Zen-score (Lin et al. 2021, "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition").

Formula: with x and eps drawn from N(0, I) at the embedding output (shape ``(seq_len, batch, emb)``), f the
last layer's hidden outputs over the whole sequence (before the decoder) and alpha = ``config.zen_alpha``,

    zen = log E_{x, eps} || f(x) - f(x + alpha * eps) ||_F,

the expectation being the mean of the per-sequence Frobenius norms (over steps and units) over the batch and
over ``config.zen_repeats`` seeded draws. It is a finite-difference estimate of log E||J_f(x) eps||: how
strongly the network expands a small perturbation of its input, i.e. its expressivity. Higher is better.

Adaptation choices for RNN language models:
- No BatchNorm term: the model has no BatchNorm, so the score is the log-norm alone.
- Initialisation: the model's own NAS-Bench-NLP initialisation (cells U(-1/sqrt(H), 1/sqrt(H))), not
  Zen-NAS's re-initialisation with N(0, 1) weights. Zen-NAS can afford N(0, 1) because BatchNorm after every
  convolution rescales the activations; our cells have no normalisation, and with N(0, 1) weights the
  pre-activations of a 600-unit layer have a standard deviation of about 30, so every sigmoid and tanh
  saturates, f is nearly constant for every cell and the score measures saturation rather than the
  architecture. The NAS-Bench-NLP init is also the one under which the benchmark's networks were trained.
- log of the overall mean (the formula as written in the paper); the reference code averages the logs of
  each draw's batch mean instead, which differs only at second order for a handful of draws.
- Float64 forward passes: alpha = 0.01 makes f(x + alpha eps) - f(x) small, and a cell with a flat
  response would otherwise be scored by float32 rounding noise. No gradients are formed.
"""

from __future__ import annotations

import torch

from zeronas.proxies._zen import zen_score
from zeronas.proxies.context import ScoringContext
from zeronas.proxies.registry import proxy

_SEED_OFFSET = 0x2E4  # this proxy's own stream of draws: ctx.generator(_SEED_OFFSET + k)


@proxy("zen", higher_is_better=True, needs_data=False,
       description="Zen-score: log E||f(x) - f(x + alpha*eps)||_F, x, eps ~ N(0, I) at the embedding output, "
                   "f = last-layer hidden outputs; NAS-Bench-NLP init, no BN term")
def zen(ctx: ScoringContext) -> float:
    shape = (ctx.config.seq_len, ctx.config.batch_size, ctx.emb_size)

    def differences(model, c):
        for r in range(c.zen_repeats):
            x = ctx.randn(*shape, offset=_SEED_OFFSET + 2 * r, dtype=torch.float64)
            eps = ctx.randn(*shape, offset=_SEED_OFFSET + 2 * r + 1, dtype=torch.float64)
            both = torch.cat([x, x + c.zen_alpha * eps], dim=1)  # one pass over 2B sequences
            out, _ = model.run_layers(both)
            yield out[:, : c.batch_size] - out[:, c.batch_size:]

    return zen_score(ctx, differences)
