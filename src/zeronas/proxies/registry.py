"""The proxy registry: each proxy is one module in this package that decorates its scoring function.

    @proxy("zen", higher_is_better=True, needs_data=False, description="...")
    def zen(ctx: ScoringContext) -> float: ...

Modules in ``zeronas.proxies`` are discovered at first use, so a new proxy is one new file. Proxies of plugins
are registered when the entry points load the plugins (:func:`zeronas.plugins.load_plugins`), always after the
built-ins, so that a plugin reusing a built-in's name is the one that fails. Tests register proxies for a while
with ``with PROXIES.scoped(): ...``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from zeronas.core.registry import Registry
from zeronas.core.spec import parse_proxy_specs

if TYPE_CHECKING:
    from zeronas.proxies.context import ScoringContext

ProxyFn = Callable[["ScoringContext"], float]


@dataclass(frozen=True)
class ProxySpec:
    name: str
    fn: ProxyFn
    higher_is_better: bool
    needs_data: bool
    description: str
    gate: float | None = None  # trainability checks: the value past which the proxy predicts failure
    revision: int = 1  # raised whenever the formula changes: stored scores of another revision are not reused
    requires: frozenset[str] = frozenset()  # model capabilities beyond the contract (zeronas.models.contract)
    min_tokens: int = 0  # tokens of the probe split the proxy reads beyond the config's probe batch

    def as_dict(self) -> dict:
        return {"name": self.name, "higher_is_better": self.higher_is_better, "needs_data": self.needs_data,
                "description": self.description, "gate": self.gate, "revision": self.revision,
                "requires": sorted(self.requires)}


class Unsupported(Exception):
    """Raised by a proxy that cannot score this kind of model; the message is the one-line reason. The runner
    records it as an ``unsupported`` score (never stored), not as an error of the cell."""


# a name the spec grammar can select (its + ! , are operators) and a terminal prints as it is
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_NOT_PROXIES = {"context", "device", "needs", "registry", "runner"}  # the modules of this package that hold no proxy
_builtins_discovered = False


def _discover_builtins() -> None:
    """Import every proxy module of this package (once)."""
    global _builtins_discovered
    if _builtins_discovered:
        return
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name not in _NOT_PROXIES and not info.name.startswith("_"):
            importlib.import_module(f"zeronas.proxies.{info.name}")
    _builtins_discovered = True


PROXIES: Registry[ProxySpec] = Registry("proxy", before_scope=_discover_builtins)


def proxy(name: str, *, higher_is_better: bool, needs_data: bool, description: str,
          gate: float | None = None, revision: int = 1, requires: Iterable[str] = (),
          min_tokens: int = 0) -> Callable[[ProxyFn], ProxyFn]:
    """Register a proxy. ``higher_is_better`` is the direction used by every ranking metric. ``gate``, for a
    trainability check, is the threshold used when the proxy gates a ranking (``rank!proxy``): a cell passes when
    its value is on the good side of it (see :func:`zeronas.core.spec.parse_spec`). ``revision`` is part of every
    stored score's key: raise it when the formula changes, so that old scores stay readable under their revision
    and are never reused as the new formula's. ``requires`` names the model capabilities the proxy needs beyond
    the model contract (``activations``, ``recipe``: see :mod:`zeronas.models.contract`); a model without them
    gets an ``unsupported`` score. ``min_tokens``: the tokens of the probe split the proxy reads beyond the
    config's probe batch (checked against the corpus before any scoring). A name is letters, digits, ``_``, ``.``
    and ``-`` (``+``, ``!`` and ``,`` are the spec grammar's)."""
    from zeronas.models.contract import CAPABILITIES

    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"proxy name {name!r} cannot be selected: use 1 to 100 letters, digits, '_', '.' and '-' "
                         "(the spec grammar reserves '+', '!' and ',')")
    if isinstance(min_tokens, bool) or not isinstance(min_tokens, int) or min_tokens < 0:
        raise ValueError(f"proxy {name!r}: min_tokens must be a non-negative integer, got {min_tokens!r}")
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
        raise ValueError(f"proxy {name!r}: revision must be a positive integer, got {revision!r}")
    needs = frozenset(requires)
    unknown = sorted(needs - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"proxy {name!r}: unknown capability {unknown[0]!r} (known: {', '.join(CAPABILITIES)})")

    def decorate(fn: ProxyFn) -> ProxyFn:
        if not _is_builtin(fn):
            _discover_builtins()  # first: a clash with a built-in fails here, naming both
        old = PROXIES.get(name)
        if old is not None and old.fn is not fn:
            raise ValueError(f"proxy {name!r} is registered twice: by {_origin(old.fn)} and by {_origin(fn)}")
        PROXIES.add(name, ProxySpec(name, fn, higher_is_better, needs_data, description, gate, revision, needs,
                                    min_tokens))
        return fn

    return decorate


def _is_builtin(fn: ProxyFn) -> bool:
    return (getattr(fn, "__module__", None) or "").startswith("zeronas.")


def _origin(fn: ProxyFn) -> str:
    module = getattr(fn, "__module__", None) or "?"
    where = f"{module}.{getattr(fn, '__qualname__', repr(fn))}"
    return f"the built-in {where}" if _is_builtin(fn) else where


def list_proxies() -> list[ProxySpec]:
    """Every registered proxy (the built-ins and those of loaded plugins), by name."""
    _discover_builtins()
    return [spec for _, spec in sorted(PROXIES.items())]


def get_proxy(name: str) -> ProxySpec:
    _discover_builtins()
    spec = PROXIES.get(name)
    if spec is None:
        raise KeyError(f"unknown proxy {name!r} (known: {', '.join(PROXIES.names())})")
    return spec


def parse_proxy_list(text: str) -> list[str]:
    """``"zen,ntk_cond"`` -> names, each checked against the registry; a name given twice is an error (as in
    :func:`parse_specs`), never a proxy scored twice."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise KeyError("no proxy named")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise KeyError(f"named more than once: {', '.join(dupes)}")
    for n in names:
        get_proxy(n)
    return names


def registered_names() -> list[str]:
    """The names of every registered proxy (built-ins and loaded plugins)."""
    _discover_builtins()
    return PROXIES.names()


def parse_specs(text: str) -> list[str]:
    """``"zen, hidden_cov!state_escape"`` -> canonical spec names (:mod:`zeronas.core.spec`), every member checked
    against the registry; a :class:`~zeronas.core.spec.SpecError` names the bad part."""
    return parse_proxy_specs(text, registered_names())


def proxy_revisions(names: Iterable[str] | None = None) -> dict[str, int]:
    """``{proxy: registered revision}`` of ``names`` (default: every registered proxy; a name not registered here
    is left out): what a results store needs to read and write each proxy's current scores."""
    _discover_builtins()
    wanted = PROXIES.names() if names is None else [n for n in names if n in PROXIES]
    return {n: PROXIES[n].revision for n in wanted}
