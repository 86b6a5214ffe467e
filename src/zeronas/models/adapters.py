"""Adapters: a user's PyTorch language model as a :class:`~zeronas.models.contract.RecurrentLM`.

Two shapes are built in:

- ``nn.Embedding`` + ``nn.LSTM``/``nn.GRU``/``nn.RNN`` modules (any number, any ``num_layers`` each) + an
  ``nn.Linear`` decoder, tied or not: :func:`adapt_lm` finds them in a model (:class:`TorchRNNLayer` per layer).
  Plain forward and backward passes use PyTorch's fused kernel; where a proxy needs what a fused kernel cannot give
  (per-gate activations, forward-mode AD) the layer runs the equivalent unfused computation with the same weights
  (PyTorch's documented equations, gate order i, f, g, o for the LSTM and r, z, n for the GRU). Each such layer
  steps exactly zeronas's reference cell (``lstm``, ``gru``, ``rnn``), so structural proxies apply too.
- an ``nn.Module`` cell stepped in a loop (:class:`CellLoopLayer`, :func:`cell_lm`): ``cell(x_t, state) -> state``
  like ``nn.LSTMCell``/``nn.GRUCell``; the first state tensor is the output. Opaque to zeronas: per-activation
  observations only if its ``forward`` accepts ``observer=``, MACs only if it has ``macs_per_step``.

More adapters plug in with :func:`register_adapter` (from a plugin module, see :mod:`zeronas.plugins`).
The adapter scores embedding -> recurrent layers -> decoder, the standard language model; anything else in the
user's own ``forward`` (dropout is off when scoring anyway) is not seen.
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zeronas.cells.recipe import Cell, parse_recipe
from zeronas.cells.reference import reference_cell
from zeronas.core.registry import Registry
from zeronas.models.contract import ACTIVATIONS, RECIPE, Observer, RecurrentLM
from zeronas.models.macs import lm_macs
from zeronas.models.stack import LayerStackLM

Tensor = torch.Tensor


class AdapterError(ValueError):
    """A model that an adapter cannot take; the message says which part and why."""


# ----------------------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------------------

_RNN_KINDS = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}
_RELU_RNN = {"pre": {"op": "linear", "input": ["x", "h_prev_0"]},
             "h_new_0": {"op": "activation_relu", "input": ["pre"]}}


class TorchRNNLayer(nn.Module):
    """Layer ``index`` of an ``nn.LSTM``/``nn.GRU``/``nn.RNN``, its parameters shared (not copied)."""

    def __init__(self, rnn: nn.RNNBase, index: int = 0) -> None:
        super().__init__()
        kind = _RNN_KINDS.get(type(rnn))
        where = f"{type(rnn).__name__} layer {index}"
        if kind is None:
            raise AdapterError(f"{type(rnn).__name__}: not an nn.LSTM, nn.GRU or nn.RNN")
        if rnn.bidirectional:
            raise AdapterError(f"{where}: bidirectional, which a language model cannot be (it would see the future)")
        if getattr(rnn, "proj_size", 0):
            raise AdapterError(f"{where}: proj_size > 0 (LSTM projections) is not supported")
        if not 0 <= index < rnn.num_layers:
            raise AdapterError(f"{where}: the module has {rnn.num_layers} layer(s)")
        if kind == "rnn" and rnn.nonlinearity == "relu":
            kind = "rnn_relu"
        self.kind = kind
        self.input_size = rnn.input_size if index == 0 else rnn.hidden_size
        self.hidden_size = rnn.hidden_size
        self.fast_backward = True
        # a one-layer module of the same kind whose parameters are the user's layer-`index` parameters: PyTorch's
        # fused kernel through its public module, and named parameters a person can find
        options = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
        one = type(rnn)(self.input_size, self.hidden_size, 1, bias=rnn.bias, device="meta", **options)
        suffixes = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if rnn.bias else ())
        for suffix in suffixes:
            setattr(one, f"{suffix}_l0", getattr(rnn, f"{suffix}_l{index}"))
        one._init_flat_weights()  # its record of the weights (and cuDNN's flat buffer) now sees the user's
        self.fused = one
        recipe = _RELU_RNN if kind == "rnn_relu" else None
        self.cell: Cell = (parse_recipe(recipe, source="nn.RNN(nonlinearity='relu')", name="rnn_relu")
                           if recipe else reference_cell(kind))

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * (2 if self.kind == "lstm" else 1)

    def init_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, ...]:
        return tuple(like.new_zeros(batch_size, size) for size in self.state_sizes)

    def forward(self, inputs: Tensor, state: Optional[Sequence[Tensor]] = None,
                observer: Optional[Observer] = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        if state is None:
            state = self.init_state(inputs.shape[1], inputs)
        if self.fast_backward and observer is None:
            return self._fused(inputs, tuple(state))
        return self._unfused(inputs, tuple(state), observer)

    def _fused(self, inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        if self.kind == "lstm":
            out, (h, c) = self.fused(inputs, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
            return out, (h[0], c[0])
        out, h = self.fused(inputs, state[0].unsqueeze(0))
        return out, (h[0],)

    def _unfused(self, inputs: Tensor, state: tuple[Tensor, ...],
                 observer: Optional[Observer]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """PyTorch's equations step by step: the same weights, every activation visible."""
        m = self.fused
        w_hh, b_hh = m.weight_hh_l0, (m.bias_hh_l0 if m.bias else None)
        x_all = F.linear(inputs, m.weight_ih_l0, m.bias_ih_l0 if m.bias else None).unbind(0)

        def act(node: str, op: str, fn: Callable[[Tensor], Tensor], pre: Tensor) -> Tensor:
            out = fn(pre)
            if observer is not None:
                observer(node, op, pre, out)
            return out

        outputs = []
        if self.kind == "lstm":
            h, c = state
            for x in x_all:
                i, f, g, o = (x + F.linear(h, w_hh, b_hh)).chunk(4, 1)
                i = act("i_gate", "activation_sigm", torch.sigmoid, i)
                f = act("f_gate", "activation_sigm", torch.sigmoid, f)
                g = act("g_act", "activation_tanh", torch.tanh, g)
                o = act("o_gate", "activation_sigm", torch.sigmoid, o)
                c = f * c + i * g
                h = o * act("c_act", "activation_tanh", torch.tanh, c)
                outputs.append(h)
            return torch.stack(outputs, 0), (h, c)
        (h,) = state
        if self.kind == "gru":
            for x in x_all:
                xr, xz, xn = x.chunk(3, 1)
                hr, hz, hn = F.linear(h, w_hh, b_hh).chunk(3, 1)
                r = act("r_gate", "activation_sigm", torch.sigmoid, xr + hr)
                z = act("z_gate", "activation_sigm", torch.sigmoid, xz + hz)
                n = act("n", "activation_tanh", torch.tanh, xn + r * hn)
                h = z * h + (1 - z) * n
                outputs.append(h)
        else:
            op, fn = ("activation_relu", torch.relu) if self.kind == "rnn_relu" else ("activation_tanh", torch.tanh)
            for x in x_all:
                h = act("h_new_0", op, fn, x + F.linear(h, w_hh, b_hh))
                outputs.append(h)
        return torch.stack(outputs, 0), (h,)


