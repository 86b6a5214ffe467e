"""A user's model for the command line: built by their own factory, weights from a checkpoint (weights only)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import torch
from torch import nn

# where training scripts commonly put the state dict inside a checkpoint dictionary
_STATE_KEYS = ("state_dict", "model_state_dict", "model")


class ModelLoadError(ValueError):
    """A factory or checkpoint that cannot give a model; the message names the factory or file and the problem."""


def build_user_model(factory: str) -> nn.Module:
    """``module:attribute``: an ``nn.Module`` instance, or a class or function called with no arguments that
    returns one. The module is imported like a plugin (installed, or its folder on ``PYTHONPATH``)."""
    module_name, sep, attr = factory.partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise ModelLoadError(f"{factory!r}: name the model as module:attribute (e.g. mypkg.models:build_lm)")
    try:
        module = importlib.import_module(module_name.strip())
    except ImportError as exc:
        raise ModelLoadError(f"{factory!r}: cannot import {module_name!r}: {exc} (is it installed, or its folder "
                             "on PYTHONPATH?)") from None
    target = module
    for part in attr.strip().split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ModelLoadError(f"{factory!r}: module {module_name!r} has no attribute {attr!r}") from None
    if isinstance(target, nn.Module):
        return target
    if not callable(target):
        raise ModelLoadError(f"{factory!r}: {attr!r} is a {type(target).__name__}, not an nn.Module or a callable "
                             "that returns one")
    try:
        model = target()
    except Exception as exc:  # noqa: BLE001 - the user's own code failed: say where
        raise ModelLoadError(f"{factory!r}: calling {attr}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{factory!r}: {attr}() returned a {type(model).__name__}, not an nn.Module")
    return model


def load_checkpoint(model: nn.Module, path: Path) -> nn.Module:
    """Load a state dict into ``model`` from ``path`` (``torch.save`` of a state dict, or of a dictionary holding
    one under ``state_dict``/``model_state_dict``/``model``). Read with ``weights_only=True``: tensors and plain
    containers only, never arbitrary pickled objects. Every key must match."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: no such checkpoint file") from None
    except Exception as exc:  # noqa: BLE001 - unreadable, not a torch file, or holds objects weights_only refuses
        raise ModelLoadError(f"{path}: not a weights-only PyTorch checkpoint: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    state: Optional[Mapping] = data if isinstance(data, Mapping) else None
    if state is not None and not any(isinstance(v, torch.Tensor) for v in state.values()):
        state = next((data[k] for k in _STATE_KEYS if isinstance(data.get(k), Mapping)), None)
    if state is None:
        raise ModelLoadError(f"{path}: holds a {type(data).__name__}, not a state dict (nor a dictionary with one "
                             f"under {', '.join(_STATE_KEYS)})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelLoadError(f"{path}: does not fit the model: {' '.join(line.strip() for line in first)}") from None
    return model
