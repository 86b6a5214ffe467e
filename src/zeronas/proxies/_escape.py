"""Does a cell's state come back from far away? The large-state recovery probe behind ``state_escape``.

Training moves an RNN's weights and states far from where they start: NAS-Bench-NLP trains with Adam at lr 1e-3,
whose steps are soon larger than the initial weights (U(-1/sqrt(H), 1/sqrt(H)), about 0.04 for H = 600), and the
hidden state is carried from one batch to the next for a whole epoch. A cell whose carried state feeds products of
unbounded quantities (``elementwise_prod`` of two linear nodes, a ``blend`` whose gate is not a sigmoid) is stable
near the zero state of initialisation, where those products are second order and vanish, yet blows up once its
state is large: the degree-2 terms then dominate and the state grows super-exponentially. Training meets that
region and the loss becomes NaN. A cell whose state is squashed (tanh, sigmoid, a convex blend of bounded values)
or evolves linearly with a contracting map returns from any starting point.

The probe: layer 1 of the seeded untrained model is run on real probe text from starting states
``h_0 = r * u`` (``u`` a seeded Gaussian direction over every carried state, scaled to RMS 1) for a ladder of radii
``r = 1, 4, 16, ..., 4**6 = 4096``. For each trajectory, ``l_t = log RMS(h_t)`` over every carried state; the trajectory
*escapes* at the first step ``t*`` at which ``l_t - log r`` exceeds ``ESCAPE_LOG`` (a growth of 1e12) or ``h_t``
stops being finite (then ``t*`` is the step before). Its growth rate is

    rate = (l_{t*} - log r) / t*        (t* = the horizon T when it never escapes)

the mean log-growth of the state per step until it escaped (a finite number, however fast the state blew up:
the run stops before float32 overflows, so no failure is turned into a made-up value). The probe's result is the
largest rate over the radii and probe sequences: > 0 means that some starting state grows rather than decays.
A model whose weights are not finite gives NaN, and one whose state is not finite one step after starting at RMS
1 (enormous weights or inputs) gives +inf: no rate exists to measure, and a clean number would pass the gate.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from zeronas.data.corpus import probe_batch
from zeronas.proxies.context import ScoringContext

Tensor = torch.Tensor

RADII: tuple[float, ...] = tuple(4.0 ** k for k in range(7))  # 1, 4, 16, .. 4096
HORIZON = 60  # steps
N_SEQUENCES = 2  # probe sequences per radius
ESCAPE_LOG = math.log(1e12)  # growth (from the starting RMS) that counts as escaped
_SEED_OFFSET = 0xE5C  # this probe's own stream: the starting direction


CHUNK = 10  # steps between two looks at the trajectories (which ones escaped; stop when all have)


class _Trajectories:
    """The bookkeeping of the probe: which trajectories escaped (or blew up) at which step, with what growth.

    It looks at the carried states every :data:`CHUNK` steps, all steps of the chunk at once: a trajectory's
    ``t*``, growth and rate are those of a look after every step (the first step that escapes is found however
    many follow it). A trajectory that escaped restarts from the zero state at the next look (its later steps are
    never read; a state that keeps growing would overflow), and the run stops at a look that finds none left."""

    def __init__(self, log_r: Tensor) -> None:
        self.log_r = log_r
        self.no_rate = False  # the state was not finite one step after starting at RMS 1
        self.growth = torch.zeros_like(log_r)  # l_{t*} - log r, frozen once escaped
        self.steps = torch.full_like(log_r, float(HORIZON))  # t*
        self.live = torch.ones_like(log_r, dtype=torch.bool)
        self._pending: list[tuple[int, tuple[Tensor, ...]]] = []

    def __call__(self, t: int, state: tuple[Tensor, ...]) -> Optional[tuple[Tensor, ...]]:
        """The layer's ``on_step``: the state to carry on from, or None when every trajectory has escaped."""
        self._pending.append((t, state))
        if len(self._pending) < CHUNK and t < HORIZON - 1:
            return state
        self._look()
        if not bool(self.live.any()):
            return None
        keep = self.live.unsqueeze(1)
        return tuple(torch.where(keep, s, torch.zeros_like(s)) for s in state)

    def _look(self) -> None:
        first = self._pending[0][0]
        # the RMS in float64: squares of a large state overflow float32
        flat = torch.stack([torch.cat(state, dim=1) for _, state in self._pending]).double()  # (C, R*S, k*H)
        self._pending = []
        finite = torch.isfinite(flat).all(dim=2)
        if first == 0 and not bool(finite[0, :N_SEQUENCES].all()):  # not finite one step from RMS 1: no rate exists
            self.no_rate = True
            self.live = torch.zeros_like(self.live)
            return
        g = flat.pow(2).mean(dim=2).sqrt().log() - self.log_r
        finite &= torch.isfinite(g)
        # per trajectory, its first step in this chunk that is not finite or escapes (C: none)
        event = ~finite | (g > ESCAPE_LOG)
        n = event.shape[0]
        at = torch.where(event.any(dim=0), event.to(torch.uint8).argmax(dim=0), n)
        ended = self.live & (at < n)
        blown = ended & ~finite.gather(0, at.clamp(max=n - 1).unsqueeze(0)).squeeze(0)
        # growth: the last finite value while live (the step before a blow-up, the escaping step itself)
        last = torch.where(blown, at - 1, at.clamp(max=n - 1))
        seen = last >= 0
        picked = g.gather(0, last.clamp(min=0).unsqueeze(0)).squeeze(0)
        self.growth = torch.where(self.live & seen, picked, self.growth)
        steps = torch.where(blown, (first + at).clamp(min=1), first + at + 1).to(self.steps.dtype)
        self.steps = torch.where(ended, steps, self.steps)
        self.live = self.live & ~ended

    def rates(self) -> Tensor:
        if self._pending:
            self._look()
        if self.no_rate:
            return torch.full_like(self.growth, math.inf)
        return self.growth / self.steps


