"""The value types every layer shares, below everything else: the scoring config, a proxy's score, the proxy-spec
grammar. Free of torch and of the proxy registry."""

from zeronas.core.config import TINY, ConfigError, ScoringConfig
from zeronas.core.score import STATUSES, UNSUPPORTED, Score
from zeronas.core.spec import COMBINE, GATE, SpecError, parse_proxy_specs, parse_spec, spec_name, spec_proxies

__all__ = ["TINY", "ConfigError", "ScoringConfig", "STATUSES", "UNSUPPORTED", "Score", "COMBINE", "GATE",
           "SpecError", "parse_proxy_specs", "parse_spec", "spec_name", "spec_proxies"]
