"""zeronas: training-free neural architecture search for recurrent networks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zeronas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