def escape_rates(ctx: ScoringContext) -> Tensor:
    """``(len(RADII), N_SEQUENCES)`` growth rates (see the module docstring), float64. Cached in ``ctx.cache``."""
    key = "escape/rates"
    if key in ctx.cache:
        return ctx.cache[key]
    if not _finite_weights(ctx):  # NaN or inf weights: no rate to measure
        ctx.cache[key] = torch.full((len(RADII), N_SEQUENCES), math.nan, dtype=torch.float64)
        return ctx.cache[key]
    layer = ctx.layer(0, fast_backward=False)  # read-only: only run forward, without a gradient
    tokens, _ = probe_batch(ctx.corpus.split(ctx.config.probe_split), N_SEQUENCES, HORIZON, ctx.config.seed)
    n_r = len(RADII)
    sizes = list(layer.state_sizes)
    with torch.no_grad():
        x = ctx.embed(tokens.to(ctx.device))  # (T, S, E); every radius reads the same text (radius-major batch)
        u = ctx.randn(N_SEQUENCES, sum(sizes), offset=_SEED_OFFSET, dtype=torch.float64)
        u = u / u.pow(2).mean(dim=1, keepdim=True).sqrt()
        log_r = torch.tensor(RADII, dtype=torch.float64, device=ctx.device).log().repeat_interleave(N_SEQUENCES)
        h0 = (log_r.exp().unsqueeze(1) * u.repeat(n_r, 1))  # (R*S, k*H)
        state = tuple(s.to(ctx.dtype) for s in h0.split(sizes, dim=1))
        trajectories = _Trajectories(log_r)
        _run(layer, x, n_r, state, trajectories)
    rates = trajectories.rates().view(n_r, N_SEQUENCES)
    ctx.cache[key] = rates
    return rates


def _finite_weights(ctx: ScoringContext) -> bool:
    """Whether every weight of the model is finite: a user's model is checked; a recipe's seeded weights are
    uniform draws, finite by construction (so its layers are not built for the check)."""
    if not ctx.user_model:
        return True
    return all(bool(torch.isfinite(p).all()) for p in ctx.read_only_model().parameters())


def _run(layer: Any, x: Tensor, repeats: int, state: tuple[Tensor, ...], on_step: _Trajectories) -> None:
    """Run ``layer`` over ``x.repeat(1, repeats, 1)`` from ``state`` with ``on_step`` after every step: through
    the layer's own ``run(..., on_step=..., input_repeats=...)`` where it has one (the recipe's cell layer: the x
    projections of all steps in one product, once per distinct sequence), else one call per step."""
    if hasattr(layer, "run"):
        layer.run(x, state, on_step=on_step, input_repeats=repeats)
        return
    x = x.repeat(1, repeats, 1)
    for t in range(x.shape[0]):
        _, new = layer(x[t:t + 1], state)
        carried = on_step(t, new)
        if carried is None:
            return
        state = carried
