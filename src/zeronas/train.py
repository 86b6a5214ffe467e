"""Verification by training: train one cell's language model with the NAS-Bench-NLP protocol.

The protocol (read from fmsnew/nas-bench-nlp-release, ``main_one_model_train.py`` and ``train.py``):

- model: AWD-LSTM-style, embedding 400, 3 layers of 600 hidden units (the last one 400, tied decoder), dropouts
  0.4 / 0.25 / 0.4 / 0.1 and DropConnect 0.5 on the recurrent weights (:class:`zeronas.models.lm.ModelConfig`);
- Adam, lr 1e-3, weight decay 1.2e-6 (L2 inside Adam, as ``torch.optim.Adam``), gradient norm clipped to 0.25,
  batch 20, 50 epochs, no learning-rate schedule;
- **variable BPTT**, as in AWD-LSTM: each batch's length is drawn around 70 (70 with probability 0.95, else 35,
  plus N(0, 5) noise, at least 5), and the learning rate of that step is scaled by ``length / 70``;
- activation regularisation ``2 * mean(dropped last-layer output^2)`` and temporal activation regularisation
  ``1 * mean((h_t - h_{t-1})^2)`` on the last layer's raw output (alpha = 2, beta = 1);
- evaluation (validation and test) with batch 50 and chunks of 70 tokens, the hidden state carried across chunks.
  The benchmark's label is the **final epoch's** test loss (not the best-validation epoch's), so :func:`train`
  tests the final model.

Differences, all deliberate: the evaluation loss is the exact mean over every predicted token (the reference
divides a length-weighted sum by the number of rows, which counts one token too many); the batch length and
dropout randomness come from seeded generators, so a run is a pure function of (cell, config, corpus) on one
device; and each epoch's ``train_loss`` is the running mean of the training loss (with dropout) rather than a
separate evaluation pass over the training set. ``TrainConfig(variable_bptt=False, alpha=0, beta=0,
eval_batch_size=10, test_batch_size=1)`` gives the plain AWD-LSTM fixed-window setup instead.

Hidden state is carried across the batches of an epoch and detached after each step (truncated BPTT); each epoch
starts from a zero state. Checkpoints hold the whole training state (weights, optimiser, RNG streams, position in
the epoch, hidden state, metrics), so an interrupted run resumes to exactly the same result; they are read with
``torch.load(weights_only=True)`` and contain only tensors and plain Python values.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F

from zeronas.cells.recipe import Cell, canonical_json, parse_recipe
from zeronas.data.corpus import Corpus, batchify, get_batch, load_ptb
from zeronas.models.lm import ModelConfig, RNNModel, State, build_model, detach_state
from zeronas.progress import ProgressBar

Tensor = torch.Tensor

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.json"
CHECKPOINT_FORMAT = "zeronas-train-checkpoint"
CHECKPOINT_VERSION = 1
# Config fields that only say how long or where to train: a checkpoint may be resumed with other values.
RUN_ONLY_FIELDS: frozenset[str] = frozenset({"epochs", "max_steps", "stop_epochs", "max_tokens", "device",
                                             "checkpoint_every"})


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed by this run. The message names the file and the field."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults are the NAS-Bench-NLP PTB protocol (see the module docstring)."""

    epochs: int = 50
    max_steps: Optional[int] = None  # stop after this many optimiser steps in all (then validate and test)
    # Stop at the first batch boundary at or past this many epochs (fractions allowed: 0.25 stops a quarter into
    # epoch 1) or training tokens in all; successive halving's rungs. A checkpoint resumes past them bit-identically.
    stop_epochs: Optional[float] = None
    max_tokens: Optional[int] = None
    batch_size: int = 20
    bptt: int = 70
    variable_bptt: bool = True  # AWD-LSTM/NAS-Bench-NLP random batch lengths around bptt
    lr: float = 1e-3
    weight_decay: float = 1.2e-6
    clip: float = 0.25  # max gradient norm; 0 = no clipping
    alpha: float = 2.0  # activation regularisation
    beta: float = 1.0  # temporal activation regularisation
    eval_batch_size: int = 50
    test_batch_size: int = 50
    # model (zeronas.models.lm.ModelConfig)
    emb_size: int = 400
    hidden_size: int = 600
    n_layers: int = 3
    dropout: float = 0.4
    dropouth: float = 0.25
    dropouti: float = 0.4
    dropoute: float = 0.1
    wdrop: float = 0.5
    seed: int = 0
    device: str = "cpu"
    # corpus slices (None = the whole split), for quick runs
    max_train_tokens: Optional[int] = None
    max_eval_tokens: Optional[int] = None
    # a training loss above explode_factor * ln(vocabulary) (far worse than guessing uniformly) counts as diverged
    explode_factor: float = 3.0
    checkpoint_every: int = 0  # also write a checkpoint every this many steps (0: at epoch ends and stops only)

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "bptt", "eval_batch_size", "test_batch_size", "emb_size",
                    "hidden_size", "n_layers")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("max_steps", "max_tokens", "max_train_tokens", "max_eval_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"TrainConfig.{name} must be None or a positive integer, got {value!r}")
        stop = self.stop_epochs
        if stop is not None and (isinstance(stop, bool) or not isinstance(stop, (int, float))
                                 or not math.isfinite(stop) or stop <= 0):
            raise ValueError(f"TrainConfig.stop_epochs must be None or a positive number, got {stop!r}")
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1), got {value!r}")
        for name in ("lr", "explode_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("weight_decay", "clip", "alpha", "beta", "checkpoint_every"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TrainConfig.{name} must be non-negative, got {getattr(self, name)!r}")

    @classmethod
    def quick(cls, **changes: Any) -> "TrainConfig":
        """A CPU smoke run (seconds on an idle machine): tiny model, 20 steps on the first 40k PTB training tokens,
        validation and test on the first 5k tokens of each split."""
        base = dict(epochs=1, max_steps=20, bptt=35, emb_size=32, hidden_size=48, n_layers=2,
                    eval_batch_size=10, test_batch_size=10, max_train_tokens=40_000, max_eval_tokens=5_000)
        return cls(**{**base, **changes})

    def replace(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes)

    def model_config(self) -> ModelConfig:
        return ModelConfig(emb_size=self.emb_size, hidden_size=self.hidden_size, n_layers=self.n_layers,
                           tie_weights=True, dropout=self.dropout, dropouth=self.dropouth, dropouti=self.dropouti,
                           dropoute=self.dropoute, wdrop=self.wdrop)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch. Losses are mean cross-entropies in nats per token."""

    epoch: int  # 1-based
    train_loss: float  # running mean of the training loss (dropout on), weighted by tokens
    val_loss: float
    val_ppl: float
    steps: int
    tokens: int
    seconds: float  # training and validation of this epoch

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in asdict(self).items()}


@dataclass
class TrainResult:
    """The outcome of :func:`train`. ``model`` (the trained model) is not part of :meth:`to_dict`."""

    canonical_id: str
    arch_sha1: str
    config: dict[str, Any]
    corpus: dict[str, Any]
    num_parameters: int
    epochs: list[EpochRecord]
    val_loss: Optional[float]  # of the final model
    val_ppl: Optional[float]
    test_loss: Optional[float]  # of the final model (None if the run diverged)
    test_ppl: Optional[float]
    steps: int
    tokens: int  # training tokens processed
    train_seconds: float  # time in training steps, all sessions of a resumed run
    seconds: float  # wall time including evaluation, all sessions
    tokens_per_second: float
    diverged: bool
    divergence_reason: Optional[str]
    stopped: str  # "epochs" | "max_steps" | "stop_epochs" | "max_tokens" | "diverged"
    resumed_from: Optional[dict[str, int]] = None  # {"epoch": completed epochs, "step": steps} if resumed
    checkpoint: Optional[str] = None
    model: Optional[RNNModel] = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "model":
                continue
            value = getattr(self, f.name)
            if f.name == "epochs":
                value = [e.to_dict() for e in value]
            out[f.name] = _json_number(value)
        return out


def _json_number(value: Any) -> Any:
    """Non-finite floats become None so that the result is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def perplexity(loss: float) -> float:
    """exp(loss), inf when it overflows."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


# ----------------------------------------------------------------------------------------------------------------
# evaluation

@torch.no_grad()
def mean_loss(model: RNNModel, source: Tensor, bptt: int,
             check: Optional[Callable[[], None]] = None) -> float:
    """Mean cross-entropy (nats/token) of ``model`` on a batchified ``(T, B)`` source, in chunks of ``bptt`` rows
    with the hidden state carried across chunks (so it equals the loss of one pass over each whole column)."""
    model.eval()
    hidden = model.init_hidden(source.size(1))
    total = 0.0
    count = 0
    for i in range(0, source.size(0) - 1, bptt):
        data, targets = get_batch(source, i, bptt)
        logits, hidden = model(data, hidden)
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                 reduction="sum").item()
        count += targets.numel()
        if check is not None:
            check()
    return total / count


# ----------------------------------------------------------------------------------------------------------------
# the training state

@dataclass
class _Progress:
    """Where training stands; everything here goes into the checkpoint as plain values."""

    epoch: int = 0  # completed epochs
    position: int = 0  # next training row of the current epoch
    step: int = 0  # optimiser steps, all epochs
    epoch_steps: int = 0
    epoch_loss_sum: float = 0.0  # sum over the epoch's steps of loss * tokens
    epoch_tokens: int = 0
    epoch_seconds: float = 0.0
    tokens: int = 0
    train_seconds: float = 0.0
    seconds: float = 0.0
    diverged: bool = False
    divergence_reason: Optional[str] = None


def _corpus_info(corpus: Corpus, splits: dict[str, Tensor]) -> dict[str, Any]:
    """What identifies the data a run was trained on: the vocabulary size and a hash of the token ids used."""
    digest = hashlib.sha1()
    for name in ("train", "valid", "test"):
        digest.update(name.encode())
        digest.update(splits[name].to(torch.int64).contiguous().numpy().tobytes())
    return {"name": corpus.name, "vocab_size": corpus.vocab_size,
            **{f"{name}_tokens": int(splits[name].numel()) for name in ("train", "valid", "test")},
            "sha1": digest.hexdigest()}


def atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    """Write via a temporary file in the same folder, fsync, then os.replace: a reader sees the old or the new file,
    never half of one, even if the process dies while writing."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_checkpoint(path: Path, ckpt: Any, cell: Cell, config: TrainConfig, corpus_info: dict[str, Any]) -> None:
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a zeronas training checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r}, this zeronas reads "
                              f"version {CHECKPOINT_VERSION}")
    hint = "; use another checkpoint directory or delete this one to start afresh"
    if ckpt.get("cell") != canonical_json(cell.recipe):
        raise CheckpointError(f"{path}: field 'cell' differs: the checkpoint is for cell {ckpt.get('arch_sha1')} "
                              f"(arch_sha1), this run trains {cell.arch_sha1}{hint}")
    saved = ckpt.get("config", {})
    for f in fields(TrainConfig):
        if f.name in RUN_ONLY_FIELDS:
            continue
        if f.name not in saved:
            raise CheckpointError(f"{path}: field 'config.{f.name}' is missing from the checkpoint{hint}")
        if saved[f.name] != getattr(config, f.name):
            raise CheckpointError(f"{path}: field 'config.{f.name}' differs: {saved[f.name]!r} in the checkpoint, "
                                  f"{getattr(config, f.name)!r} in this run{hint}")
    for key, value in corpus_info.items():
        if key == "name":
            continue
        if ckpt.get("corpus", {}).get(key) != value:
            raise CheckpointError(f"{path}: field 'corpus.{key}' differs: {ckpt.get('corpus', {}).get(key)!r} in "
                                  f"the checkpoint, {value!r} in this run (another corpus or slice){hint}")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file safely (``weights_only=True``: tensors and plain Python values only)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is reported with the file's name
        raise CheckpointError(f"{path}: cannot read the checkpoint: {exc}") from None


