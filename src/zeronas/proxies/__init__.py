"""Training-free proxies. One module per proxy; see :mod:`zeronas.proxies.registry`."""

from zeronas.proxies.config import TINY, ScoringConfig
from zeronas.proxies.registry import get_proxy, list_proxies, parse_proxy_list, proxy
from zeronas.proxies.runner import Score, score_cell

__all__ = ["ScoringConfig", "TINY", "Score", "score_cell", "proxy", "get_proxy", "list_proxies",
           "parse_proxy_list"]
