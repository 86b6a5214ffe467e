"""What ``zeronas refine`` and its replay share: the options, input errors as exit 2, the schedule, the table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from rich.table import Table

from zeronas.cli._common import fail, out

DEFAULT_DIR = "zeronas-refine"


def _default_rungs() -> str:
    from zeronas.refine.policies import DEFAULT_RUNGS

    return ",".join(f"{r:g}" for r in DEFAULT_RUNGS)


@dataclass
class RefineOptions:
    """How to refine, from the command line."""

    rungs: Optional[str] = None
    eta: Optional[int] = None
    unit: str = "epochs"
    seed: int = 0
    device: str = "cpu"
    checkpoint: Path = Path(DEFAULT_DIR)
    corpus: Optional[str] = None
    epochs: int = 50
    quick: bool = False
    checkpoint_every: int = 0
    references: bool = True
    executor: str = "local"
    ray_address: Optional[str] = None
    gpus_per_trial: Optional[float] = None
    cpus_per_trial: float = 1.0
    as_json: bool = False
    plot: Optional[Path] = None
    quiet: bool = False


def schedule_of(opts: RefineOptions):
    """The schedule of --rungs, --eta and --unit (the defaults where left out); exit 2 naming the field."""
    from zeronas.refine.policies import DEFAULT_ETA
    from zeronas.refine.halving import Schedule, parse_rungs

    with bad_input("--rungs/--eta/--unit: "):
        return Schedule(parse_rungs(opts.rungs if opts.rungs is not None else _default_rungs()),
                        opts.eta if opts.eta is not None else DEFAULT_ETA, opts.unit)  # type: ignore[arg-type]


class bad_input:
    """Turn the library's input errors into ``error: ...`` and exit code 2."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        from zeronas.cells.recipe import RecipeError
        from zeronas.core.config import ConfigError
        from zeronas.data.corpus import CorpusError
        from zeronas.refine.curves import CurveError
        from zeronas.refine.halving import ScheduleError
        from zeronas.refine.policies import PolicyError
        from zeronas.refine.replay import ReplayError
        from zeronas.store import StoreError
        from zeronas.refine.ray_tune import RayUnavailable
        from zeronas.refine.rungs import RungError
        from zeronas.refine.run import RefineError
        from zeronas.refine.state import RefineStateError
        from zeronas.train import CheckpointError

        known = (RecipeError, ConfigError, CorpusError, ScheduleError, RayUnavailable, RungError, RefineError,
                 RefineStateError, CheckpointError, CurveError, PolicyError, ReplayError, StoreError)
        if exc is not None and isinstance(exc, known):
            raise fail(self.prefix + str(exc))
        return False


def print_result(result, command: Optional[str], opts: RefineOptions) -> None:
    schedule = result.schedule
    table = Table(title=f"refine of {len(result.candidates)} cells, {schedule.describe()} ({result.executor})")
    for col in ("candidate", "rung", *[f"ppl @{r:g}" for r in schedule.rungs], "seconds", "status"):
        table.add_column(col, justify="left" if col in ("candidate", "status") else "right")
    for row in result.rows():
        name = row["name"] + (" (ref)" if row["reference"] else "")
        gone = "failed" if row["status"] == "failed" else "diverged"
        ppls = [(gone if (i == row["rung"] - 1 and row["diverged"]) else
                 (f"{row['val_ppl'][i]:.2f}" if i < row["rung"] and row["val_ppl"][i] is not None else "-"))
                for i in range(len(schedule.rungs))]
        style = "bold" if row["status"] == "winner" else ("dim" if row["status"] != "last rung" else None)
        table.add_row(name, str(row["rung"]), *ppls, f"{row['seconds']:.1f}", row["status"], style=style)
    out.print(table)
    winner = result.winner
    spent = f"{result.spent():g} {schedule.unit} of training in all"
    if winner is None:
        out.print(f"no winner: every candidate still in at the last rung reached diverged ({spent})")
        return
    ppl = result.measures[result.winner_index][-1].val_ppl
    out.print(f"winner: {winner.name} ({winner.cell.canonical_id}), validation ppl {ppl:.2f} at "
              f"{result.measures[result.winner_index][-1].budget:g} {schedule.unit}; {spent}", highlight=False)
    if command is not None:
        out.print(f"continue it to full training ({opts.epochs} epochs) with:\n  {command}", highlight=False,
                  markup=False)
    if opts.plot is not None:
        out.print(f"curves written to {opts.plot}", highlight=False, markup=False)
    if math.isfinite(ppl) and result.resumed:
        out.print(f"(resumed from {result.folder}; {result.trained} rung trainings done now)", highlight=False,
                  markup=False)
