"""zeronas: training-free neural architecture search for recurrent networks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zeronas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_API = {  # the Python API, imported on first use (torch is heavy; `zeronas --help` should not wait for it)
    "score_model": "zeronas.proxies.runner",
    "score_cell": "zeronas.proxies.runner",
    "ScoringConfig": "zeronas.core.config",
    "adapt_lm": "zeronas.models.adapters",
    "rnn_lm": "zeronas.models.adapters",
    "cell_lm": "zeronas.models.adapters",
    "register_adapter": "zeronas.models.adapters",
    "RecurrentLM": "zeronas.models.contract",
}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'zeronas' has no attribute {name!r}")


__all__ = ["__version__", *_API]
