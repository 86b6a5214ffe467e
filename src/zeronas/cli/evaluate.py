"""``zeronas evaluate``: score the missing cells, then rank-correlate proxies with trained perplexity."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from zeronas.cli._common import CORPUS_HELP, err, fail, out, scoring_config


def evaluate_cmd(ground_truth: str = typer.Option("nb-nlp", "--ground-truth",
                                                  help="nb-nlp (bundled) or a CSV: recipe,test_loss[,arch_sha1,replica]"),
                 proxies: Optional[str] = typer.Option(None, "--proxies", "-p",
                                                       help="Comma-separated proxies, rank combinations a+b and "
                                                            "gated specs rank!gate (default: every registered "
                                                            "proxy and the recommended method)."),
                 limit: Optional[int] = typer.Option(None, "--limit", help="A seeded random sample of N cells."),
                 sample_seed: int = typer.Option(0, "--sample-seed"),
                 store: str = typer.Option("sqlite:///zeronas.db", "--store", help="Results store URL."),
                 workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
                 timeout: Optional[float] = typer.Option(600.0, "--timeout",
                                                         help="Per-cell limit in seconds; expiry is stored as "
                                                              "status timeout."),
                 executor: str = typer.Option("local", "--executor", help="local or ray."),
                 address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address."),
                 seed: Optional[int] = typer.Option(None, "--seed", help="Scoring seed (weights, probe batch, "
                                                                         "noise; default 0, or the config file's)."),
                 device: Optional[str] = typer.Option(None, "--device", help="cpu (default, or the config "
                                                                             "file's), cuda, cuda:1, ..."),
                 batch_size: Optional[int] = typer.Option(None, "--batch-size"),
                 seq_len: Optional[int] = typer.Option(None, "--seq-len"),
                 config_file: Optional[Path] = typer.Option(None, "--scoring-config",
                                                            help="JSON file of ScoringConfig fields."),
                 corpus: Optional[str] = typer.Option(None, "--corpus", help=CORPUS_HELP),
                 no_score: bool = typer.Option(False, "--no-score", help="Use only scores already stored."),
                 predictor: Optional[Path] = typer.Option(None, "--predictor",
                                                          help="A model of `zeronas predict fit`: adds the rows "
                                                               "predictor, predictor_quality and "
                                                               "predictor_trainable."),
                 report: Optional[Path] = typer.Option(None, "--report", help="Write HTML + markdown + PNGs here."),
                 as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress still goes "
                                                                    "to stderr)."),
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Score the missing cells, then rank-correlate every proxy (and combination) with trained perplexity."""
    from zeronas.bench.nbnlp import BenchmarkError
    from zeronas.evaluate import run_evaluation
    from zeronas.core.spec import SpecError
    from zeronas.metrics import MetricsError
    from zeronas.proxies.registry import parse_specs
    from zeronas.predict.model import PredictorError
    from zeronas.report import ReportError, format_table, rich_table
    from zeronas.run.executor import ExecutorError
    from zeronas.core.config import ConfigError
    from zeronas.store import StoreError

    try:
        names = parse_specs(proxies) if proxies is not None else None
    except SpecError as exc:
        raise fail(f"--proxies: {exc} (leave the option out to evaluate every registered proxy)")
    try:
        evaluation = run_evaluation(
            ground_truth=ground_truth, proxies=names, limit=limit, sample_seed=sample_seed, store=store,
            workers=workers, timeout_s=timeout,
            config=scoring_config(seed, device, batch_size, seq_len, config_file, corpus),
            executor=executor, ray_address=address, progress=not quiet, score=not no_score,
            report_dir=report, command="zeronas " + " ".join(sys.argv[1:]), predictor=predictor)
    except (BenchmarkError, MetricsError, ExecutorError, StoreError, PredictorError, ConfigError, ReportError,
            KeyError, FileNotFoundError) as exc:
        raise fail(str(exc).strip('"'))
    in_sample = evaluation.meta.get("predictor_in_sample", 0)
    if in_sample:
        err.print(f"note: {in_sample} of the {evaluation.meta['n_archs']} cells were in the predictor's fitted "
                  "sample; its figures on them are in-sample (fit on a --labels sample, or see `zeronas predict "
                  "curve`, for held-out figures)", highlight=False, markup=False)
    if as_json:
        print(json.dumps(evaluation.to_dict()))
        return
    meta = evaluation.meta
    title = f"{meta['n_archs']} architectures of {meta['ground_truth']} (config {meta['config_hash']})"
    if out.is_terminal and out.width >= 150:
        out.print(rich_table(evaluation.results, title=title))
    else:  # a narrow terminal or a file: plain columns that never wrap
        print(title)
        print(format_table(evaluation.results))
    if report:
        out.print(f"report written to {report}/report.html and {report}/report.md")
