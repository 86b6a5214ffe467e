"""``zeronas evaluate``: score the missing cells, then rank-correlate proxies with trained perplexity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from zeronas.cli._common import command_line, err, fail, out, scoring_config
from zeronas.cli._options import (BatchSize, Corpus, Device, GroundTruth, NoScore, Quiet, ScoringConfigFile,
                                  ScoringSeed, SeqLen, Store, Timeout, Workers)
from zeronas.store import DEFAULT_STORE


def evaluate_cmd(ground_truth: GroundTruth = "nb-nlp",
                 proxies: Optional[str] = typer.Option(None, "--proxies", "-p",
                                                       help="Comma-separated proxies, rank combinations a+b and "
                                                            "gated specs rank!gate (default: every registered "
                                                            "proxy and the recommended method)."),
                 limit: Optional[int] = typer.Option(None, "--limit", help="A seeded random sample of N cells."),
                 sample_seed: int = typer.Option(0, "--sample-seed"),
                 store: Store = DEFAULT_STORE, workers: Workers = None, timeout: Timeout = 600.0,
                 executor: str = typer.Option("local", "--executor", help="local or ray."),
                 address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address."),
                 seed: ScoringSeed = None,
                 device: Device = None, batch_size: BatchSize = None, seq_len: SeqLen = None,
                 config_file: ScoringConfigFile = None, corpus: Corpus = None, no_score: NoScore = False,
                 predictor: Optional[Path] = typer.Option(None, "--predictor",
                                                          help="A model of `zeronas predict fit`: adds the rows "
                                                               "predictor, predictor_quality and "
                                                               "predictor_trainable."),
                 report: Optional[Path] = typer.Option(None, "--report", help="Write HTML + markdown + PNGs here."),
                 as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress still goes "
                                                                    "to stderr)."),
                 quiet: Quiet = False,
) -> None:
    """Score the missing cells, then rank-correlate every proxy (and combination) with trained perplexity."""
    from zeronas.core.spec import SpecError
    from zeronas.proxies.registry import parse_specs

    try:
        names = parse_specs(proxies) if proxies is not None else None
    except SpecError as exc:
        raise fail(f"--proxies: {exc} (leave the option out to evaluate every registered proxy)")
    evaluation = _run(ground_truth=ground_truth, proxies=names, limit=limit, sample_seed=sample_seed, store=store,
                      workers=workers, timeout_s=timeout,
                      config=_note_corpus(scoring_config(seed, device, batch_size, seq_len, config_file, corpus),
                                          ground_truth),
                      executor=executor, ray_address=address, progress=not quiet, score=not no_score,
                      report_dir=report, command=command_line(), predictor=predictor)
    _print(evaluation, as_json, report)


def _run(**options):
    """:func:`zeronas.evaluate.run_evaluation`, its errors as one-line failures."""
    from zeronas.bench.nbnlp import BenchmarkError
    from zeronas.core.config import ConfigError
    from zeronas.evaluate import run_evaluation
    from zeronas.metrics import MetricsError
    from zeronas.predict.model import PredictorError
    from zeronas.report import ReportError
    from zeronas.run.executor import ExecutorError
    from zeronas.store import StoreError

    try:
        return run_evaluation(**options)
    except (BenchmarkError, MetricsError, ExecutorError, StoreError, PredictorError, ConfigError, ReportError,
            KeyError, FileNotFoundError) as exc:
        raise fail(str(exc).strip('"'))


def _print(evaluation, as_json: bool, report: Optional[Path]) -> None:
    from zeronas.report import format_table, rich_table

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


def _note_corpus(config, ground_truth: str):
    """``config``, after saying so when its probe text is not the text the bundled ground truth was trained on
    (PTB)."""
    if ground_truth in ("nb-nlp", "nbnlp") and config.corpus != "ptb":
        err.print(f"note: the proxies probe {config.corpus_name or config.corpus}, but the ground truth is the "
                  "bundled NAS-Bench-NLP perplexities of cells trained on PTB: this measures how well scores on "
                  "that text predict PTB perplexity (give --ground-truth CSV of cells trained on your corpus to "
                  "compare against those)", highlight=False, markup=False)
    return config
