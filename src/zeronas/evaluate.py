"""``zeronas evaluate``: score what is missing, then measure how well each proxy ranks cells against the truth."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from zeronas import __version__
from zeronas.bench.nbnlp import Architecture, Benchmark, median_ppl
from zeronas.metrics import (MetricsError, ProxyMetrics, collect_all, proxy_metrics, results_to_dict,
                             targets_from_architectures)
from zeronas.core.config import ScoringConfig
from zeronas.core.spec import spec_proxies
from zeronas.proxies.registry import get_proxy, list_proxies
from zeronas.recommended import RECOMMENDED_METHOD
from zeronas.run.executor import RunSummary
from zeronas.run.scoring import score_and_read
from zeronas.store import DEFAULT_STORE, ResultStore


def default_proxies() -> list[str]:
    """Every registered proxy, then the recommended method (a gated spec of registered proxies)."""
    return [s.name for s in list_proxies() if not s.name.startswith("_")] + [RECOMMENDED_METHOD]


def load_ground_truth(spec: str | Path) -> Benchmark:
    """``nb-nlp`` (the bundled development split) or a user CSV (recipe, test_loss[, arch_sha1, replica])."""
    if str(spec) in ("nb-nlp", "nbnlp"):
        return Benchmark.nbnlp()
    return Benchmark.from_csv(spec)


def choose_architectures(bench: Benchmark, limit: int | None, sample_seed: int) -> list[Architecture]:
    """All architectures or a seeded sample, in the seeded order in which they are scored: an interrupted run over
    everything has scored a uniform random sample (the first N of the same order, ``--limit N``)."""
    n = len(bench) if limit is None else min(limit, len(bench))
    return bench.sample(n, sample_seed)


@dataclass
class Evaluation:
    ground_truth: str
    archs: list[Architecture]
    results: dict[str, ProxyMetrics]
    data: dict[str, Any]
    run: RunSummary | None
    config: ScoringConfig
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        proxies = results_to_dict(self.results, json_safe=True)
        return {"n_archs": len(self.archs), "ground_truth": self.ground_truth, "proxies": proxies,
                "config": self.config.to_dict(), "config_hash": self.config.config_hash(),
                "scoring": self.run.to_dict() if self.run else None}


def run_evaluation(*, ground_truth: str | Path = "nb-nlp", proxies: Sequence[str] | None = None,
                   limit: int | None = None, sample_seed: int = 0, store: "str | ResultStore" = DEFAULT_STORE,
                   workers: int | None = None, timeout_s: float | None = None, config: ScoringConfig | None = None,
                   executor: str = "local", ray_address: str | None = None, progress: bool = True,
                   score: bool = True, n_boot: int = 1000, report_dir: str | Path | None = None,
                   command: str = "", predictor: str | Path | None = None) -> Evaluation:
    """Score the chosen architectures with every proxy named (directly or inside a combination ``a+b``), store
    the scores, and compute the metrics. With ``score=False`` only what the store already holds is used.

    ``predictor``: a model file of ``zeronas predict fit``; its feature proxies are scored too, and it adds the
    rows ``predictor`` (its ranking score), ``predictor_quality`` (its loss prediction alone) and
    ``predictor_trainable`` (1 - its probability of divergence)."""
    config = config or ScoringConfig()
    names = list(proxies) if proxies else default_proxies()
    model = None
    if predictor is not None:
        from zeronas.predict.model import load_predictor

        model = load_predictor(predictor, config_hash=config.config_hash())
    members = _members(names + ([] if model is None else list(model.proxies)))
    if limit is not None and limit < 0:
        raise MetricsError(f"--limit must be 0 or more, got {limit}")
    if isinstance(sample_seed, bool) or not isinstance(sample_seed, int) or not 0 <= sample_seed < 2**32:
        raise MetricsError(f"--sample-seed must be an integer from 0 to 2**32-1, got {sample_seed!r}")
    if report_dir is not None:
        from zeronas.report import check_report_dir

        check_report_dir(report_dir)  # before the scoring, not after hours of it
    archs = choose_architectures(load_ground_truth(ground_truth), limit, sample_seed)
    run, scores = score_and_read(archs, members, config, store, score=score, workers=workers, timeout_s=timeout_s,
                                 progress=progress, executor=executor, ray_address=ray_address)
    directions = {m: get_proxy(m).higher_is_better for m in members}
    data = collect_all(names, scores, targets_from_architectures(archs), directions)
    meta = _meta(command, ground_truth, archs, config)
    if model is not None:
        from zeronas.predict.data import predictor_rows

        data.update(predictor_rows(model, archs, scores))
        fitted = set(model.training.get("canonical_ids", []))
        meta.update(predictor=str(predictor), predictor_in_sample=sum(a.canonical_id in fitted for a in archs))
    meta["date"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = {name: proxy_metrics(d, n_boot=n_boot, seed=sample_seed) for name, d in data.items()}
    if report_dir is not None:
        from zeronas.report import write_report

        write_report(report_dir, results, data, meta)
    return Evaluation(meta["ground_truth"], archs, results, data, run, config, meta)


def _members(names: Sequence[str]) -> list[str]:
    """Every proxy the names need scored (the members of combinations and gated specs), each checked, once."""
    members: list[str] = []
    for name in names:
        for m in spec_proxies(name):
            get_proxy(m)
            if m not in members:
                members.append(m)
    return members


def _meta(command: str, ground_truth: str | Path, archs: Sequence[Architecture],
          config: ScoringConfig) -> dict[str, Any]:
    """What the report says of the run besides the metrics."""
    finite = [a.test_ppl for a in archs if a.test_ppl is not None]
    median = median_ppl(archs)
    return {
        "command": command,
        "ground_truth": "nb-nlp" if str(ground_truth) in ("nb-nlp", "nbnlp") else str(ground_truth),
        "target": "mean final-epoch test loss over finite runs (nats/token); perplexity = exp(loss)",
        "n_archs": len(archs),
        "n_diverged": sum(a.diverged for a in archs),
        "best_ppl": min(finite) if finite else math.nan,
        "median_ppl": math.nan if median is None else median,
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "version": __version__,
    }