# ----------------------------------------------------------------------------------------------------------------
# Ctrl-C: finish the current step, save, then stop

class _Interrupt:
    """On the first SIGINT, ask the loop to save a checkpoint at the next consistent point and stop; a second
    SIGINT stops at once. Only installed in the main thread and when there is a checkpoint directory."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._old: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, self._old)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_Interrupt":
        if self.enabled:
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._old)


def _bar(enabled: bool, total: Optional[int], completed: int) -> ProgressBar:
    """The training bar (steps, loss, tokens/s, ETA); in a log, a plain line every minute."""

    def line(bar: ProgressBar) -> str:
        return f"step {bar.completed}/{bar.total}  loss {bar.fields['loss']}  {bar.fields['tps']} tok/s"

    return ProgressBar("training", total, enabled=enabled, completed=completed, eta=True, line=line,
                       detail="steps  loss {loss}  {tps} tok/s", loss="-", tps="-")


# ----------------------------------------------------------------------------------------------------------------
# training

def _sample_length(config: TrainConfig, gen: torch.Generator) -> int:
    """AWD-LSTM's random batch length: bptt (p = 0.95) or bptt / 2, plus N(0, 5), at least 5."""
    if not config.variable_bptt:
        return config.bptt
    base = config.bptt if torch.rand((), generator=gen).item() < 0.95 else config.bptt / 2.0
    return max(5, int(base + 5.0 * torch.randn((), generator=gen).item()))


