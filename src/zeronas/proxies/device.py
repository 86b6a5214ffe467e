"""Is a device usable here? Checked before any scoring, so a missing GPU is an error of the run, never a score."""

from __future__ import annotations

from zeronas.core.config import ConfigError, ScoringConfig


def check_device(device: str) -> str:
    """Return ``device`` if torch can run on it on this machine; raise :class:`ConfigError` otherwise."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ConfigError(f"device {device!r} is not a device torch knows (cpu, cuda, cuda:N, mps): {exc}") from None
    if dev.type == "cpu":
        return device
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: this machine has no usable CUDA GPU (or torch was built without "
                              "CUDA); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
        return device
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {device!r}: MPS is not available on this machine")
        return device
    raise ConfigError(f"device {device!r}: zeronas runs on cpu, cuda or mps, not {dev.type}")


def check_config(config: ScoringConfig) -> ScoringConfig:
    """The config's fields (:meth:`ScoringConfig.validate`) and its device (:func:`check_device`)."""
    config.validate()
    check_device(config.device)
    return config
