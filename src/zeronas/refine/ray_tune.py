"""Scale-out: the candidates as Ray Tune trials under its ASHA scheduler (asynchronous successive halving), across
processes, GPUs and the nodes of a Ray cluster.

Each trial trains one candidate rung by rung through the same :class:`~zeronas.refine.rungs.CandidateFolder` as
the in-process refine (same training code, same checkpoints and ``rungs.json``; a measurement already recorded is
reported again without training) and reports its validation perplexity with ``rung_t = eta ** k`` at rung ``k``.
ASHA is set up with ``grace_period=1``, ``reduction_factor=eta`` and ``max_t = eta ** (len(rungs) - 1)``, so its
milestones are exactly the refine's rungs, whatever their budgets. A trial whose training diverged reports nothing
at that rung (no made-up number enters the scheduler) and ends.

ASHA promotes asynchronously: a trial reaching a rung early is compared only with those that reached it before, so
more candidates may go on than ``n // eta``, and which ones depends on timing. The measurements are the same as in
process (training to a budget is a pure function of cell, config, corpus and budget); the set of candidates that
reach the later rungs, and so possibly the winner, can differ. Across nodes the run's folder must be on storage every
node sees, as Ray Tune's own ``storage_path`` must.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from zeronas.data.corpus import Corpus
from zeronas.refine.halving import Schedule
from zeronas.refine.rungs import CandidateFolder
from zeronas.refine.state import Candidate
from zeronas.train import TrainConfig

METRIC = "val_ppl"
TIME_ATTR = "rung_t"


class RayUnavailable(RuntimeError):
    """Ray (with Tune) is not installed: ``pip install 'zeronas[ray]'``."""


class TrialError(RuntimeError):
    """A Ray Tune trial failed (its error is in the message); what the other trials recorded is kept."""


def _import_ray() -> Any:
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise RayUnavailable("--executor ray needs Ray Tune: pip install 'zeronas[ray]' (or 'ray[tune]')") from None
    return ray


def _trial(params: dict[str, Any], *, candidates: list[dict[str, Any]], schedule: dict[str, Any],
           config: dict[str, Any], corpus: Corpus, folder: str) -> None:
    """One Ray Tune trial: train ``candidates[params["index"]]`` rung by rung, reporting each measurement."""
    from ray import tune

    from zeronas.cells.recipe import parse_recipe

    spec = candidates[params["index"]]
    cell = parse_recipe(spec["recipe"], source=f"candidate {spec['name']}")
    cfg = TrainConfig.from_dict(config)
    if cfg.device.startswith("cuda"):
        cfg = cfg.replace(device="cuda")  # the GPU Ray gave this trial (CUDA_VISIBLE_DEVICES)
    cand = CandidateFolder(Path(folder) / spec["folder"], cell)
    for k, budget in enumerate(schedule["rungs"]):
        measure, _ = cand.measure(float(budget), cfg, corpus, schedule["unit"])
        if measure.diverged or not math.isfinite(measure.val_ppl):
            return
        tune.report({METRIC: measure.val_ppl, TIME_ATTR: schedule["eta"] ** k, "rung": k + 1,
                     "budget": float(budget), "seconds_total": measure.seconds})


def scheduler(schedule: Schedule) -> Any:
    """ASHA whose milestones are the schedule's rungs (see the module docstring)."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr=TIME_ATTR, metric=METRIC, mode="min", grace_period=1,
                         reduction_factor=schedule.eta, max_t=schedule.eta ** (len(schedule.rungs) - 1),
                         brackets=1)


def run_trials(candidates: Sequence[Candidate], schedule: Schedule, config: TrainConfig, corpus: Corpus,
               folder: Path, say: Callable[[str], None], *, address: Optional[str] = None,
               cpus_per_trial: float = 1.0, gpus_per_trial: Optional[float] = None,
               max_concurrent: Optional[int] = None, quiet: bool = False) -> int:
    """Run every candidate as a trial under ASHA; the measurements land in the candidates' folders. Returns the
    number of trials Ray ran. ``address``: a Ray cluster to join (default: start one on this machine);
    ``gpus_per_trial`` defaults to 1 when training on cuda, else 0. What Ray prints goes to stderr (nowhere with
    ``quiet``), so that stdout stays the command's own (``--json``)."""
    ray = _import_ray()
    if gpus_per_trial is None:
        gpus_per_trial = 1.0 if config.device.startswith("cuda") else 0.0
    sink = open(os.devnull, "w") if quiet else sys.stderr
    try:
        with contextlib.redirect_stdout(sink):
            return _tune(ray, candidates, schedule, config, corpus, folder, say, address, cpus_per_trial,
                         gpus_per_trial, max_concurrent)
    finally:
        if quiet:
            sink.close()


def _tune(ray: Any, candidates: Sequence[Candidate], schedule: Schedule, config: TrainConfig, corpus: Corpus,
          folder: Path, say: Callable[[str], None], address: Optional[str], cpus_per_trial: float,
          gpus_per_trial: float, max_concurrent: Optional[int]) -> int:
    from ray import tune

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        payload = {"candidates": [{**c.to_dict(), "recipe": c.cell.recipe} for c in candidates],
                   "schedule": {"rungs": list(schedule.rungs), "eta": schedule.eta, "unit": schedule.unit},
                   "config": config.to_dict(), "corpus": corpus, "folder": str(folder.resolve())}
        trainable = tune.with_resources(tune.with_parameters(_trial, **payload),
                                        {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
        say(f"ray: {len(candidates)} trials under ASHA ({schedule.describe()}), {cpus_per_trial:g} cpu and "
            f"{gpus_per_trial:g} gpu a trial")
        tuner = tune.Tuner(trainable, param_space={"index": tune.grid_search(list(range(len(candidates))))},
                           tune_config=tune.TuneConfig(scheduler=scheduler(schedule),
                                                       max_concurrent_trials=max_concurrent),
                           run_config=tune.RunConfig(name="tune", storage_path=str((folder / "ray").resolve()),
                                                     verbose=0))
        grid = tuner.fit()
        errors = [r.error for r in grid if r.error is not None]
        if errors:
            first = str(errors[0]).strip().splitlines()
            raise TrialError(f"{len(errors)} Ray Tune trial(s) failed; the first: {first[-1] if first else errors[0]!r}")
        return len(grid)
    finally:
        if started_here:
            ray.shutdown()


__all__ = ["METRIC", "TIME_ATTR", "RayUnavailable", "TrialError", "run_trials", "scheduler"]
