"""The proxy registry: each proxy is one module in this package that decorates its scoring function.

    @proxy("zen", higher_is_better=True, needs_data=False, description="...")
    def zen(ctx: ScoringContext) -> float: ...

Modules in ``zeronas.proxies`` are discovered at first use, so a new proxy is one new file. Proxies of plugins
(:mod:`zeronas.plugins`: entry points of the group ``zeronas.plugins``) are loaded then too, after the built-ins.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

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

    def as_dict(self) -> dict:
        return {"name": self.name, "higher_is_better": self.higher_is_better, "needs_data": self.needs_data,
                "description": self.description, "gate": self.gate, "revision": self.revision,
                "requires": sorted(self.requires)}


class Unsupported(Exception):
    """Raised by a proxy that cannot score this kind of model; the message is the one-line reason. The runner
    records it as an ``unsupported`` score (never stored), not as an error of the cell."""


_REGISTRY: dict[str, ProxySpec] = {}
_INFRA = {"registry", "context", "config", "device", "runner", "weights"}
_builtins_discovered = False
_discovered = False


def proxy(name: str, *, higher_is_better: bool, needs_data: bool, description: str,
          gate: float | None = None, revision: int = 1,
          requires: Iterable[str] = ()) -> Callable[[ProxyFn], ProxyFn]:
    """Register a proxy. ``higher_is_better`` is the direction used by every ranking metric. ``gate``, for a
    trainability check, is the threshold used when the proxy gates a ranking (``rank!proxy``): a cell passes when
    its value is on the good side of it (see :func:`zeronas.core.spec.parse_spec`). ``revision`` is part of every
    stored score's key: raise it when the formula changes, so that old scores stay readable under their revision
    and are never reused as the new formula's. ``requires`` names the model capabilities the proxy needs beyond
    the model contract (``activations``, ``recipe``: see :mod:`zeronas.models.contract`); a model without them
    gets an ``unsupported`` score."""
    from zeronas.models.contract import CAPABILITIES

    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
        raise ValueError(f"proxy {name!r}: revision must be a positive integer, got {revision!r}")
    needs = frozenset(requires)
    unknown = sorted(needs - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"proxy {name!r}: unknown capability {unknown[0]!r} (known: {', '.join(CAPABILITIES)})")

    def decorate(fn: ProxyFn) -> ProxyFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"proxy {name!r} is registered twice: by {_origin(_REGISTRY[name].fn)} and by "
                             f"{_origin(fn)}")
        _REGISTRY[name] = ProxySpec(name, fn, higher_is_better, needs_data, description, gate, revision, needs)
        return fn

    return decorate


def _origin(fn: ProxyFn) -> str:
    module = getattr(fn, "__module__", None) or "?"
    where = f"{module}.{getattr(fn, '__qualname__', repr(fn))}"
    return f"the built-in {where}" if module.startswith("zeronas.") else where


def _discover_builtins() -> None:
    global _builtins_discovered
    if _builtins_discovered:
        return
    import zeronas.proxies as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _INFRA and not info.name.startswith("_"):
            importlib.import_module(f"zeronas.proxies.{info.name}")
    _builtins_discovered = True


def _discover() -> None:
    """The built-in proxies, then the entry-point plugins' (see :mod:`zeronas.plugins`)."""
    global _discovered
    if _discovered:
        return
    from zeronas.plugins import load_plugins

    _discover_builtins()
    load_plugins()
    _discovered = True


def list_proxies() -> list[ProxySpec]:
    _discover()
    return sorted(_REGISTRY.values(), key=lambda s: s.name)


def get_proxy(name: str) -> ProxySpec:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown proxy {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def parse_proxy_list(text: str) -> list[str]:
    """``"zen,ntk_cond"`` -> names, each checked against the registry."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise KeyError("no proxy named")
    for n in names:
        get_proxy(n)
    return names


def registered_names() -> list[str]:
    """The names of every registered proxy (built-ins and loaded plugins)."""
    _discover()
    return sorted(_REGISTRY)


def parse_specs(text: str) -> list[str]:
    """``"zen, hidden_cov!state_escape"`` -> canonical spec names (:mod:`zeronas.core.spec`), every member checked
    against the registry; a :class:`~zeronas.core.spec.SpecError` names the bad part."""
    return parse_proxy_specs(text, registered_names())


def current_revision(name: str) -> int | None:
    """The registered revision of proxy ``name``, or None when no proxy of that name is registered here."""
    _discover()
    spec = _REGISTRY.get(name)
    return None if spec is None else spec.revision
