"""The options several commands share, declared once (``store: Store = DEFAULT_STORE``): one name, one help text
and one meaning everywhere. A command's own options stay in its signature."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zeronas.cli._common import CORPUS_HELP

GroundTruth = Annotated[str, typer.Option("--ground-truth", help="nb-nlp (bundled) or a CSV: "
                                                                 "recipe,test_loss[,arch_sha1,replica]")]
Store = Annotated[str, typer.Option("--store", help="Results store URL (sqlite:///file.db) or path; every "
                                                    "command shares it.")]
Workers = Annotated[Optional[int], typer.Option("--workers", help="Processes (default: all cores).")]
Timeout = Annotated[Optional[float], typer.Option("--timeout", help="Per-proxy scoring limit in seconds; a proxy "
                                                                    "past it is stored as status timeout, the "
                                                                    "cell's other proxies are kept.")]
ScoringConfigFile = Annotated[Optional[Path], typer.Option("--scoring-config",
                                                           help="JSON file of ScoringConfig fields.")]
Corpus = Annotated[Optional[str], typer.Option("--corpus", help=CORPUS_HELP)]
ScoringSeed = Annotated[Optional[int], typer.Option("--seed", help="Seed of the weights, the probe batch and the "
                                                                   "noise (default 0, or the config file's).")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu (default, or the config file's), cuda, "
                                                                "cuda:1, ...")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Sequences in the probe batch.")]
SeqLen = Annotated[Optional[int], typer.Option("--seq-len", help="Tokens per probe sequence.")]
NoScore = Annotated[bool, typer.Option("--no-score", help="Use only scores already stored.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
