"""Training-free proxies. One module per proxy; see :mod:`zeronas.proxies.registry`.

``score_cell`` is imported on first use: importing this package (for :class:`Score` or :class:`ScoringConfig`,
as the store and the metrics do) does not import torch."""

from typing import Any

from zeronas.core.config import TINY, ScoringConfig
from zeronas.core.score import Score
from zeronas.proxies.registry import get_proxy, list_proxies, parse_proxy_list, proxy

__all__ = ["ScoringConfig", "TINY", "Score", "score_cell", "proxy", "get_proxy", "list_proxies",
           "parse_proxy_list"]


def __getattr__(name: str) -> Any:
    if name == "score_cell":
        from zeronas.proxies.runner import score_cell

        return score_cell
    raise AttributeError(f"module 'zeronas.proxies' has no attribute {name!r}")