def _slice(split: Tensor, limit: Optional[int]) -> Tensor:
    return split if limit is None else split[:limit]


def _splits(corpus: Corpus, config: TrainConfig) -> dict[str, Tensor]:
    return {"train": _slice(corpus.train, config.max_train_tokens),
            "valid": _slice(corpus.valid, config.max_eval_tokens),
            "test": _slice(corpus.test, config.max_eval_tokens)}


def corpus_identity(corpus: Corpus, config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint records of the data a run trains on (name, vocabulary, token counts, sha1 of the token ids
    of the slices ``config`` uses): equal identities train identically."""
    return _corpus_info(corpus, _splits(corpus, config))


def tokens_per_epoch(corpus: Corpus, config: TrainConfig) -> int:
    """Training tokens (targets) in one epoch: every row of the batchified split but the last is an input once."""
    rows = _slice(corpus.train, config.max_train_tokens).numel() // config.batch_size
    return max(0, rows - 1) * config.batch_size


def _batchify(split: Tensor, batch_size: int, name: str, corpus: Corpus, device: torch.device) -> Tensor:
    if split.numel() < 2 * batch_size:
        raise ValueError(f"the {name} split of corpus {corpus.name!r} has {split.numel()} tokens, too few for "
                         f"batch size {batch_size} (at least {2 * batch_size} needed)")
    return batchify(split, batch_size).to(device)


def _resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} is not available (torch.cuda.is_available() is False)")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def train(cell: Cell | dict | str, config: Optional[TrainConfig] = None, corpus: Optional[Corpus] = None,
          checkpoint_dir: Optional[str | Path] = None, progress: bool = True,
          on_epoch: Optional[Callable[[EpochRecord], None]] = None, test: bool = True) -> TrainResult:
    """Train ``cell``'s language model on ``corpus`` (default: the bundled PTB), then test the final model (with
    ``test=False`` the test split is left alone and ``test_loss`` is None: successive halving's rungs look at the
    validation split only).

    With ``checkpoint_dir``, the training state is saved there at every epoch end (and every
    ``config.checkpoint_every`` steps, at a stop and on Ctrl-C); if it already holds a checkpoint of the same cell,
    config (ignoring the run-only fields ``epochs``, ``max_steps``, ``stop_epochs``, ``max_tokens``, ``device``,
    ``checkpoint_every``) and corpus, training resumes from
    it and ends with the same result as an uninterrupted run. A different cell, config or corpus raises
    :class:`CheckpointError` naming the file and the field. Divergence (a non-finite or exploded loss or gradient)
    stops training and is reported in the result, not raised.
    """
    config = config or TrainConfig()
    cell = cell if isinstance(cell, Cell) else parse_recipe(cell)
    corpus = corpus if corpus is not None else load_ptb()
    device = _resolve_device(config.device)
    splits = _splits(corpus, config)
    corpus_info = _corpus_info(corpus, splits)
    train_src = _batchify(splits["train"], config.batch_size, "train", corpus, device)
    val_src = _batchify(splits["valid"], config.eval_batch_size, "valid", corpus, device)
    test_src = _batchify(splits["test"], config.test_batch_size, "test", corpus, device)

    ckpt_path: Optional[Path] = None
    ckpt: Optional[dict[str, Any]] = None
    if checkpoint_dir is not None:
        folder = Path(checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        ckpt_path = folder / CHECKPOINT_FILE
        if ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path)
            _check_checkpoint(ckpt_path, ckpt, cell, config, corpus_info)

    rng_devices = [device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):  # leave the caller's global RNG state as it was
        # Building the model draws from the global RNG (default inits, then overwritten by the seeded init), so the
        # training RNG is seeded or restored only afterwards.
        model = build_model(cell, corpus.vocab_size, seed=config.seed, config=config.model_config()).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        length_gen = torch.Generator().manual_seed(config.seed + 1)
        if ckpt is None:
            torch.manual_seed(config.seed)
            state, epochs, hidden, resumed_from = _Progress(), [], None, None
        else:
            assert ckpt_path is not None
            state, epochs, hidden = _restore(ckpt_path, ckpt, model, optimizer, length_gen, device)
            resumed_from = {"epoch": state.epoch, "step": state.step}
            if state.epoch > config.epochs or (config.max_steps is not None and state.step > config.max_steps):
                raise CheckpointError(f"{ckpt_path}: the checkpoint is past this run's end (epoch {state.epoch}, "
                                      f"step {state.step}; this run stops at epoch {config.epochs}"
                                      + (f", step {config.max_steps}" if config.max_steps else "") + ")")
        session = _Session(cell, config, corpus_info, model, optimizer, length_gen, state, epochs, hidden,
                           resumed_from, train_src, val_src, test_src if test else None, device, ckpt_path)
        return session.run(progress, on_epoch)


def _restore(where: Path, ckpt: dict[str, Any], model: RNNModel, optimizer: torch.optim.Optimizer,
             length_gen: torch.Generator, device: torch.device
             ) -> tuple[_Progress, list[EpochRecord], Optional[State]]:
    """Load a checkpoint's weights, optimiser and RNG streams in place; return its progress, epochs and hidden
    state. A checkpoint without a field, or with tensors of other shapes, is named, never a traceback."""
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = _Progress(**ckpt["progress"])
        epochs = [EpochRecord(**e) for e in ckpt["epochs"]]
        hidden = ([tuple(t.to(device) for t in layer) for layer in ckpt["hidden"]]
                  if ckpt["hidden"] is not None else None)
        torch.set_rng_state(ckpt["rng"]["cpu"])
        if device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
        length_gen.set_state(ckpt["rng"]["length"])
    except KeyError as exc:
        raise CheckpointError(f"{where}: field {exc.args[0]!r} is missing from the checkpoint") from None
    except (RuntimeError, TypeError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{where}: does not fit this cell and config: {first}") from None
    return state, epochs, hidden


@contextmanager
def _scaled_lr(optimizer: torch.optim.Optimizer, base_lrs: list[float], factor: float) -> Iterator[None]:
    """The learning rate scaled by ``factor`` for one step (AWD-LSTM scales it by seq_len / bptt), and the base
    rate back afterwards, whatever happens inside."""
    for g, lr in zip(optimizer.param_groups, base_lrs):
        g["lr"] = lr * factor
    try:
        yield
    finally:
        for g, lr in zip(optimizer.param_groups, base_lrs):
            g["lr"] = lr


@dataclass
class _Session:
    """One call of :func:`train`: the model, the optimiser, the data, the progress and where to save it. The loop
    in :meth:`run` is a few named steps: :meth:`step`, :meth:`end_epoch`, :meth:`finish`."""

    cell: Cell
    config: TrainConfig
    corpus_info: dict[str, Any]
    model: RNNModel
    optimizer: torch.optim.Optimizer
    length_gen: torch.Generator
    state: _Progress
    epochs: list[EpochRecord]
    hidden: Optional[State]
    resumed_from: Optional[dict[str, int]]
    train_src: Tensor
    val_src: Tensor
    test_src: Optional[Tensor]  # None: no test evaluation
    device: torch.device
    ckpt_path: Optional[Path]
    bar: Any = None
    interrupt: Any = None
    call_start: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.seconds_before = self.state.seconds
        self.explode_at = self.config.explode_factor * math.log(max(self.model.vocab_size, 2))
        self.rows = self.train_src.size(0)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]

    # -- state -----------------------------------------------------------------------------------------------
    def done(self) -> bool:
        return self.state.epoch >= self.config.epochs or self.stop_reason() is not None

    def stop_reason(self) -> Optional[str]:
        """The config field (max_steps, max_tokens, stop_epochs) whose stop has been reached, if any."""
        c, state = self.config, self.state
        if c.max_steps is not None and state.step >= c.max_steps:
            return "max_steps"
        if c.max_tokens is not None and state.tokens >= c.max_tokens:
            return "max_tokens"
        if c.stop_epochs is not None and state.epoch + state.position / (self.rows - 1) >= c.stop_epochs:
            return "stop_epochs"
        return None

    def estimate_planned(self, steps_per_epoch: float) -> int:
        """Steps this call will have taken in all at its end (for the progress bar)."""
        c, state = self.config, self.state
        done_epochs = state.epoch + state.position / (self.rows - 1)
        stop_at = c.epochs if c.stop_epochs is None else min(c.epochs, c.stop_epochs)
        planned = state.step + max(0.0, stop_at - done_epochs) * steps_per_epoch
        if c.max_tokens is not None:
            per_step = c.batch_size * c.bptt * (0.975 if c.variable_bptt else 1.0)
            planned = min(planned, state.step + max(0, c.max_tokens - state.tokens) / per_step)
        if c.max_steps is not None:
            planned = min(planned, c.max_steps)
        return max(state.step, math.ceil(planned))

    def diverge(self, reason: str) -> None:
        self.state.diverged = True
        self.state.divergence_reason = reason

    def save(self) -> None:
        if self.ckpt_path is None:
            return
        state, model = self.state, self.model
        state.seconds = self.seconds_before + (time.perf_counter() - self.call_start)
        rng = {"cpu": torch.get_rng_state(), "length": self.length_gen.get_state(),
               "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
        payload = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "cell": canonical_json(self.cell.recipe), "arch_sha1": self.cell.arch_sha1,
            "canonical_id": self.cell.canonical_id, "config": self.config.to_dict(), "corpus": self.corpus_info,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "rng": rng, "progress": asdict(state), "epochs": [asdict(e) for e in self.epochs],
            "hidden": ([[t.detach().cpu() for t in layer] for layer in self.hidden]
                       if self.hidden is not None else None),
        }
        atomic_write_bytes(self.ckpt_path, lambda fh: torch.save(payload, fh))
        metrics = {"cell": self.cell.recipe, "arch_sha1": self.cell.arch_sha1, "config": self.config.to_dict(),
                   "corpus": self.corpus_info, "progress": {k: _json_number(v) for k, v in asdict(state).items()},
                   "epochs": [e.to_dict() for e in self.epochs]}
        text = json.dumps(metrics, indent=1).encode()
        atomic_write_bytes(self.ckpt_path.with_name(METRICS_FILE), lambda fh: fh.write(text))

    def check_interrupt(self) -> None:
        """Called only where the training state is consistent (between steps, during evaluation)."""
        if self.interrupt.requested:
            self.save()
            self.bar.print(f"interrupted: checkpoint saved to {self.ckpt_path} (epoch {self.state.epoch}, step "
                           f"{self.state.step}); run again with the same arguments to resume")
            raise KeyboardInterrupt

    # -- the steps -------------------------------------------------------------------------------------------
    def step(self) -> bool:
        """One optimiser step on the next batch (AWD-LSTM: a sampled length, AR/TAR on the outputs, clipping);
        False when the run diverged at it."""
        config, state, model = self.config, self.state, self.model
        t0 = time.perf_counter()
        seq_len = _sample_length(config, self.length_gen)
        data, targets = get_batch(self.train_src, state.position, seq_len)
        seq_len = data.size(0)
        hidden = detach_state(self.hidden if self.hidden is not None else model.init_hidden(config.batch_size))
        with _scaled_lr(self.optimizer, self.base_lrs, seq_len / config.bptt):
            self.optimizer.zero_grad(set_to_none=True)
            out, new_hidden = model.run_layers(model.embed(data), hidden)
            logits, dropped = model.decode(out, return_dropped=True)
            raw_loss = F.cross_entropy(logits.reshape(-1, model.vocab_size), targets.reshape(-1))
            loss = raw_loss
            if config.alpha:
                loss = loss + config.alpha * dropped.pow(2).mean()
            if config.beta and seq_len > 1:
                loss = loss + config.beta * (out[1:] - out[:-1]).pow(2).mean()
            raw_value, total_value = raw_loss.item(), loss.item()
            self.hidden = hidden
            if not self._loss_is_sane(raw_value, total_value):
                return False
            loss.backward()
            if config.clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(self.params, config.clip).item()
                if not math.isfinite(norm):
                    self.diverge(f"non-finite gradient norm ({norm}) {self._where()}")
                    return False
            self.optimizer.step()
        self.hidden = new_hidden
        self._count(seq_len, targets.numel(), raw_value, time.perf_counter() - t0)
        if config.checkpoint_every and state.step % config.checkpoint_every == 0:
            self.save()
        return True

    def _where(self) -> str:
        return f"at step {self.state.step + 1} (epoch {self.state.epoch + 1})"

    def _loss_is_sane(self, raw_value: float, total_value: float) -> bool:
        if not math.isfinite(raw_value) or not math.isfinite(total_value):
            bad = raw_value if not math.isfinite(raw_value) else total_value
            what = "training loss" if not math.isfinite(raw_value) else "regularised training loss"
            self.diverge(f"non-finite {what} ({bad}) {self._where()}")
            return False
        if raw_value > self.explode_at:
            self.diverge(f"training loss exploded to {raw_value:.4g} {self._where()} (limit "
                         f"{self.config.explode_factor:g} x ln(vocabulary) = {self.explode_at:.4g})")
            return False
        return True

    def _count(self, seq_len: int, n_tokens: int, raw_value: float, seconds: float) -> None:
        state = self.state
        state.step += 1
        state.position += seq_len
        state.epoch_steps += 1
        state.epoch_tokens += n_tokens
        state.epoch_loss_sum += raw_value * n_tokens
        state.tokens += n_tokens
        state.train_seconds += seconds
        state.epoch_seconds += seconds
        self.bar.update(completed=min(state.step, self.planned), loss=f"{raw_value:.3f}",
                        tps=f"{state.tokens / max(state.train_seconds, 1e-9):,.0f}")

    def end_epoch(self, on_epoch: Optional[Callable[[EpochRecord], None]]) -> None:
        """Validate, record the epoch, start the next from a zero state, save."""
        config, state = self.config, self.state
        self.bar.update(label=f"epoch {state.epoch + 1}/{config.epochs} validating")
        t0 = time.perf_counter()
        val_loss = mean_loss(self.model, self.val_src, config.bptt, self.check_interrupt)
        state.epoch_seconds += time.perf_counter() - t0
        record = EpochRecord(epoch=state.epoch + 1, train_loss=state.epoch_loss_sum / max(state.epoch_tokens, 1),
                             val_loss=val_loss, val_ppl=perplexity(val_loss), steps=state.epoch_steps,
                             tokens=state.epoch_tokens, seconds=state.epoch_seconds)
        self.epochs.append(record)
        state.epoch += 1
        state.position = 0
        state.epoch_steps = state.epoch_tokens = 0
        state.epoch_loss_sum = state.epoch_seconds = 0.0
        self.hidden = None  # each epoch starts from a zero state
        self.bar.print(f"epoch {record.epoch}: train loss {record.train_loss:.4f}, valid loss {val_loss:.4f} "
                       f"(ppl {record.val_ppl:.2f}), {record.seconds:.1f} s")
        if not math.isfinite(val_loss):
            self.diverge(f"non-finite validation loss ({val_loss}) after epoch {record.epoch}")
        self.save()
        self.planned = self.estimate_planned(record.steps)  # re-estimate from this epoch
        self.bar.update(total=self.planned)
        if on_epoch is not None:
            on_epoch(record)

    def finish(self) -> tuple[str, Optional[float], Optional[float]]:
        """(why it stopped, validation loss, test loss) of the final model; the losses are None if it diverged."""
        state, config = self.state, self.config
        if state.diverged:
            self.save()
            self.bar.print(f"diverged: {state.divergence_reason}")
            return "diverged", None, None
        stopped = "epochs" if state.epoch >= config.epochs else (self.stop_reason() or "max_steps")
        if state.position != 0 or state.step == 0:
            self.save()  # stopped within an epoch (or before any step): keep the exact position
        self.check_interrupt()
        self.bar.update(label="final evaluation", total=state.step, completed=state.step)
        if state.position == 0 and self.epochs:
            val_loss = self.epochs[-1].val_loss  # the final model is the last epoch's
        else:
            val_loss = mean_loss(self.model, self.val_src, config.bptt, self.check_interrupt)
        test_loss = (mean_loss(self.model, self.test_src, config.bptt, self.check_interrupt)
                     if self.test_src is not None else None)
        if not math.isfinite(val_loss) or (test_loss is not None and not math.isfinite(test_loss)):
            self.diverge(f"non-finite {'validation' if not math.isfinite(val_loss) else 'test'} loss of the final "
                         "model")
            self.save()
            return "diverged", None, None
        return stopped, val_loss, test_loss

    # -- the loop --------------------------------------------------------------------------------------------
    def run(self, progress: bool, on_epoch: Optional[Callable[[EpochRecord], None]]) -> TrainResult:
        config, state = self.config, self.state
        mean_len = config.bptt * (0.975 if config.variable_bptt else 1.0)
        self.planned = self.estimate_planned(max(1, math.ceil((self.rows - 1) / mean_len)))
        self.interrupt = _Interrupt(self.ckpt_path is not None)
        self.bar = _bar(progress, self.planned, min(state.step, self.planned))
        with self.interrupt, self.bar:
            while not state.diverged and not self.done():
                self.bar.update(label=f"epoch {state.epoch + 1}/{config.epochs}")
                self.model.train()
                while state.position < self.rows - 1:
                    if self.stop_reason() is not None:
                        break
                    self.check_interrupt()
                    if not self.step():
                        break
                if state.diverged or state.position < self.rows - 1:
                    break  # diverged, or stopped by max_steps, max_tokens or stop_epochs within the epoch
                self.end_epoch(on_epoch)
            stopped, val_loss, test_loss = self.finish()
        return self.result(stopped, val_loss, test_loss)

    def result(self, stopped: str, val_loss: Optional[float], test_loss: Optional[float]) -> TrainResult:
        state = self.state
        state.seconds = self.seconds_before + (time.perf_counter() - self.call_start)
        return TrainResult(
            canonical_id=self.cell.canonical_id, arch_sha1=self.cell.arch_sha1, config=self.config.to_dict(),
            corpus=self.corpus_info, num_parameters=self.model.num_parameters(), epochs=list(self.epochs),
            val_loss=val_loss, val_ppl=perplexity(val_loss) if val_loss is not None else None,
            test_loss=test_loss, test_ppl=perplexity(test_loss) if test_loss is not None else None,
            steps=state.step, tokens=state.tokens, train_seconds=state.train_seconds, seconds=state.seconds,
            tokens_per_second=state.tokens / state.train_seconds if state.train_seconds > 0 else 0.0,
            diverged=state.diverged, divergence_reason=state.divergence_reason, stopped=stopped,
            resumed_from=self.resumed_from, checkpoint=str(self.ckpt_path) if self.ckpt_path is not None else None,
            model=self.model)


def _to_cpu(obj: Any) -> Any:
    """A copy of a (nested) optimiser state dict with every tensor on the CPU."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


__all__: Sequence[str] = ["CHECKPOINT_FILE", "METRICS_FILE", "CheckpointError", "EpochRecord", "TrainConfig",
                          "TrainResult", "corpus_identity", "load_checkpoint", "mean_loss", "perplexity",
                          "tokens_per_epoch", "train"]
