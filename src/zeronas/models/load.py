"""A user's model for the command line: built by their own factory, weights from a checkpoint (weights only)."""

from __future__ import annotations

import importlib
import re
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
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module failed (or exited) while importing
        raise ModelLoadError(f"{factory!r}: importing {module_name!r} failed: {_what(exc)}") from None
    target = module
    for part in attr.strip().split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ModelLoadError(f"{factory!r}: module {module_name!r} has no attribute {attr!r}") from None
    if isinstance(target, nn.Module):
        return _real_weights(target, factory)
    if not callable(target):
        raise ModelLoadError(f"{factory!r}: {attr!r} is a {type(target).__name__}, not an nn.Module or a callable "
                             "that returns one")
    try:
        model = target()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's own code failed (or exited): say where
        raise ModelLoadError(f"{factory!r}: calling {attr}() failed: {_what(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{factory!r}: {attr}() returned a {type(model).__name__}, not an nn.Module")
    return _real_weights(model, factory)


def _what(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _real_weights(model: nn.Module, factory: str) -> nn.Module:
    """A model whose weights hold data: one built on the meta device has none to score."""
    meta = next((name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta), None)
    if meta is not None:
        raise ModelLoadError(f"{factory!r}: {meta} is on the meta device (a shape without data); build the model "
                             "with real weights (e.g. on cpu), or load them before scoring")
    return model


def load_checkpoint(model: nn.Module, path: Path) -> nn.Module:
    """Load a state dict into ``model`` from ``path`` (``torch.save`` of a state dict, or of a dictionary holding
    one under ``state_dict``/``model_state_dict``/``model``). Read with ``weights_only=True``: tensors and plain
    containers only, never arbitrary pickled objects. Every key must match."""
    from zeronas.files import FileArgError, check_regular

    try:  # a regular file: never a FIFO that blocks or /dev/zero
        check_regular(path, what="checkpoint file")
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except FileArgError as exc:
        raise ModelLoadError(str(exc)) from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the checkpoint: {exc.strerror or exc}") from None
    if magic != b"PK\x03\x04" and not magic.startswith(b"\x80"):  # torch.save writes a zip (older: a pickle)
        raise ModelLoadError(f"{path}: not a PyTorch checkpoint (torch.save writes a zip file; this one starts "
                             f"with {magic!r})")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable, not a torch file, or holds objects weights_only refuses
        raise ModelLoadError(_load_failure(path, exc)) from None
    state: Optional[Mapping] = data if isinstance(data, Mapping) else None
    if state is not None and not any(isinstance(v, torch.Tensor) for v in state.values()):
        state = next((data[k] for k in _STATE_KEYS if isinstance(data.get(k), Mapping)), None)
    if state is None:
        raise ModelLoadError(f"{path}: holds a {type(data).__name__}, not a state dict (nor a dictionary with one "
                             f"under {', '.join(_STATE_KEYS)})")
    _check_dtypes(model, state, path)
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - missing or unexpected keys, shapes, values that are not tensors
        first = str(exc).strip().splitlines()
        raise ModelLoadError(f"{path}: does not fit the model: {' '.join(line.strip() for line in first)}") from None
    return model


def _load_failure(path: Path, exc: BaseException) -> str:
    """What a failed weights-only load means, in one line: a refused pickled object is named (and PyTorch's advice
    to load it with ``weights_only=False`` is not passed on: zeronas never unpickles objects)."""
    text = str(exc)
    refused = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"Unsupported global: ([\w.]+)", text)
    if refused:
        return (f"{path}: holds a pickled object of type {refused.group(1)}, which a weights-only load refuses "
                "(zeronas never unpickles objects); save the model's state_dict() instead")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{path}: not a weights-only PyTorch checkpoint: {type(exc).__name__}: {first}"


def _check_dtypes(model: nn.Module, state: Mapping, path: Path) -> None:
    """Integer, boolean or complex tensors are not weights: loading them into float parameters would cast them in
    silence."""
    own = dict(model.state_dict(keep_vars=True))
    for key, value in state.items():
        target = own.get(key)
        if not isinstance(value, torch.Tensor) or not isinstance(target, torch.Tensor):
            continue
        if target.is_floating_point() and not value.is_floating_point():
            raise ModelLoadError(f"{path}: {key} holds {value.dtype} values, but the model's {key} is "
                                 f"{target.dtype}; a checkpoint of weights holds floating-point tensors")
