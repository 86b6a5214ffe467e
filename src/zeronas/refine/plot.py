"""The refine's curves as a PNG: validation perplexity against the training budget, one line a candidate, the
dropped ones faded, the winner bold, the reference cells dashed. matplotlib's Agg canvas, no pyplot (no display,
no global state)."""

from __future__ import annotations

import math
from pathlib import Path

from zeronas.refine.run import RefineResult
from zeronas.train import atomic_write_bytes


def plot_curves(result: RefineResult, path: str | Path) -> Path:
    """Write the plot to ``path`` (PNG) atomically and return it. Diverged measurements are left out of the lines
    and marked with an x at the top of the axes."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullLocator

    fig = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    unit = result.schedule.unit
    for i, (cand, ms) in enumerate(zip(result.candidates, result.measures)):
        xs = [m.budget for m in ms if not m.diverged and math.isfinite(m.val_ppl)]
        ys = [m.val_ppl for m in ms if not m.diverged and math.isfinite(m.val_ppl)]
        winner = i == result.winner_index
        alive = len(ms) == len(result.schedule.rungs) and not (ms and ms[-1].diverged)
        style = dict(marker="o", markersize=3 if not winner else 5, linewidth=2.5 if winner else 1.2,
                     linestyle="--" if cand.reference else "-", alpha=1.0 if (winner or alive) else 0.3,
                     label=f"{cand.name}{' (winner)' if winner else ''}")
        line = ax.plot(xs, ys, **style)[0] if xs else None
        if ms and ms[-1].diverged:
            ax.plot([ms[-1].budget], [1.0], marker="x", linestyle="none", alpha=0.5,
                    color=line.get_color() if line else "grey", transform=ax.get_xaxis_transform(),
                    label=None if xs else f"{cand.name} (diverged)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(result.schedule.rungs))
    ax.set_xticklabels([f"{r:g}" for r in result.schedule.rungs])
    ax.xaxis.set_minor_locator(NullLocator())  # only the rungs are labelled
    plain = FuncFormatter(lambda v, _pos: f"{v:g}")  # perplexities as numbers, not powers of ten
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel(f"training budget ({unit})")
    ax.set_ylabel("validation perplexity")
    ax.set_title(f"successive halving, {result.schedule.describe()}")
    ax.grid(True, which="both", alpha=0.3)
    if len(result.candidates) <= 15:
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    path = Path(path)
    data = buf.getvalue()
    atomic_write_bytes(path, lambda fh: fh.write(data))
    return path


__all__ = ["plot_curves"]
