"""Does the corpus hold what the proxies will read? Checked before any scoring, in every command: a text too short
for the probe is the run's setup error (nothing stored), never an ``error`` row of every cell.

A probe batch is ``batch_size`` windows of ``seq_len + 1`` tokens drawn from the probe split, so the split needs
``seq_len + batch_size`` tokens (at least ``batch_size`` places a window can start); a proxy that draws its own
windows says how many tokens it reads (``min_tokens`` of its registration, e.g. ``state_escape``'s 60 steps)."""

from __future__ import annotations

from typing import Iterable

from zeronas.core.config import ConfigError, ScoringConfig
from zeronas.proxies.registry import get_proxy

# tokens per split of the bundled corpora (tests/test_proxies_trust.py checks them against the loaded text), so
# that a check of the bundled corpora needs no load (loading PTB takes seconds)
BUNDLED_TOKENS = {("ptb", "train"): 929_589, ("ptb", "valid"): 73_760, ("ptb", "test"): 82_430,
                  ("wikitext-2", "valid"): 217_646, ("wikitext-2", "test"): 245_569}
_USER_TOKENS: dict[tuple[str, str], int] = {}  # (sha256:digest, split) -> tokens: a function of the text alone


def probe_split_tokens(config: ScoringConfig, corpus=None) -> int:
    """The tokens of the config's probe split (of ``corpus`` when given, else of the corpus the config names)."""
    split = config.probe_split
    if corpus is not None:
        return int(corpus.split(split).numel())
    key = (config.corpus, split)
    if key in BUNDLED_TOKENS:
        return BUNDLED_TOKENS[key]
    if key not in _USER_TOKENS:
        from zeronas.data.corpus import load_scoring_corpus

        _USER_TOKENS[key] = int(load_scoring_corpus(config.corpus, config.corpus_path).split(split).numel())
    return _USER_TOKENS[key]


def data_needs(names: Iterable[str], config: ScoringConfig) -> tuple[int, str]:
    """The most tokens of the probe split any of ``names`` reads, and what reads them."""
    need, why = config.seq_len + config.batch_size, (f"the probe batch ({config.batch_size} windows of seq_len + 1 "
                                                     f"= {config.seq_len + 1} tokens)")
    for name in dict.fromkeys(names):
        spec = get_proxy(name)
        if spec.min_tokens > need:
            need, why = spec.min_tokens, f"proxy {name}"
    return need, why


def check_data_needs(names: Iterable[str], config: ScoringConfig, corpus=None) -> None:
    """Raise :class:`ConfigError` naming the corpus, the split and the proxy when the probe split is too short."""
    from zeronas.data.corpus import CorpusError

    need, why = data_needs(names, config)
    try:
        have = probe_split_tokens(config, corpus)
    except CorpusError as exc:
        raise ConfigError(str(exc)) from None
    if have < need:
        label = getattr(corpus, "name", None) or config.corpus_name or (
            config.corpus[:23] + "..." if config.corpus.startswith("sha256:") else config.corpus)
        raise ConfigError(f"corpus {label}: its {config.probe_split} split has {have:,} tokens, but {why} needs "
                          f"{need:,}; give a longer text (or a smaller --seq-len / --batch-size)")


__all__ = ["BUNDLED_TOKENS", "check_data_needs", "data_needs", "probe_split_tokens"]