class CellLoopLayer(nn.Module):
    """A user's ``nn.Module`` cell stepped over the sequence: ``cell(x_t, state) -> new state``.

    ``state`` is one tensor when the cell carries one (as ``nn.GRUCell`` takes and returns it) and a tuple
    otherwise (``nn.LSTMCell``: ``(h, c)``); the first state tensor is the layer's output. ``state_sizes`` is read
    from the cell (``state_sizes``, or ``hidden_size`` for PyTorch's cells) unless given."""

    def __init__(self, cell: nn.Module, input_size: int, state_sizes: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        self.step = cell
        name = type(cell).__name__
        if state_sizes is None:
            state_sizes = getattr(cell, "state_sizes", None)
        if state_sizes is None and hasattr(cell, "hidden_size"):
            state_sizes = (cell.hidden_size,) * (2 if isinstance(cell, nn.LSTMCell) else 1)
        if not state_sizes or any(not isinstance(s, int) or s < 1 for s in state_sizes):
            raise AdapterError(f"{name}: give state_sizes (the width of each carried state tensor), got "
                               f"{state_sizes!r}")
        self._state_sizes = tuple(int(s) for s in state_sizes)
        self.input_size = int(input_size)
        self.hidden_size = self._state_sizes[0]
        self.fast_backward = True  # a cell loop has one path; kept for the contract
        self.observes = "observer" in inspect.signature(cell.forward).parameters
        self.cell: Optional[Cell] = None
        self.macs_per_step: Optional[int] = getattr(cell, "macs_per_step", None)

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return self._state_sizes

    def init_state(self, batch_size: int, like: Tensor) -> tuple[Tensor, ...]:
        return tuple(like.new_zeros(batch_size, size) for size in self._state_sizes)

    def forward(self, inputs: Tensor, state: Optional[Sequence[Tensor]] = None,
                observer: Optional[Observer] = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        h = tuple(state) if state is not None else self.init_state(inputs.shape[1], inputs)
        extra = {"observer": observer} if observer is not None and self.observes else {}
        outputs = []
        for x in inputs.unbind(0):
            new = self.step(x, h[0] if len(h) == 1 else h, **extra)
            h = (new,) if isinstance(new, Tensor) else tuple(new)
            if len(h) != len(self._state_sizes):
                raise AdapterError(f"{type(self.step).__name__} returned {len(h)} state tensor(s), expected "
                                   f"{len(self._state_sizes)}")
            outputs.append(h[0])
        return torch.stack(outputs, 0), h


# ----------------------------------------------------------------------------------------------------------------
# The language model
# ----------------------------------------------------------------------------------------------------------------

class AdaptedLM(LayerStackLM):
    """``embedding -> layers -> decoder`` as a :class:`~zeronas.models.contract.RecurrentLM`. The modules are
    the user's own (shared, not copied); scoring copies the whole adapter, never the user's model in place.
    ``ignored``: the parts of the user's model that this language model leaves out (see :func:`ignored_parts`),
    said once per model by whoever scores it."""

    ignored: tuple[str, ...] = ()

    def __init__(self, embedding: nn.Embedding, layers: Sequence[nn.Module], decoder: nn.Linear) -> None:
        super().__init__()
        if not isinstance(embedding, nn.Embedding):
            raise AdapterError(f"embedding: expected an nn.Embedding, got {type(embedding).__name__}")
        if not isinstance(decoder, nn.Linear):
            raise AdapterError(f"decoder: expected an nn.Linear, got {type(decoder).__name__}")
        if not layers:
            raise AdapterError("layers: a language model needs at least one recurrent layer")
        self.encoder = embedding
        self.layers = nn.ModuleList(layers)
        self.decoder = decoder
        self.vocab_size = decoder.out_features
        self.emb_size = embedding.embedding_dim
        width = self.emb_size
        for i, layer in enumerate(self.layers):
            if layer.input_size != width:
                raise AdapterError(f"layer {i} ({type(layer).__name__}) takes inputs of width {layer.input_size}, "
                                   f"but {'the embedding' if i == 0 else f'layer {i - 1}'} gives {width}")
            width = layer.hidden_size
        if decoder.in_features != width:
            raise AdapterError(f"decoder: takes width {decoder.in_features}, the last layer gives {width}")
        if embedding.num_embeddings != decoder.out_features:
            raise AdapterError(f"the embedding has {embedding.num_embeddings} rows but the decoder "
                               f"{decoder.out_features} outputs: they must both be the vocabulary size")
        cells = [getattr(layer, "cell", None) for layer in self.layers]
        self.cell: Optional[Cell] = cells[0] if cells[0] is not None and all(c == cells[0] for c in cells) else None

    def capabilities(self) -> frozenset[str]:
        caps = set()
        if all(isinstance(l, TorchRNNLayer) or getattr(l, "observes", False) for l in self.layers):
            caps.add(ACTIVATIONS)
        if self.cell is not None:
            caps.add(RECIPE)
        return frozenset(caps)

    def embed(self, tokens: Tensor) -> Tensor:
        return self.encoder(tokens)

    def decode(self, hidden_out: Tensor) -> Tensor:
        return self.decoder(hidden_out)

    def macs_per_token(self) -> Optional[int]:
        sizes = [(layer.input_size, layer.hidden_size) for layer in self.layers]
        if self.cell is not None:
            return lm_macs(self.cell, sizes, self.vocab_size)
        steps = [getattr(layer, "macs_per_step", None) for layer in self.layers]
        if any(s is None for s in steps):
            return None
        return sum(steps) + self.decoder.in_features * self.vocab_size  # type: ignore[arg-type]


def cell_lm(embedding: nn.Embedding, cells: nn.Module | Sequence[nn.Module], decoder: nn.Linear,
            state_sizes: Optional[Sequence[int]] = None) -> AdaptedLM:
    """A language model of ``nn.Module`` cells, one per layer, each stepped in a loop (see :class:`CellLoopLayer`)."""
    cells = [cells] if isinstance(cells, nn.Module) else list(cells)
    layers, width = [], embedding.embedding_dim
    for cell in cells:
        layer = CellLoopLayer(cell, width, state_sizes)
        layers.append(layer)
        width = layer.hidden_size
    return AdaptedLM(embedding, layers, decoder)


def rnn_lm(embedding: nn.Embedding, rnns: nn.RNNBase | Sequence[nn.RNNBase], decoder: nn.Linear) -> AdaptedLM:
    """A language model of ``nn.LSTM``/``nn.GRU``/``nn.RNN`` modules, every layer of each in order."""
    rnns = [rnns] if isinstance(rnns, nn.RNNBase) else list(rnns)
    layers = [TorchRNNLayer(rnn, i) for rnn in rnns for i in range(rnn.num_layers)]
    return AdaptedLM(embedding, layers, decoder)


# ----------------------------------------------------------------------------------------------------------------
# Finding the adapter for a model
# ----------------------------------------------------------------------------------------------------------------

Adapter = Callable[[nn.Module], Optional[RecurrentLM]]  # None, or raise AdapterError, when it does not fit
ADAPTERS: Registry[Adapter] = Registry("model adapter")


def register_adapter(name: str, adapter: Adapter) -> Adapter:
    """Register a model adapter (tried by :func:`adapt_lm`, the most recent first); returns it. An adapter
    returns None for a model it does not recognise, or raises :class:`AdapterError` saying what is wrong.
    Adapters of plugins register when the entry points load the plugins (:func:`zeronas.plugins.load_plugins`)."""
    old = ADAPTERS.get(name)
    if old is not None and old is not adapter:
        raise ValueError(f"a model adapter named {name!r} is already registered")
    return ADAPTERS.add(name, adapter)


def _torch_rnn_lm(model: nn.Module) -> Optional[RecurrentLM]:
    """One ``nn.Embedding``, the ``nn.LSTM``/``GRU``/``RNN`` modules in registration order, and the one
    ``nn.Linear`` whose outputs are the vocabulary."""
    rnns = [m for m in model.modules() if type(m) in _RNN_KINDS]
    if not rnns:
        return None
    name = type(model).__name__
    embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    if len(embeddings) != 1:
        raise AdapterError(f"{name}: found {len(embeddings)} nn.Embedding modules, expected one (or call "
                           "zeronas.models.adapters.rnn_lm(embedding, rnns, decoder))")
    vocab = embeddings[0].num_embeddings
    decoders = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == vocab]
    if len(decoders) != 1:
        raise AdapterError(f"{name}: found {len(decoders)} nn.Linear modules with {vocab} outputs (the vocabulary), "
                           "expected one decoder (or call zeronas.models.adapters.rnn_lm(embedding, rnns, decoder))")
    lm = rnn_lm(embeddings[0], rnns, decoders[0])
    lm.ignored = ignored_parts(model, lm)
    return lm


register_adapter("torch-rnn", _torch_rnn_lm)

# Parts that change nothing when scoring: dropout is off, an identity is one, and the loss (cross-entropy on the
# decoder's logits) already normalises as a (log-)softmax would.
_NEUTRAL = (nn.modules.dropout._DropoutNd, nn.Identity, nn.Softmax, nn.LogSoftmax, nn.modules.loss._Loss)


class IgnoredPartsWarning(UserWarning):
    """A user's model has parts that the adapter leaves out of the scored language model."""


def ignored_note(model: nn.Module, lm: nn.Module) -> str:
    """One line saying which parts of ``model`` its adapted ``lm`` leaves out, or "" when none."""
    parts = getattr(lm, "ignored", ()) if lm is not model else ()
    if not parts:
        return ""
    return (f"{type(model).__name__}: scored as embedding -> recurrent layers -> decoder; not scored: "
            f"{', '.join(parts)} (to score them, put them in a cell for zeronas.models.adapters.cell_lm, or "
            "register an adapter)")


def ignored_parts(model: nn.Module, lm: nn.Module) -> tuple[str, ...]:
    """The parts of ``model`` that the adapted ``lm`` (built from its modules, sharing their parameters) does not
    run: each module without children that is neither in ``lm`` nor made of ``lm``'s parameters (a LayerNorm
    between the LSTM and the decoder, an activation, a projection), and each parameter of a module with children
    that ``lm`` does not use, as ``"name (Type)"``. Dropout, identities, softmaxes and loss modules change nothing
    when scoring and are left out."""
    used_modules = {id(m) for m in lm.modules()}
    used_params = {id(p) for p in lm.parameters()}
    parts = []
    for name, module in model.named_modules():
        if id(module) in used_modules:
            continue
        params = list(module.parameters(recurse=False))
        if next(module.children(), None) is None:  # a leaf: used when every parameter it has is lm's
            if isinstance(module, _NEUTRAL) or (params and all(id(p) in used_params for p in params)):
                continue
            parts.append(f"{name or 'the model'} ({type(module).__name__})")
        else:
            parts.extend(f"{name + '.' if name else ''}{pname} (parameter)"
                         for pname, p in module.named_parameters(recurse=False) if id(p) not in used_params)
    return tuple(parts)


def adapt_lm(model: nn.Module) -> RecurrentLM:
    """``model`` as a :class:`~zeronas.models.contract.RecurrentLM`: itself if it already is one, else what the
    adapters make of it, the most recently registered first (a plugin's adapter before the built-in ones). An
    :class:`AdapterError` gives each adapter's reason when none takes it."""
    if not isinstance(model, nn.Module):
        raise AdapterError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, RecurrentLM):
        return model  # type: ignore[return-value]
    reasons = []
    for name, adapter in reversed(ADAPTERS.items()):
        try:
            adapted = adapter(model)
        except AdapterError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        if adapted is not None:
            return adapted
        reasons.append(f"{name}: does not apply")
    raise AdapterError(f"{type(model).__name__}: no model adapter fits ({'; '.join(reasons)}); wrap it with "
                       "zeronas.models.adapters.rnn_lm(...) or cell_lm(...), or register an adapter")
