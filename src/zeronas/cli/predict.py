"""``zeronas predict fit|curve``: fit a performance predictor on labelled cells, and measure its learning curve."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer

from zeronas.cli._common import command_line, fail, out, scoring_config
from zeronas.cli._options import Corpus, Device, GroundTruth, NoScore, Quiet, ScoringConfigFile, Store, Timeout, Workers
from zeronas.store import DEFAULT_STORE

predict_app = typer.Typer(help="Fit a performance predictor on labelled cells (zero-cost scores + cell structure) "
                               "and measure how it ranks cells it was not fitted on.", no_args_is_help=True)

DEFAULT_MODEL = "predictor.json"
DEFAULT_BASELINES = "hidden_cov,hidden_cov!state_escape,params,n_blend"


def _config(config_file: Optional[Path], device: Optional[str], corpus: Optional[str] = None):
    """The scoring config: the default or a JSON file's, as written (``--device`` replaces its device only,
    ``--corpus`` its corpus)."""

    return scoring_config(None, device, None, None, config_file, corpus)


def _model_config(model: Any, model_path: Path, corpus: Optional[str]) -> Any:
    """The scoring config a predictor was fitted with, its user corpus found at ``--corpus`` (checked against the
    digest the model names: another text is another config)."""
    from zeronas.core.config import ScoringConfig

    config = ScoringConfig.from_dict(model.scoring_config)
    if config.config_hash() != model.config_hash:
        raise ValueError(f"{model_path}: its scoring config does not match its config hash")
    user = config.corpus.startswith("sha256:")
    if corpus is None:
        if user:
            raise fail(f"{model_path}: the predictor was fitted on the user corpus "
                       f"{config.corpus_name or config.corpus[:23] + '...'}: give that text with --corpus PATH")
        return config
    from zeronas.data.corpus import CorpusError

    try:
        found = config.with_corpus(corpus, probe_split=config.probe_split)
    except CorpusError as exc:
        raise fail(f"--corpus: {exc}")
    if found.config_hash() != model.config_hash:
        raise fail(f"--corpus: {corpus} is not the corpus {model_path} was fitted on "
                   f"({config.corpus_name or config.corpus}); its scores would be under another config")
    return found


def _labelled(ground_truth: str, labels: Optional[int], seed: int, proxies: Optional[str], structure: bool,
              config: Any, store: str, score: bool, workers: Optional[int], timeout: Optional[float],
              quiet: bool):
    from zeronas.evaluate import load_ground_truth
    from zeronas.predict.data import check_proxies, default_feature_proxies, labelled_data, labelled_sample
    from zeronas.proxies.registry import parse_proxy_list
    from zeronas.run import score_and_read

    names = check_proxies(parse_proxy_list(proxies) if proxies else default_feature_proxies())
    bench = load_ground_truth(ground_truth)
    archs = labelled_sample(bench, labels, seed)
    _, scores = score_and_read(archs, names, config, store, score=score, workers=workers, timeout_s=timeout,
                               progress=not quiet)
    return names, labelled_data(archs, scores, names, structure), scores


def _errors() -> tuple[type[BaseException], ...]:
    from zeronas.bench.nbnlp import BenchmarkError
    from zeronas.cells.recipe import RecipeError
    from zeronas.metrics import MetricsError
    from zeronas.predict.model import PredictorError
    from zeronas.run.executor import ExecutorError
    from zeronas.store import StoreError

    return (PredictorError, BenchmarkError, RecipeError, MetricsError, ExecutorError, StoreError, KeyError,
            ValueError, FileNotFoundError)


def _is_model_file(path: Path) -> bool:
    """Is ``path`` a model file of `zeronas predict fit` (which a new fit may replace)?"""
    from zeronas.files import FileArgError, read_text
    from zeronas.predict.model import FORMAT, MAX_MODEL_BYTES

    try:
        data = json.loads(read_text(path, what="model file", limit=MAX_MODEL_BYTES))
    except (FileArgError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def _check_model_out(out_path: Path, force: bool, store: str) -> None:
    from zeronas.files import FileArgError, check_output
    from zeronas.store import store_file

    try:
        check_output(out_path, force=force, protected=[p for p in [store_file(store)] if p is not None],
                     what="model file", may_replace=_is_model_file)
    except FileArgError as exc:
        raise fail(f"--out: {exc}")


@predict_app.command("fit")
def fit_cmd(ground_truth: GroundTruth = "nb-nlp",
            labels: Optional[int] = typer.Option(None, "--labels", help="Fit on a seeded sample of N labelled "
                                                                        "cells (default: all)."),
            seed: int = typer.Option(0, "--seed", help="Seed of the sample and of the trees."),
            proxies: Optional[str] = typer.Option(None, "--proxies", "-p",
                                                  help="Comma-separated feature proxies (default: every registered "
                                                       "proxy but the LM-loss NTK pair)."),
            structure: bool = typer.Option(True, "--structure/--no-structure",
                                           help="Use the cell graph's structural features."),
            objective: str = typer.Option("regression", "--objective", help="regression or lambdarank."),
            prior: Optional[str] = typer.Option(None, "--prior",
                                                help="A feature proxy whose label-free ranking the trees start "
                                                     "from, or 'none' (default: hidden_cov, the recommended "
                                                     "method's ranking proxy, when it is a feature)."),
            out_path: Path = typer.Option(Path(DEFAULT_MODEL), "--out", "-o",
                                          help="Model file (JSON) to write; an older model file there is replaced, "
                                               "any other file only with --force, the store never."),
            force: bool = typer.Option(False, "--force", help="Replace an existing --out file that is not a model "
                                                              "file."),
            store: Store = DEFAULT_STORE, workers: Workers = None, timeout: Timeout = 600.0,
            config_file: ScoringConfigFile = None, corpus: Corpus = None, device: Device = None,
            no_score: NoScore = False,
            as_json: bool = typer.Option(False, "--json", help="Print one JSON object describing the fit."),
            quiet: Quiet = False) -> None:
    """Fit a predictor of test loss and of divergence on labelled cells; scores the store lacks are computed."""
    from zeronas.predict.data import resolve_prior
    from zeronas.predict.model import Predictor

    _check_model_out(out_path, force, store)  # before hours of scoring, and before anything is written
    config = _config(config_file, device, corpus)
    try:
        names, data, _ = _labelled(ground_truth, labels, seed, proxies, structure, config, store, not no_score,
                                   workers, timeout, quiet)
        prior_name, prior_hib = resolve_prior(prior, names)
        start = time.perf_counter()
        model = Predictor.fit(data.X, data.losses, proxies=names, structure=structure, objective=objective,
                              seed=seed, scoring_config=config.to_dict(), config_hash=config.config_hash(),
                              prior=prior_name, prior_higher_is_better=prior_hib,
                              training={"ground_truth": ground_truth, "labels": labels, "sample_seed": seed,
                                        "canonical_ids": sorted(a.canonical_id for a in data.archs)})
        seconds = time.perf_counter() - start
        model.save(out_path)
    except _errors() as exc:
        raise fail(str(exc).strip('"'))
    t = model.training
    if as_json:
        print(json.dumps({"model": str(out_path), "objective": objective, "prior": model.prior,
                          "n_cells": t["n_cells"], "n_diverged": t["n_diverged"], "features": model.features,
                          "trees": model.params["rounds"], "cv_kendall_tau": model.params["cv_kendall_tau"],
                          "seconds": round(seconds, 3), "config_hash": model.config_hash}))
        return
    out.print(f"fitted a {objective} predictor (prior {model.prior or 'none'}) on {t['n_cells']} labelled cells ({t['n_diverged']} diverged) with "
              f"{len(model.features)} features in {seconds:.1f} s; wrote {out_path} (config {model.config_hash})",
              highlight=False, markup=False)


@predict_app.command("curve")
def curve_cmd(ground_truth: GroundTruth = "nb-nlp",
              labels: str = typer.Option("10,30,100,300,1000,all", "--labels",
                                         help="Numbers of labelled cells to fit on; 'all' = 5-fold CV."),
              repeats: int = typer.Option(5, "--repeats", help="Seeded samples per number of labels."),
              seed: int = typer.Option(0, "--seed", help="Seed of the samples, the folds and the trees."),
              objectives: str = typer.Option("regression,lambdarank", "--objectives",
                                             help="Comma-separated: regression, lambdarank."),
              proxies: Optional[str] = typer.Option(None, "--proxies", "-p",
                                                    help="Feature proxies (default: every registered proxy but the "
                                                         "LM-loss NTK pair)."),
              structure: bool = typer.Option(True, "--structure/--no-structure"),
              prior: Optional[str] = typer.Option(None, "--prior",
                                                  help="Prior proxy of the trees, or 'none' (default: hidden_cov "
                                                       "when it is a feature)."),
              baselines: str = typer.Option(DEFAULT_BASELINES, "--baselines",
                                            help="Label-free specs measured on the same held-out cells."),
              out_dir: Optional[Path] = typer.Option(None, "--out", "-o",
                                                     help="Write curve.json, curve.md and curve.png here."),
              store: Store = DEFAULT_STORE, workers: Workers = None, timeout: Timeout = 600.0,
              config_file: ScoringConfigFile = None, corpus: Corpus = None, device: Device = None,
              no_score: NoScore = False,
              as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
              quiet: Quiet = False) -> None:
    """The learning curve: tau, tau within the best 10%, top-1 pick and divergence AUC against the number of
    labelled cells, each measured on the cells outside the fitted sample."""
    from zeronas.predict.curve import FOLDS, curve_methods, parse_labels
    from zeronas.predict.data import resolve_prior
    from zeronas.proxies.registry import parse_specs

    config = _config(config_file, device, corpus)
    try:
        label_list, objs = parse_labels(labels), _objectives(objectives)
        if repeats < 1:  # checked before any scoring
            raise ValueError(f"--repeats must be at least 1, got {repeats}")
        base_specs = parse_specs(baselines) if baselines.strip() else []
        names, data, scores = _labelled(ground_truth, None, seed, proxies, structure, config, store, not no_score,
                                        workers, timeout, quiet)
        prior_name, prior_hib = resolve_prior(prior, names)
        methods = curve_methods(data, names, scores, labels=label_list, objectives=objs, baselines=base_specs,
                                repeats=repeats, seed=seed, structure=structure, prior=prior_name,
                                prior_higher_is_better=prior_hib, progress=not quiet)
    except _errors() as exc:
        raise fail(str(exc).strip('"'))
    curve = {"command": command_line(), "ground_truth": ground_truth,
             "n_cells": len(data.archs), "n_diverged": sum(x is None for x in data.losses),
             "config_hash": config.config_hash(), "config": config.to_dict(), "features": names,
             "structure": structure, "prior": prior_name, "repeats": repeats, "folds": FOLDS, "seed": seed,
             "baselines": base_specs, "methods": methods}
    _print_curve(curve, out_dir, as_json)


def _objectives(text: str) -> list[str]:
    from zeronas.predict.model import OBJECTIVES

    objs = [o.strip() for o in text.split(",") if o.strip()]
    bad = [o for o in objs if o not in OBJECTIVES]
    if bad or not objs:
        raise ValueError(f"--objectives: unknown {bad[0]!r} (known: {', '.join(OBJECTIVES)})" if bad
                         else "--objectives: none given")
    return objs


def _print_curve(curve: dict[str, Any], out_dir: Optional[Path], as_json: bool) -> None:
    from zeronas.predict.curve_report import text_table, write_curve

    if out_dir is not None:
        try:
            write_curve(out_dir, curve)
        except OSError as exc:
            raise fail(f"{out_dir}: cannot write the curve: {exc.strerror or exc}")
    if as_json:
        print(json.dumps(curve))
        return
    print(text_table(curve))
    if out_dir is not None:
        out.print(f"curve written to {out_dir}/curve.json, curve.md and curve.png", highlight=False, markup=False)


@predict_app.command("cell")
def cell_cmd(model_path: Path = typer.Argument(..., help="A model file of `zeronas predict fit`."),
             specs: list[str] = typer.Argument(..., help="Cells: recipe files, rnn|lstm|gru, or benchmark ids."),
             store: Store = DEFAULT_STORE, workers: Workers = None, timeout: Timeout = 600.0,
             corpus: Optional[str] = typer.Option(None, "--corpus",
                                                  help="The corpus the predictor was fitted on, when it is your "
                                                       "own text (a folder or a file): its scores are under that "
                                                       "text's config."),
             as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the model, its config "
                                                                 "hash and a row per cell."),
             quiet: Quiet = False) -> None:
    """Predict the test perplexity and the probability of divergence of cells (their feature proxies are scored
    with the model's scoring config if the store lacks them)."""
    import math

    from zeronas.bench.resolve import resolve_cell
    from zeronas.predict.data import predict_cells
    from zeronas.run import score_and_read
    from zeronas.predict.model import load_predictor

    try:
        model = load_predictor(model_path)
        config = _model_config(model, model_path, corpus)
        cells = [resolve_cell(s) for s in specs]
        _, table = score_and_read(cells, model.proxies, config, store, workers=workers, timeout_s=timeout,
                                  progress=not quiet)
        scores = [table[c.canonical_id] for c in cells]
        pred, complete = predict_cells(model, cells, scores)
    except _errors() as exc:
        raise fail(str(exc).strip('"'))
    rows = []
    pos = 0
    for spec, cell, ok in zip(specs, cells, complete):
        row: dict[str, Any] = {"cell": spec, "canonical_id": cell.canonical_id, "complete": bool(ok)}
        if ok:
            loss = float(pred.test_loss[pos])
            row.update(score=float(pred.score[pos]), quality=float(pred.quality[pos]),
                       p_diverge=float(pred.p_diverge[pos]), test_loss=loss, test_ppl=math.exp(loss))
            pos += 1
        rows.append(row)
    if as_json:
        print(json.dumps({"model": str(model_path), "config_hash": model.config_hash, "cells": rows}))
        return
    for r in rows:
        if not r["complete"]:
            out.print(f"{r['cell']}: some feature proxy has no score (ranks last)", highlight=False, markup=False)
            continue
        out.print(f"{r['cell']}: predicted test ppl {r['test_ppl']:.1f} if it trains, P(diverge) "
                  f"{r['p_diverge']:.3f}, ranking score {r['score']:.4f} ({r['canonical_id']})",
                  highlight=False, markup=False)
